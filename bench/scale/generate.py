"""A taxi-shaped table of any size, derived from the Chicago taxi CSV that ships in the tfx wheel.

Rows are drawn (seeded) from the 15k shipped rows; float cells get a small jitter (so that rows are not
duplicates), integer and categorical cells, blanks and the label are kept as they are. Written in
chunks: 10M rows never sit in memory.

    python -m bench.scale.generate --rows 1000000 --out /tmp/taxi_1m/data.csv
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import sys
from typing import List

TAXI_DATA = "package://tfx/examples/chicago_taxi_pipeline/data/big_tipper_label"
# Float columns of the taxi table: jittered, amounts relatively and coordinates by a few tens of meters
# (a relative jitter of coordinates would move rows out of the city, and the frozen schema's domains, which
# the data gate rightly blocks). The others (ints, text, the label) are copied.
RELATIVE_JITTER = {"fare": 0.01, "trip_miles": 0.01, "tips": 0.01}
ABSOLUTE_JITTER = {"pickup_latitude": 0.0005, "pickup_longitude": 0.0005, "dropoff_latitude": 0.0005,
                   "dropoff_longitude": 0.0005}
CHUNK_ROWS = 50_000


def source_rows() -> List[List[str]]:
    from config import resolve_data_path

    path = os.path.join(resolve_data_path(TAXI_DATA, "."), "data.csv")
    with open(path, newline="") as f:
        return list(csv.reader(f))


def generate(rows: int, out: str, seed: int = 0) -> int:
    """Writes `rows` data rows (plus the header) to `out`; returns the bytes written."""
    table = source_rows()
    header, data = table[0], table[1:]
    relative = [(header.index(name), share) for name, share in RELATIVE_JITTER.items()]
    absolute = [(header.index(name), step) for name, step in ABSOLUTE_JITTER.items()]
    rng = random.Random(seed)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        written = 0
        while written < rows:
            chunk = []
            for _ in range(min(CHUNK_ROWS, rows - written)):
                row = list(data[rng.randrange(len(data))])
                for i, share in relative:
                    if row[i]:
                        row[i] = f"{float(row[i]) * (1.0 + rng.uniform(-share, share)):.6g}"
                for i, step in absolute:
                    if row[i]:
                        row[i] = f"{float(row[i]) + rng.uniform(-step, step):.6f}"
                chunk.append(row)
            writer.writerows(chunk)
            written += len(chunk)
    return os.path.getsize(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = generate(args.rows, args.out, args.seed)
    print(f"wrote {args.rows} rows ({size / 1e6:.1f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
