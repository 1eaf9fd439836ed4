"""keras-mlp's own figures for one variant: Keras inference, TFLite per mode and thread count, training img/s."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

import keras_mlp
from benchmarks.measure import THREADS, WARMUP, model_flops, timed
from benchmarks.rounds import PRECISIONS
from export import litert
from export.convert import to_tflite
from keras_mlp.backend import keras
from keras_mlp.io import write_atomic

TFLITE_MODES = ("float32", "float16", "dynamic", "int8")


def latency(flatbuffer: bytes, threads: int, runs: int) -> dict:
    """Batch-1 latency of a TFLite flatbuffer with `threads` XNNPACK threads (`export.litert.latency`)."""
    return litert.latency(flatbuffer, threads, runs, **WARMUP)


def int8_gemm_ceiling(rows: int = 196, dim: int = 512, hidden: int = 2048, runs: int = 20) -> dict:
    """The CPU's int8 limit: one TFLite FC (rows×dim → hidden, Mixer-S/16's channel MLP) in float32 and full int8.

    XNNPACK's int8 GEMM gains ~4× on CPUs with VNNI (AVX-512/AVX-VNNI) and far less on plain AVX2, so the model's
    int8 speed-up is to be read against this one.
    """
    side = int(rows ** 0.5)
    inputs = keras.Input((side, side, dim), batch_size=1)
    model = keras.Model(inputs, keras.layers.Dense(hidden)(inputs))
    calibration = np.random.default_rng(0).standard_normal((8, side, side, dim), dtype=np.float32)
    flops = 2.0 * side * side * dim * hidden
    out = {"shape": [side * side, dim, hidden]}
    for mode in ("float32", "int8"):
        fb = to_tflite(model, mode, calibration if mode == "int8" else None, num_calibration=8, progress=False)
        stats = {f"{t}t": latency(fb, t, runs) for t in THREADS}
        out[mode] = {t: {**s, "gops": flops / s["median_ms"] / 1e6} for t, s in stats.items()}
    out["speedup"] = {t: out["float32"][t]["median_ms"] / out["int8"][t]["median_ms"] for t in ("1t", "2t")}
    return out


def keras_inference(model, batch: int, runs: int, jit_compile: bool = False) -> dict:
    x = tf.constant(np.random.default_rng(0).standard_normal((batch, *model.input_shape[1:]), dtype=np.float32))
    fn = tf.function(lambda images: model(images, training=False), jit_compile=jit_compile)
    return timed(lambda: fn(x).numpy(), runs)


def train_throughput(model, batch: int, steps: int, jit_compile: bool) -> dict:
    """Images/s of compiled `train_on_batch` (AdamW, cross-entropy) after at least 0.5 s of warm-up."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *model.input_shape[1:]), dtype=np.float32)
    y = rng.integers(0, model.output_shape[-1], batch)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), jit_compile=jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    stats = timed(lambda: model.train_on_batch(x, y), runs=steps, warmup=2, min_warmup_s=0.5)
    return {**stats, "images_per_s": batch / (stats["median_ms"] / 1e3)}


def train_figures(model, train_steps: int, xla: bool = True) -> dict:
    """Training images/s at batch 32, plain graph and (with `xla`) XLA-compiled."""
    plain = {"batch32": train_throughput(model, 32, train_steps, jit_compile=False)}
    return {**plain, "batch32_xla": train_throughput(model, 32, train_steps, jit_compile=True)} if xla else plain


def flatbuffers(model, modes=TFLITE_MODES) -> dict:
    """{mode: bytes} of `model` converted at batch 1; int8 calibrated on 8 seeded random images."""
    calibration = np.random.default_rng(1).standard_normal((8, *model.input_shape[1:]), dtype=np.float32)
    return {mode: to_tflite(model, mode, calibration if mode == "int8" else None, num_calibration=8, progress=False)
            for mode in modes}


def benchmark_variant(name: str, runs: int, train_steps: int, modes=TFLITE_MODES) -> dict:
    """Every figure of `name` at 224×224 with the 1000-class head."""
    model = keras_mlp.create_model(name)
    result = {"params": model.count_params(), "flops": model_flops(model)}
    result["keras"] = {"batch1": keras_inference(model, 1, runs),
                       "batch32": keras_inference(model, 32, max(3, runs // 4))}
    result["tflite"] = {mode: {"bytes": len(fb), **{f"{t}t": latency(fb, t, runs) for t in THREADS}}
                        for mode, fb in flatbuffers(model, modes).items()}
    result["train"] = train_figures(model, train_steps)
    return result


def main(argv=None) -> dict:
    """CLI: all figures of one variant, or only its training figures, or only its .tflite files written to a folder."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=list(TFLITE_MODES))
    parser.add_argument("--only", choices=["train", "tflite"],
                        help="train: training images/s only; tflite: write NAME_MODE.tflite files to --out only")
    parser.add_argument("--out", default=".", help="folder of the --only tflite files")
    parser.add_argument("--no-xla", action="store_true", help="skip the XLA training figure")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS, help="Keras dtype policy of the model")
    args = parser.parse_args(argv)
    keras.config.set_dtype_policy(args.precision)
    if args.only is None:
        return benchmark_variant(args.name, args.runs, args.train_steps, args.modes)
    model = keras_mlp.create_model(args.name)
    if args.only == "train":
        return {"train": train_figures(model, args.train_steps, xla=not args.no_xla)}
    result = {"flops": model_flops(model), "files": {}}
    for mode, fb in flatbuffers(model, args.modes).items():
        path = Path(args.out) / f"{args.name}_{mode}.tflite"
        write_atomic(path, fb)
        result["files"][mode] = {"path": str(path), "bytes": len(fb)}
    return result


if __name__ == "__main__":  # one variant per process, so each starts with the memory of a fresh interpreter
    import json

    print(json.dumps(main()))
