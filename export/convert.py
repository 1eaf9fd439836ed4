"""Keras model → TFLite flatbuffer in every deployment mode, built-in ops only.

Route: `keras.export.ExportArchive` writes a SavedModel with one `serving_default` signature
(`images` → `logits`), then `tf.lite.TFLiteConverter.from_saved_model` converts it (variables frozen, Dense as
FULLY_CONNECTED). Quantisation follows the TFLite post-training quantisation guide
(https://ai.google.dev/edge/litert/models/post_training_quantization).
"""
from __future__ import annotations

import collections.abc
import contextlib
import functools
import tempfile
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from export import litert
from export.errors import ExportError, positive_int
from export.modes import CALIBRATED, PIXEL_MODES, QAT_MODES, check_mode
from export.pixels import pixel_model
from keras_mlp.backend import keras
from keras_mlp.layers import LayerNorm


def input_spec(model, batch_size: int | None = 1) -> tf.TensorSpec:
    """The `images` signature: (batch_size, H, W, C) float32; batch_size None for a dynamic batch."""
    shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
    if shape is None or len(shape) != 4 or None in tuple(shape[1:]):
        raise ExportError(f"Export needs a model with one static (batch, H, W, C) image input; this model's input "
                          f"is {shape}. Build it with a fixed image size, e.g. keras.Input((224, 224, 3)).")
    return tf.TensorSpec([batch_size, *shape[1:]], tf.float32, name="images")


def num_classes_of(model) -> int:
    """Class count of a classifier with one (batch, classes) output, else `ExportError`."""
    outputs = list(getattr(model, "outputs", None) or [])
    shape = tuple(outputs[0].shape) if len(outputs) == 1 else None
    if shape is None or len(shape) != 2 or shape[-1] is None:
        raise ExportError(f"Export needs an image classifier with one 2-D (batch, classes) output; this model's "
                          f"output is {shape if len(outputs) == 1 else [tuple(o.shape) for o in outputs]}. Add a "
                          "head (include_top=True) or global pooling (pooling='avg') to a feature model.")
    return int(shape[-1])


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


def nested_layers(layer) -> list:
    """`layer` and every layer nested in it, each once, depth first: a model's `layers` and the layers a layer holds
    as public attributes (alone, in a list/tuple or a dict), which is what Keras tracks as sublayers.

    Keras 3 has no public recursive walk (`_flatten_layers` is private; `submodules` is `tf.Module`'s, which Keras 3
    layers are not), so this walks the public attributes; it finds the same layers in Keras 3 and tf_keras.
    """
    found, seen = [], set()

    def visit(obj):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        found.append(obj)
        children = list(obj.layers) if isinstance(obj, keras.Model) else []
        for name, value in vars(obj).items():
            if name.startswith("_") or isinstance(value, (str, bytes)):
                continue
            if isinstance(value, collections.abc.Mapping):
                value = list(value.values())
            values = value if isinstance(value, collections.abc.Sequence) else [value]
            children += [v for v in values if isinstance(v, keras.layers.Layer)]
        for child in children:
            visit(child)
    visit(layer)
    return found


@contextlib.contextmanager
def quantizable_layer_norms(model):
    """Within the block, every plain Keras `LayerNormalization` of a model not built by keras_mlp traces in the
    quantisable form of `keras_mlp.layers.LayerNorm` (keras_mlp models use that layer already)."""
    norms = [layer for layer in nested_layers(model)[1:]
             if isinstance(layer, keras.layers.LayerNormalization) and not isinstance(layer, LayerNorm)
             and not getattr(layer, "rms_scaling", False)]
    for layer in norms:
        object.__setattr__(layer, "call", functools.partial(LayerNorm.quantizable_call, layer))
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


class SavedModels(contextlib.AbstractContextManager):
    """The SavedModels `to_tflite` converts from, each written once per (model, batch size, folded normalisation) in
    one temporary folder, so that every mode of one export converts from the same SavedModel (writing it is about
    half of a small model's conversion time). Use as a context manager; the folder is removed on exit.
    """

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="keras_mlp_export_")
        self._written: dict[tuple, tuple] = {}  # key -> (model, path); the model kept so that its id stays unique

    def path(self, model, batch_size: int | None = 1, normalization=None) -> str:
        """The SavedModel of `model` (behind `export.pixels.pixel_model` when `normalization` is given)."""
        key = (id(model), batch_size, None if normalization is None else str(np.asarray(normalization, float).tolist()))
        if key not in self._written:
            served = model if normalization is None else pixel_model(model, *normalization)
            path = saved_model(served, f"{self._tmp.name}/{len(self._written)}", batch_size)
            self._written[key] = (model, path)
        return self._written[key][1]

    def __exit__(self, *exc) -> None:
        self._written.clear()
        self._tmp.cleanup()


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


def to_tflite(model, mode: str = "float32", calibration=None, *, batch_size: int | None = 1,
              num_calibration: int = 256, progress: bool = True, normalization=None,
              saved_models: SavedModels | None = None) -> bytes:
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
        saved_models: a `SavedModels` the SavedModel is taken from (written there once for all modes); None: a
            temporary one for this call.

    Returns: the flatbuffer bytes. Raises `ExportError` for bad input or non-built-in (Flex/custom) ops.
    """
    check_mode(mode)
    if mode in QAT_MODES:
        raise ExportError(f"Mode {mode!r} fine-tunes the model first: use export.qat.quantization_aware_training"
                          f"(...) or export_model(..., ExportOptions(modes={mode!r})), not to_tflite.")
    spec = input_spec(model, batch_size)
    representative = None
    if mode in CALIBRATED:
        positive_int(num_calibration, "num_calibration")
        representative = calibration_batches(calibration, spec, num_calibration, progress)
    if mode in PIXEL_MODES:
        check_pixels(collect_images(calibration, spec, num_calibration), normalization)
    with contextlib.ExitStack() as stack:
        saved_models = saved_models or stack.enter_context(SavedModels())
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_models.path(model, batch_size, normalization if mode in PIXEL_MODES else None))
        configure(converter, mode, representative)
        try:
            flatbuffer = converter.convert()
        except Exception as err:  # ConverterError and friends: keep the converter's own message.
            raise ExportError(f"TFLite conversion ({mode}) failed with built-in ops only: {err}. The model must use "
                              "only ops with a TFLite built-in kernel (no Flex/custom ops); replace the offending "
                              "op (e.g. tf.image.extract_patches → strided Conv2D).") from err
    foreign = litert.non_builtin_ops(flatbuffer)
    if foreign:
        raise ExportError(f"The converted model holds non-built-in ops {foreign}; it would need the Flex delegate. "
                          "Use layers that lower to TFLite built-ins.")
    return flatbuffer


def float32_roundtrip(model, images: np.ndarray, **kwargs) -> tuple[bytes, np.ndarray]:
    """One call for model tests: convert to float32 TFLite (built-in ops only, batch 1) and run `images`.

    Returns (flatbuffer, tflite logits); compare the logits with `model(images)`.
    """
    flatbuffer = to_tflite(model, "float32", progress=False, **kwargs)
    return flatbuffer, litert.run(flatbuffer, images)
