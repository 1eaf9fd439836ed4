"""The one timing primitive of export's latency figures and the benchmarks (NumPy only, no TensorFlow)."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def timed(fn: Callable[[], object], runs: int = 20, warmup: int = 3, min_warmup_s: float = 0.3) -> dict:
    """Median / min / max milliseconds of `runs` calls of `fn()` after at least `warmup` calls and `min_warmup_s`
    seconds of warm-up."""
    start, done = time.perf_counter(), 0
    while done < warmup or time.perf_counter() - start < min_warmup_s:
        fn()
        done += 1
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times)), "max_ms": float(np.max(times)),
            "runs": len(times)}
