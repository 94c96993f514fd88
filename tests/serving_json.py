"""TF Serving's REST API, as far as a test can have it without the model server: the request body a JSON
client sends (row format, `instances`), decoded the way TF Serving decodes row format, and the predictions of
the JSON signature on it compared with serving_default's on the same rows as tf.Examples."""
import json
import math

import numpy as np

from serving.client import encode_examples
from serving.layout import EXAMPLES_SIGNATURE, JSON_SIGNATURE, read_feature_info


def rest_body(rows, info):
    """{"signature_name": ..., "instances": [{input: value}]}: a missing numeric cell is NaN (TF Serving's
    JSON parser takes the literal NaN), a missing text cell "". Every instance names every input."""
    inputs = info["json_inputs"]
    instances = []
    for row in rows:
        instance = {}
        for name, dtype in info["features"].items():
            value = row.get(name)
            missing = value is None or value == ""
            instance[inputs[name]] = ("" if missing else str(value)) if dtype == "string" else (
                math.nan if missing else float(value))
        instances.append(instance)
    return json.dumps({"signature_name": JSON_SIGNATURE, "instances": instances})


def decode_row_format(body, signature):
    """As TF Serving: each named input of the signature gathered over the instances (every instance must
    have every input), converted to the input's dtype; a number where text is expected is an error."""
    import tensorflow as tf

    request = json.loads(body)
    specs = signature.structured_input_signature[1]
    tensors = {}
    for key, spec in specs.items():
        values = []
        for i, instance in enumerate(request["instances"]):
            if key not in instance:
                raise ValueError(f"instance {i} does not have named input {key}")
            value = instance[key]
            if spec.dtype == tf.string and not isinstance(value, str):
                raise ValueError(f"instance {i}, input {key}: expected text, got {value!r}")
            values.append(value)
        tensors[key] = tf.constant(values, dtype=spec.dtype)
    return tensors


def assert_json_answers_like_examples(model_dir, rows, atol=1e-6):
    """The JSON signature on the REST body of `rows` gives serving_default's predictions on the same rows as
    tf.Examples (missing cells left out of the Example). Returns the predictions."""
    import tensorflow as tf

    info = read_feature_info(model_dir)
    model = tf.saved_model.load(model_dir)
    from_examples = model.signatures[EXAMPLES_SIGNATURE](
        examples=tf.constant(encode_examples(rows, info["features"])))["predictions"].numpy()
    json_signature = model.signatures[JSON_SIGNATURE]
    body = rest_body(rows, info)
    assert set(json_signature.structured_input_signature[1]) == set(info["json_inputs"].values())
    from_json = json_signature(**decode_row_format(body, json_signature))["predictions"].numpy()
    np.testing.assert_allclose(from_json, from_examples, atol=atol, rtol=0)
    return from_json
