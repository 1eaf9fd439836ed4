"""Time `.tflite` files and the NumPy matmul peak in one light process (`export.litert` + NumPy, no TensorFlow).

`python -m benchmarks.tflite_time FILE [FILE ...] --runs N` prints one JSON object: the NumPy float32 matmul
GFLOP/s with 1 and 2 threads, then per file the batch-1 latency with 1 and 2 XNNPACK threads. Starting in about a
second, it can alternate with a peer's process round after round (`benchmarks.rounds`), so the ratios and the
fractions of peak compare figures taken minutes apart at most.
"""
from __future__ import annotations

import argparse
import json

from benchmarks.measure import THREADS, WARMUP, numpy_peak
from export import litert


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    out = {"numpy_peak_gflops": numpy_peak()}
    for path in args.files:
        out[path] = {f"{t}t": litert.latency(path, t, args.runs, **WARMUP) for t in THREADS}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
