"""Keras model → TFLite flatbuffer in every deployment mode, built-in ops only.

Route: `keras.export.ExportArchive` writes a SavedModel with one `serving_default` signature
(`images` → `logits`), then `tf.lite.TFLiteConverter.from_saved_model` converts it (variables frozen, Dense as
FULLY_CONNECTED). Quantisation follows the TFLite post-training quantisation guide
(https://ai.google.dev/edge/litert/models/post_training_quantization).
"""
from __future__ import annotations

import collections
import contextlib
import functools
import tempfile
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from export.pixels import PIXEL_MODES, pixel_model

MODES = ("float32", "float16", "dynamic", "int8", "int8_uint8", "int8_float_io", "int16x8", "qat", "qat_uint8")
"""Every export mode; `qat` is produced by `export.qat.quantization_aware_training` then converted as `int8`;
`int8_uint8` and `qat_uint8` are `int8` and `qat` taking raw uint8 pixels (`export.pixels`)."""
QAT_MODES = ("qat", "qat_uint8")
QUANTIZED_INPUT = ("int8", "int8_uint8", "int16x8", "int8_float_io", "qat", "qat_uint8")  # need representative data
# Ops that only move or (de)quantise tensors: allowed in float in a fully quantised model.
IO_OPS = {"QUANTIZE", "DEQUANTIZE"}


class ExportError(ValueError):
    """Bad input or a model that cannot be exported as asked; the message names the problem and the fix."""


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ExportError(f"Unknown export mode {mode!r}. Choose from {', '.join(MODES)} (or 'all').")
    return mode


def input_spec(model, batch_size: int | None = 1) -> tf.TensorSpec:
    """The `images` signature: (batch_size, H, W, C) float32; batch_size None for a dynamic batch."""
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
    if shape is None or len(shape) != 4 or None in tuple(shape[1:]):
        raise ExportError(f"Export needs a model with one static (batch, H, W, C) image input; this model's input "
                          f"is {shape}. Build it with a fixed image size, e.g. keras.Input((224, 224, 3)).")
    return tf.TensorSpec([batch_size, *shape[1:]], tf.float32, name="images")


def calibration_batches(data, spec: tf.TensorSpec, num_samples: int = 256, progress: bool = True):
    """Representative dataset for the converter: single images (batch 1, as the signature) from `data`.

    `data` is a NumPy array (N, H, W, C) of normalised images, or an iterable of (images, labels) / images
    batches (e.g. `keras_mlp.data.load_dataset(...)`). Checked up front: empty or mis-shaped data
    raises `ExportError` before the converter runs.
    """
    images = collect_images(data, spec, num_samples)

    def generator():
        from tqdm.auto import tqdm
        for image in tqdm(images, desc="calibration", unit="img", disable=not progress, leave=False):
            yield {"images": image[None]}
    return generator


def collect_images(data, spec: tf.TensorSpec, num_samples: int) -> np.ndarray:
    """Up to `num_samples` images of `data` as one float32 array, shape-checked against the model input."""
    if data is None:
        raise ExportError("This mode needs calibration data (a representative dataset). Pass calibration=... "
                          "(images array or a tf.data.Dataset of (images, labels)), or --data on the CLI.")
    batches = [data] if isinstance(data, np.ndarray) else data
    chunks, count = [], 0
    for batch in batches:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        batch = np.asarray(batch, np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or tuple(batch.shape[1:]) != tuple(spec.shape[1:]):
            raise ExportError(f"Data images have shape {tuple(batch.shape[1:])} but the model expects "
                              f"{tuple(spec.shape[1:])} (H, W, C). Load the data at the model's image size "
                              f"(image_size={spec.shape[1]}) with {spec.shape[3]} channels.")
        chunks.append(batch[: num_samples - count])
        count += len(chunks[-1])
        if count >= num_samples:
            break
    if count == 0:
        raise ExportError("Calibration/evaluation data is empty. Pass a non-empty images array or dataset.")
    return np.concatenate(chunks)


@contextlib.contextmanager
def quantizable_layer_norms(model):
    """Within the block, every plain Keras `LayerNormalization` of a model not built by keras_mlp traces in the
    quantisable form of `keras_mlp.layers.LayerNorm` (keras_mlp models use that layer already)."""
    from keras_mlp.backend import keras
    from keras_mlp.layers import LayerNorm
    norms = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
             if isinstance(layer, keras.layers.LayerNormalization) and not isinstance(layer, LayerNorm)
             and not getattr(layer, "rms_scaling", False)]
    for layer in norms:
        object.__setattr__(layer, "call", functools.partial(LayerNorm.call, layer))
    try:
        yield
    finally:
        for layer in norms:
            object.__delattr__(layer, "call")


def saved_model(model, directory: str, batch_size: int | None = 1) -> str:
    """Write `model` as a SavedModel with one signature `serving_default(images) -> {'logits'}`."""
    import keras
    spec = input_spec(model, batch_size)
    archive = keras.export.ExportArchive()
    archive.track(model)
    with quantizable_layer_norms(model):
        archive.add_endpoint("serving_default", lambda images: {"logits": model(images, training=False)},
                             input_signature=[spec])
        archive.write_out(directory, verbose=False)
    return directory


