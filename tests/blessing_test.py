"""What a config without a value threshold means (the first model is blessed; later ones must not regress),
and that every "not blessed" comes with TFMA's reason, `missing_thresholds` included."""
import math

import tensorflow as tf
from tensorflow_model_analysis.proto import validation_result_pb2

from pipeline.summary import validation_failures


def write_validation_result(directory, result):
    with tf.io.TFRecordWriter(str(directory / "validations.tfrecord")) as writer:
        writer.write(result.SerializeToString())
    return str(directory)


def test_missing_thresholds_is_a_reason_in_words(tmp_path):
    result = validation_result_pb2.ValidationResult(validation_ok=False, missing_thresholds=True)
    [reason] = validation_failures(write_validation_result(tmp_path, result))
    assert reason.startswith("missing_thresholds:")


def test_not_ok_without_a_named_failure_still_says_so(tmp_path):
    result = validation_result_pb2.ValidationResult(validation_ok=False)
    [reason] = validation_failures(write_validation_result(tmp_path, result))
    assert "not ok" in reason


def test_failed_threshold_names_metric_and_value(tmp_path):
    result = validation_result_pb2.ValidationResult(validation_ok=False)
    failure = result.metric_validations_per_slice.add().failures.add()
    failure.metric_key.name = "mean_squared_error"
    failure.metric_value.double_value.value = 12.5
    failure.metric_threshold.value_threshold.upper_bound.value = 10.0
    [reason] = validation_failures(write_validation_result(tmp_path, result))
    assert reason.startswith("mean_squared_error: 12.5000 fails") and "upper_bound" in reason


def overall_thresholds(config):
    """The thresholds of the eval config's metrics; each must apply to the overall slice only (slices named in
    evaluation.slices are reported, not gated)."""
    import tensorflow_model_analysis as tfma

    out = []
    for metric in config.metrics_specs[0].metrics:
        assert not metric.HasField("threshold")  # a plain threshold would gate every slice
        for per_slice in metric.per_slice_thresholds:
            assert list(per_slice.slicing_specs) == [tfma.SlicingSpec()]
            out.append(per_slice.threshold)
    return out


def test_config_without_threshold_gets_a_value_check_every_finite_metric_passes(repo_dir, tmp_path):
    from config import load_config
    from pipeline.pipeline import eval_config

    config = load_config(f"{repo_dir}/configs/diabetes.yaml")
    assert config.evaluation.threshold is None
    [threshold] = overall_thresholds(eval_config(config))
    assert threshold.value_threshold.upper_bound.value == math.inf  # lower is better: MAE
    assert threshold.HasField("change_threshold")  # later runs must not regress
    taxi = load_config(f"{repo_dir}/configs/taxi.yaml")
    [threshold] = overall_thresholds(eval_config(taxi))
    assert threshold.value_threshold.lower_bound.value == 0.6
