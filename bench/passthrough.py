"""bench/passthrough: how large can an unscaled (passthrough) feature be before it hurts tfxp's MLP?

wine (data/wine, 13 z-scored features) plus one passthrough column of value c + N(0, 1), tfxp's model
(trainer/model.py, width 32, depth 2, learning rate 0.01, 200 steps of 32), three seeds per c; eval accuracy on
a fixed quarter of the rows. components/data_gate/checks.PASSTHROUGH_MAX_ABS comes from this. Writes JSON.

    python -m bench.passthrough --out bench/results/passthrough.json
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

from bench import write_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAGNITUDES = (0, 1, 10, 30, 100, 300, 1000, 3000)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results", "passthrough.json"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import numpy as np
    import tensorflow as tf

    from trainer.model import build_model

    with open(os.path.join(REPO, "data", "wine", "wine.csv")) as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c != "cultivar"]
    x = np.array([[float(r[c]) for c in columns] for r in rows], "float32")
    x = (x - x.mean(0)) / x.std(0)
    classes = sorted({r["cultivar"] for r in rows})
    y = np.array([classes.index(r["cultivar"]) for r in rows])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test = order[: len(y) * 3 // 4], order[len(y) * 3 // 4:]
    features = ([{"name": n, "treatment": "zscore"} for n in columns]
                + [{"name": "extra", "treatment": "passthrough"}])
    result = {}
    for magnitude in MAGNITUDES:
        accuracies = []
        for seed in range(args.seeds):
            tf.random.set_seed(seed)
            inputs = {f"{n}_xf": x[:, i] for i, n in enumerate(columns)}
            inputs["extra_xf"] = (magnitude + rng.normal(size=len(y))).astype("float32")
            rows_of = lambda index: {k: v[index] for k, v in inputs.items()}  # noqa: E731
            model = build_model(features, {}, "multiclass", len(classes),
                                {"width": 32, "depth": 2, "learning_rate": 0.01})
            dataset = tf.data.Dataset.from_tensor_slices((rows_of(train), y[train])).shuffle(200).batch(32).repeat()
            model.fit(dataset, steps_per_epoch=200, epochs=1, verbose=0)
            accuracies.append(round(float(model.evaluate(rows_of(test), y[test], verbose=0)[1]), 4))
        result[str(magnitude)] = accuracies
        print(f"passthrough ~{magnitude}: accuracy {accuracies}", flush=True)
    write_json(args.out, {"accuracy_by_magnitude": result, "seeds": args.seeds})
    return 0


if __name__ == "__main__":
    sys.exit(main())
