"""Latency of a TFLite file through `ai_edge_litert` (XNNPACK): warm-up, then the median of N timed invokes."""
from __future__ import annotations

import time

import numpy as np

from export.parity import _quantize, interpreter


def latency_ms(flatbuffer: bytes, num_threads: int = 1, runs: int = 50, warmup: int = 5,
               image: np.ndarray | None = None) -> float:
    """Median wall time in milliseconds of one `invoke()` on a batch at the model's input shape."""
    it = interpreter(flatbuffer, num_threads)
    inp = it.get_input_details()[0]
    shape = [1 if s == -1 else int(s) for s in inp["shape_signature"]]
    if inp["shape_signature"][0] == -1:
        it.resize_tensor_input(inp["index"], shape)
        it.allocate_tensors()
    x = np.zeros(shape, np.float32) if image is None else np.broadcast_to(image, shape).astype(np.float32)
    it.set_tensor(inp["index"], _quantize(x, inp))
    for _ in range(warmup):
        it.invoke()
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)
