"""Measuring primitives: robust timing (`export.timing.timed`), the machine's matmul peak, model FLOPs, peak memory
of a subprocess. NumPy-only at import (TensorFlow loads inside the functions that need it), so the peer scripts
import it beside torch."""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from export.timing import timed

THREADS = (1, 2)
WARMUP = {"warmup": 3, "min_warmup_s": 0.3}  # every timed figure's warm-up: 3 calls and at least 0.3 s


def peer_parser(description: str, precision_help: str | None = None) -> argparse.ArgumentParser:
    """The command line of both peer scripts: variant names, --runs, --train-steps, --only, --precision."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("names", nargs="+")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--only", choices=["latency", "train"])
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"], help=precision_help)
    return parser


def machine() -> dict:
    """What ran the benchmark: CPU model, cores, library versions, date."""
    cpu, isa = platform.processor(), []
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        flags = set(next(line.split(":", 1)[1].split() for line in info if line.startswith("flags")))
        isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    except (OSError, StopIteration):
        pass
    import keras
    import tensorflow as tf
    return {"cpu": cpu, "isa": isa, "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def numpy_peak(n: int = 2048, runs: int = 5) -> dict:
    """float32 GFLOP/s of an n×n NumPy matmul with 1 and 2 BLAS threads."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    out = {}
    for threads in THREADS:
        with threadpool_limits(threads):
            out[f"{threads}t"] = 2.0 * n ** 3 / timed(lambda: a @ a, runs)["median_ms"] / 1e6
    return out


def matmul_peak(n: int = 2048, runs: int = 10) -> dict:
    """float32 GFLOP/s of an n×n matmul: TensorFlow (all threads) and NumPy with 1 and 2 BLAS threads."""
    import tensorflow as tf

    ta = tf.constant(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    tf_mm = tf.function(lambda: tf.matmul(ta, ta))
    result = {"n": n, "tf_gflops": 2.0 * n ** 3 / timed(lambda: tf_mm().numpy(), runs)["median_ms"] / 1e6}
    return {**result, **{f"numpy_{t}_gflops": v for t, v in numpy_peak(n, runs).items()}}


def model_flops(model, batch: int = 1) -> int:
    """Floating-point operations of one forward pass (multiply and add counted apart), from TF's profiler."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((batch, *model.input_shape[1:]), tf.float32)
    forward = tf.function(lambda x: model(x, training=False))
    frozen = convert_variables_to_constants_v2(forward.get_concrete_function(spec))
    options = tf.compat.v1.profiler.ProfileOptionBuilder(tf.compat.v1.profiler.ProfileOptionBuilder.float_operation())
    options = options.with_empty_output().build()
    return int(tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops)


def peak_rss_mib(code: str, env: dict | None = None, timeout: int = 1800) -> dict:
    """Run `code` in a fresh Python; it sets a dict `result`. Returns that dict plus the process's peak RSS (MiB)."""
    probe = (code + "\nimport json, resource\nresult['peak_rss_mib'] = round("
             "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)\nprint(json.dumps(result))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})
    if proc.returncode:
        raise RuntimeError(f"memory probe failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