def configure(converter, mode: str, representative: Callable | None) -> None:
    """Set optimisation flags of `converter` for `mode` (built-in ops only in every case)."""
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS
    converter.target_spec.supported_ops = [builtins]
    if mode == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode in ("int8", "int8_float_io", "qat", *PIXEL_MODES):
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode in ("int8", "qat"):
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        elif mode in PIXEL_MODES:  # raw pixels in, float32 logits out (export.pixels)
            converter.inference_input_type = tf.uint8
    elif mode == "int16x8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


def check_pixels(images: np.ndarray, normalization) -> None:
    """A raw-pixel mode's calibration images lie in 0..255 (not normalised, not 0..1) and its (mean, std) is given,
    else `ExportError`."""
    if normalization is None:
        raise ExportError("The raw-pixel modes fold the normalisation into the file: pass normalization=(mean, std) "
                          "(per channel, on 0..1 pixels).")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 255 or high <= 1:
        raise ExportError(f"Raw-pixel calibration images must be 0..255 pixels; these span {low:.3g}..{high:.3g} "
                          "(normalised or 0..1 images?). Pass the pixels, e.g. export.pixels.to_pixels(images, "
                          "mean, std).")


def positive_int(value, what: str) -> int:
    """`value` as an int > 0, else `ExportError` naming `what`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ExportError(f"`{what}` must be a positive integer, got {value!r}.")
    return int(value)


def to_tflite(model, mode: str = "float32", calibration=None, *, batch_size: int | None = 1,
              num_calibration: int = 256, progress: bool = True, normalization=None) -> bytes:
    """Convert a Keras image classifier to a TFLite flatbuffer.

    Args:
        model: keras.Model (Keras 3) with one (H, W, C) input.
        mode: one of `MODES` but the QAT ones (see `export.qat`): float32, float16, dynamic (int8 weights), int8
            (int8 I/O), int8_uint8 (int8 compute, raw uint8 pixels in, float32 logits out), int8_float_io (int8
            compute, float32 I/O), int16x8 (int16 activations, int8 weights).
        calibration: images array or iterable of (images, labels) batches, normalised as for training (raw
            0..255 pixels for int8_uint8); needed by int8, int8_uint8, int8_float_io and int16x8.
        batch_size: int or None. Static batch of the signature (1 for mobile/XNNPACK); None for dynamic.
        num_calibration: int. Images used for calibration. Defaults to 256.
        normalization: (mean, std) per channel on 0..1 pixels, folded into the int8_uint8 file.

    Returns: the flatbuffer bytes. Raises `ExportError` for bad input or non-built-in (Flex/custom) ops.
    """
    check_mode(mode)
    if mode in QAT_MODES:
        raise ExportError(f"Mode {mode!r} fine-tunes the model first: use export.qat.qat_files(...) or "
                          f"export_model(..., modes={mode!r}), not to_tflite.")
    spec = input_spec(model, batch_size)
    representative = None
    if mode in QUANTIZED_INPUT:
        positive_int(num_calibration, "num_calibration")
        representative = calibration_batches(calibration, spec, num_calibration, progress)
    if mode in PIXEL_MODES:
        check_pixels(collect_images(calibration, spec, num_calibration), normalization)
        model = pixel_model(model, *normalization)
    with tempfile.TemporaryDirectory(prefix="keras_mlp_export_") as tmp:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model(model, tmp, batch_size))
        configure(converter, mode, representative)
        try:
            flatbuffer = converter.convert()
        except Exception as err:  # ConverterError and friends: keep the converter's own message.
            raise ExportError(f"TFLite conversion ({mode}) failed with built-in ops only: {err}. The model must use "
                              "only ops with a TFLite built-in kernel (no Flex/custom ops); replace the offending "
                              "op (e.g. tf.image.extract_patches → strided Conv2D).") from err
    check_builtin_only(flatbuffer)
    return flatbuffer


def op_histogram(flatbuffer: bytes) -> dict[str, int]:
    """Count of each operator in the model's graph, e.g. {'FULLY_CONNECTED': 7, 'GELU': 2, ...}."""
    from ai_edge_litert.interpreter import Interpreter
    ops = Interpreter(model_content=flatbuffer)._get_ops_details()
    return dict(collections.Counter(op["op_name"] for op in ops).most_common())


def check_builtin_only(flatbuffer: bytes) -> None:
    """Raise `ExportError` if the model holds a custom or Flex op."""
    bad = sorted(op for op in op_histogram(flatbuffer) if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE"))
    if bad:
        raise ExportError(f"The converted model holds non-built-in ops {bad}; it would need the Flex delegate. "
                          "Use layers that lower to TFLite built-ins.")


def float_compute_ops(flatbuffer: bytes) -> dict[str, int]:
    """Ops (other than quantize/dequantize) with a float32 input or output: empty for a fully integer model."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=flatbuffer)
    tensors = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    found = collections.Counter()
    for op in interpreter._get_ops_details():
        if op["op_name"] in IO_OPS:
            continue
        indices = [i for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0]
        if any(tensors.get(i) == np.float32 for i in indices):
            found[op["op_name"]] += 1
    return dict(found)
