"""keras-mlp's own figures for one variant: Keras inference, TFLite per mode and thread count, training img/s."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

import keras_mlp
from benchmarks.measure import model_flops, timed
from keras_mlp.backend import keras

TFLITE_MODES = ("float32", "float16", "dynamic", "int8")


def keras_inference(model, batch: int, runs: int, jit_compile: bool = False) -> dict:
    x = tf.constant(np.random.default_rng(0).standard_normal((batch, *model.input_shape[1:]), dtype=np.float32))
    fn = tf.function(lambda images: model(images, training=False), jit_compile=jit_compile)
    return timed(lambda: fn(x).numpy(), runs)


def tflite_latency(flatbuffer: bytes, threads: int, runs: int) -> dict:
    from export.parity import interpreter

    it = interpreter(flatbuffer, threads)
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    return timed(it.invoke, runs)


def train_throughput(model, batch: int, steps: int, jit_compile: bool) -> dict:
    """Images/s of compiled `train_on_batch` (AdamW, cross-entropy) after at least 0.5 s of warm-up."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *model.input_shape[1:]), dtype=np.float32)
    y = rng.integers(0, model.output_shape[-1], batch)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), jit_compile=jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    stats = timed(lambda: model.train_on_batch(x, y), runs=steps, warmup=2, min_warmup_s=0.5)
    return {**stats, "images_per_s": batch / (stats["median_ms"] / 1e3)}


def benchmark_variant(name: str, runs: int, train_steps: int, modes=TFLITE_MODES) -> dict:
    """Every figure of `name` at 224×224 with the 1000-class head."""
    from export import to_tflite

    model = keras_mlp.create_model(name)
    result = {"params": model.count_params(), "flops": model_flops(model)}
    result["keras"] = {"batch1": keras_inference(model, 1, runs), "batch32": keras_inference(model, 32, max(3, runs // 4))}
    calibration = np.random.default_rng(1).standard_normal((8, *model.input_shape[1:]), dtype=np.float32)
    result["tflite"] = {}
    for mode in modes:
        flatbuffer = to_tflite(model, mode, calibration if mode == "int8" else None, num_calibration=8, progress=False)
        result["tflite"][mode] = {"bytes": len(flatbuffer),
                                  **{f"{t}t": tflite_latency(flatbuffer, t, runs) for t in (1, 2)}}
    result["train"] = {"batch32": train_throughput(model, 32, train_steps, jit_compile=False),
                       "batch32_xla": train_throughput(model, 32, train_steps, jit_compile=True)}
    return result


if __name__ == "__main__":  # one variant per process, so each starts with the memory of a fresh interpreter
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=list(TFLITE_MODES))
    args = parser.parse_args()
    print(json.dumps(benchmark_variant(args.name, args.runs, args.train_steps, args.modes)))
