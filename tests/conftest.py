"""Test session set-up.

TensorFlow is given two logical CPU devices before anything initializes its runtime, so every test that
trains (the end-to-end pipeline included) runs MirroredStrategy with two replicas in sync.
Beam runs in-process (`in_memory`) in every pipeline the tests build.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGICAL_CPUS = 2


def pytest_configure(config):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(LOGICAL_CPUS)])


@pytest.fixture(scope="session")
def repo_dir():
    return REPO
