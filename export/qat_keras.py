"""The Keras 3 QAT engine (`ExportOptions.qat_engine="keras"`): `keras_mlp.quantization` in this process.

Same job and result as `export.qat.quantization_aware_training` (the tfmot engine): a fake-quantised copy of the
model (`quantize_aware`, activation ranges started on the calibration images) fine-tuned with the same optimiser,
loss, epochs, learning rate and batch size, then converted to each QAT mode with no representative dataset
(`int8_converter`: every range is learned): `qat` with int8 input and output; `qat_uint8` behind a normalisation
whose every range is fixed (`pixel_qat_model`: the input pinned to 0..255, so the uint8 input has scale 1, zero point
0, as in `export.pixels`), float32 logits out. The fine-tuned model's logits on each mode's gate images (for
`qat_uint8`: the pixel model's, on those images' pixels) are the reference of its parity gate.
"""
from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from export.pixels import to_pixels
from export.qat import QATResult, check_qat_request
from keras_mlp.backend import keras
from keras_mlp.quantization import int8_converter, quantize_aware


def pixel_qat_model(qat, mean, std):
    """`qat` taking raw 0..255 pixels: `(pixel / 255 - mean) / std` as a 1x1 convolution with a diagonal,
    per-channel fake-quantised kernel (each channel's one weight is its own range: exact in int8) and a bias, its
    output pinned to the normalised pixels' range. With no representative dataset the converter quantises only
    what fake quants describe: `export.pixels.PixelNormalization`'s float multiply-add constants stay float
    (measured: a MUL and an ADD left in float)."""
    channels = len(mean)
    scale = np.array([1.0 / (255.0 * s) for s in std], np.float32)
    offset = np.array([-m / s for m, s in zip(mean, std)], np.float32)
    low, high = float(offset.min()), float((255.0 * scale + offset).max())

    def normalize(pixels):
        pixels = tf.quantization.fake_quant_with_min_max_args(pixels, min=0.0, max=255.0, num_bits=8)
        kernel = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            tf.constant(np.diag(scale).reshape(1, 1, channels, channels)), -scale, scale, narrow_range=True)
        x = tf.nn.conv2d(pixels, kernel, 1, "VALID") + offset
        return tf.quantization.fake_quant_with_min_max_args(x, min=low, max=high, num_bits=8)

    pixels = keras.Input(tuple(qat.inputs[0].shape[1:]), name="images")
    return keras.Model(pixels, qat(keras.layers.Lambda(normalize, name="pixel_normalization")(pixels)),
                       name=qat.name)


def keras_quantization_aware_training(model, train_images: np.ndarray, train_labels: np.ndarray,
                                      calibration: np.ndarray, *, modes=("qat",), normalization=None,
                                      gate_images: dict[str, np.ndarray] | None = None, epochs: int = 3,
                                      learning_rate: float = 1e-4, batch_size: int = 32, seed: int = 0,
                                      progress: bool = True, signature_batch: int | None = 1,
                                      **_tfmot_only) -> QATResult:
    """`export.qat.quantization_aware_training`'s arguments and `QATResult`, fine-tuned by Keras 3 QAT.

    `calibration` (normalised images) starts the activation ranges; `normalization` (mean, std) is needed for
    `qat_uint8`. Arguments only the tfmot engine uses (`pixel_calibration`, `timeout`) are accepted and ignored:
    the files need no representative dataset.
    """
    _, modes = check_qat_request(model, modes, train_images, {"normalization=(mean, std)": normalization})
    keras.utils.set_random_seed(seed)
    qat = quantize_aware(model, calibration=np.asarray(calibration, np.float32))
    qat.compile(optimizer=keras.optimizers.Adam(learning_rate), metrics=["accuracy"],
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    history = qat.fit(np.asarray(train_images, np.float32), np.asarray(train_labels, np.int64),
                      batch_size=batch_size, epochs=epochs, shuffle=True, verbose=2 if progress else 0)
    train_s = time.perf_counter() - start
    files, gate_logits, gate_images = {}, {}, gate_images or {}
    for mode in modes:
        served = qat if mode == "qat" else pixel_qat_model(qat, *normalization)
        if mode in gate_images:  # the served model on what its file is fed: qat_uint8's pixels as they were
            images = np.asarray(gate_images[mode], np.float32)
            feed = images if mode == "qat" else to_pixels(images, *normalization).astype(np.float32)
            gate_logits[mode] = np.asarray(served.predict(feed, verbose=0))
        converter = int8_converter(served, batch_size=signature_batch)
        if mode == "qat_uint8":  # raw pixels in, float32 logits out (export.pixels)
            converter.inference_input_type, converter.inference_output_type = tf.uint8, tf.float32
        files[mode] = converter.convert()
    info = {"qat_engine": "keras", "versions": {"keras": keras.__version__}, "epochs": int(epochs),
            "learning_rate": float(learning_rate), "train_images": int(len(train_labels)),
            "train_s": round(train_s, 1),
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}
    return QATResult(files, info, gate_logits)
