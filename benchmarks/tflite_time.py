"""Time `.tflite` files and the NumPy matmul peak in one light process (ai_edge_litert + NumPy, no TensorFlow).

`python -m benchmarks.tflite_time FILE [FILE ...] --runs N` prints one JSON object: the NumPy float32 matmul
GFLOP/s with 1 and 2 threads, then per file the batch-1 latency with 1 and 2 XNNPACK threads. Starting in about a
second, it can alternate with a peer's process round after round (`benchmarks.rounds`), so the ratios and the
fractions of peak compare figures taken minutes apart at most.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.measure import timed

THREADS = (1, 2)


def numpy_peak(n: int = 2048, runs: int = 5) -> dict:
    """float32 GFLOP/s of an n×n NumPy matmul with 1 and 2 BLAS threads."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    out = {}
    for threads in THREADS:
        with threadpool_limits(threads):
            out[f"{threads}t"] = 2.0 * n ** 3 / timed(lambda: a @ a, runs)["median_ms"] / 1e6
    return out


def latency(model: str | bytes, threads: int, runs: int) -> dict:
    """Batch-1 latency of a .tflite file (path) or flatbuffer (bytes) with XNNPACK on `threads` threads, input 0."""
    from ai_edge_litert.interpreter import Interpreter

    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": model}
    it = Interpreter(**source, num_threads=threads)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    return timed(it.invoke, runs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    out = {"numpy_peak_gflops": numpy_peak()}
    for path in args.files:
        out[path] = {f"{t}t": latency(path, t, args.runs) for t in THREADS}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
