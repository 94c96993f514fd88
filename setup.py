"""tfxp: a TFX pipeline for tabular data, installable so Dataflow workers get the same code."""
from setuptools import find_packages, setup

setup(
    name="tfxp",
    version="0.1.0",
    description="Validated, normalized, distributed-trained, evaluated and pushed TFX models for tabular data",
    python_requires=">=3.9,<3.12",
    packages=find_packages(include=["config", "pipeline", "components", "preprocessing", "trainer", "serving",
                                    "config.*", "pipeline.*", "components.*", "preprocessing.*", "trainer.*",
                                    "serving.*"]),
    # Library versions are pinned by requirements.lock (resolved with uv); setup.py names only
    # what the package imports so that `pip install .` on a TFX image does not re-resolve TFX.
    install_requires=["pyyaml>=6"],
    entry_points={"console_scripts": ["tfxp=pipeline.cli:console_main"]},
)
