"""QAT worker, run by `export.qat` in a subprocess with TF_USE_LEGACY_KERAS=1 (tfmot quantises tf_keras only).

`python -m export.qat_worker DIR` reads DIR/job.json, weights.npz (Keras 3 `get_weights()` order), data.npz;
rebuilds the same keras_mlp model under tf_keras, checks its logits equal the Keras 3 ones, annotates every
layer for tfmot (custom blocks through `NestedQuantizeConfig`), fine-tunes, converts to full int8 in each of
the job's modes (`qat`; `qat_uint8`: behind `export.pixels.PixelNormalization`, raw pixels in) and writes
DIR/<mode>.tflite, DIR/info.json and DIR/gate_<mode>.npy (the fine-tuned model's logits on that mode's gate
images).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def main(folder: str) -> None:
    folder = Path(folder)
    from keras_mlp.backend import LEGACY, keras
    if not LEGACY:
        raise SystemExit("export.qat_worker must run with TF_USE_LEGACY_KERAS=1 (tfmot needs tf_keras).")
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    import keras_mlp
    from export.convert import configure, quantizable_layer_norms
    from export.pixels import pixel_model
    from export.qat_configs import annotate, custom_objects

    job = json.loads((folder / "job.json").read_text())
    data = np.load(folder / "data.npz")
    weights = np.load(folder / "weights.npz")
    model = getattr(keras_mlp, job["class"]).from_config(job["config"])
    model.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
    check = np.abs(model.predict(data["check_images"], verbose=0) - data["check_logits"]).max()
    if not check <= job["transfer_tolerance"]:
        raise SystemExit(f"tf_keras rebuild differs from the Keras 3 model (max abs {check:.3g} > tolerance "
                         f"{job['transfer_tolerance']:.3g}); weights did not transfer exactly.")
    keras.utils.set_random_seed(job["seed"])
    plain = keras.Model(model.inputs, model.outputs, name=model.name)
    with tfmot.quantization.keras.quantize_scope(custom_objects()):
        qat = tfmot.quantization.keras.quantize_apply(annotate(plain))
    qat.compile(optimizer=keras.optimizers.Adam(job["learning_rate"]),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    start = time.perf_counter()
    history = qat.fit(data["train_images"], data["train_labels"], batch_size=job["batch_size"],
                      epochs=job["epochs"], shuffle=True, verbose=2 if job["progress"] else 0)
    train_s = time.perf_counter() - start
    for mode in job["gate"]:
        np.save(folder / f"gate_{mode}.npy", qat.predict(data[f"gate_{mode}"], verbose=0))
    spec = tf.TensorSpec([job["signature_batch"], *data["check_images"].shape[1:]], tf.float32, name="images")
    for mode in job["modes"]:
        served = qat if mode == "qat" else pixel_model(qat, *job["normalization"])
        calibration = data["calibration" if mode == "qat" else "pixel_calibration"]
        serve = tf.function(lambda images, m=served: {"logits": m(images, training=False)}, input_signature=[spec])
        with quantizable_layer_norms(served):
            concrete = serve.get_concrete_function()
        # Tracked by a plain tf.Module holding only the variables: the converter saves its trackable object as a
        # SavedModel, and saving the tf_keras model itself retraces every layer (two thirds of the conversion time).
        holder = tf.Module()
        holder.weights = list(served.weights)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
        configure(converter, mode, lambda c=calibration: ({"images": x[None]} for x in c))
        (folder / f"{mode}.tflite").write_bytes(converter.convert())
    (folder / "info.json").write_text(json.dumps({
        "qat_engine": "tfmot", "versions": {"tensorflow_model_optimization": tfmot.__version__,
                                            "tf_keras": keras.__version__},
        "transfer_max_abs": float(check), "transfer_tolerance": job["transfer_tolerance"],
        "epochs": job["epochs"], "learning_rate": job["learning_rate"],
        "train_images": int(len(data["train_labels"])), "train_s": round(train_s, 1),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}))


if __name__ == "__main__":
    main(sys.argv[1])
