"""Measuring primitives: robust timing, the machine's matmul peak, model FLOPs, peak memory of a subprocess."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np


def timed(fn: Callable[[], object], runs: int = 20, warmup: int = 3, min_warmup_s: float = 0.3) -> dict:
    """Median / min / max milliseconds of `fn()` after a warm-up of `warmup` calls and at least `min_warmup_s`."""
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < min_warmup_s:
        fn()
        done += 1
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times)), "max_ms": float(np.max(times)),
            "runs": runs}


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


def matmul_peak(n: int = 2048, runs: int = 10) -> dict:
    """float32 GFLOP/s of an n×n matmul: TensorFlow (all threads) and NumPy with 1 and 2 BLAS threads."""
    import tensorflow as tf

    from benchmarks.tflite_time import numpy_peak

    ta = tf.constant(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    tf_mm = tf.function(lambda: tf.matmul(ta, ta))
    result = {"n": n, "tf_gflops": 2.0 * n ** 3 / timed(lambda: tf_mm().numpy(), runs)["median_ms"] / 1e6}
    return {**result, **{f"numpy_{t}_gflops": v for t, v in numpy_peak(n, runs).items()}}


def int8_gemm_ceiling(rows: int = 196, dim: int = 512, hidden: int = 2048, runs: int = 20) -> dict:
    """The CPU's int8 limit: one TFLite FC (rows×dim → hidden, Mixer-S/16's channel MLP) in float32 and full int8.

    XNNPACK's int8 GEMM gains ~4× on CPUs with VNNI (AVX-512/AVX-VNNI) and far less on plain AVX2, so the model's
    int8 speed-up is to be read against this one.
    """
    from benchmarks.tflite_time import latency
    from export import to_tflite
    from keras_mlp.backend import keras

    side = int(rows ** 0.5)
    inputs = keras.Input((side, side, dim), batch_size=1)
    model = keras.Model(inputs, keras.layers.Dense(hidden)(inputs))
    calibration = np.random.default_rng(0).standard_normal((8, side, side, dim), dtype=np.float32)
    flops = 2.0 * side * side * dim * hidden
    out = {"shape": [side * side, dim, hidden]}
    for mode in ("float32", "int8"):
        fb = to_tflite(model, mode, calibration if mode == "int8" else None, num_calibration=8, progress=False)
        stats = {f"{t}t": latency(fb, t, runs) for t in (1, 2)}
        out[mode] = {t: {**s, "gops": flops / s["median_ms"] / 1e6} for t, s in stats.items()}
    out["speedup"] = {t: out["float32"][t]["median_ms"] / out["int8"][t]["median_ms"] for t in ("1t", "2t")}
    return out


def model_flops(model, batch: int = 1) -> int:
    """Floating-point operations of one forward pass (multiply and add counted apart), from TF's profiler."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((batch, *model.input_shape[1:]), tf.float32)
    forward = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(forward)
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
