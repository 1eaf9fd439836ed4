"""Quantisation-aware training on Keras 3, any backend: `quantize_aware(model)` gives a fake-quantised copy.

Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference" (arXiv:1712.05877); Krishnamoorthi 2018, "Quantizing deep convolutional networks for efficient
inference: A whitepaper" (arXiv:1806.08342). Where the ranges sit and why: `keras_mlp.layers.quant`.

The copy is the same family rebuilt from its config with `quantization` set (one source of the architecture),
weights copied by path; it trains with the user's `compile`/`fit` and, on TensorFlow, converts to a full-int8
TFLite file with no representative dataset (`int8_converter`): the file's scales come from the learned ranges.
"""
from __future__ import annotations

import numpy as np

from keras_mlp.backend import keras
from keras_mlp.layers.quant import RangeQuantizer, check_quantization
from keras_mlp.models.trunk import MLPTrunk


def _keras_quantized(model) -> list[str]:
    return [layer.name for layer in model._flatten_layers(include_self=False, recursive=True)
            if getattr(layer, "quantization_mode", None)]


def quantize_aware(model: MLPTrunk, *, weight_bits: int = 8, activation_bits: int = 8, per_channel: bool = True,
                   momentum: float = 0.99, calibration=None) -> MLPTrunk:
    """A new model: `model` (not modified) with fake quantisation, ready to `compile` and `fit`.

    Args:
        model: a keras_mlp model (`keras_mlp.MLPTrunk` subclass, float).
        weight_bits: int. Bits of the weights (symmetric, ranges from the weights each step). Defaults to 8.
        activation_bits: int. Bits of the activations (per tensor, moving-average ranges). Defaults to 8.
        per_channel: bool. Per-output-channel weight ranges where the TFLite converter takes them: the stem's
            Conv2D (per-axis Dense kernels fail it; `keras_mlp.layers.quant`). Defaults to True.
        momentum: float. Of the moving-average activation ranges. Defaults to 0.99.
        calibration: images or None. If given, the activation ranges start as the ranges seen on them (one
            inference pass); otherwise the first training batch sets them.

    Returns: the same class, its config with `quantization`; round-trips through `.keras` after `import keras_mlp`.

    Example:
    >>> import numpy as np, keras_mlp
    >>> float_model = keras_mlp.create_model("mixer_s16_224", image_size=16, patch_size=8, num_blocks=1,
    ...                                      hidden_dim=8, tokens_mlp_dim=4, channels_mlp_dim=8, num_classes=3)
    >>> qat = quantize_aware(float_model, calibration=np.ones((2, 16, 16, 3), "float32"))
    >>> qat.get_config()["quantization"]["weight_bits"], qat.output_shape
    (8, (None, 3))
    """
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax", "torch") or not hasattr(keras.quantizers, "fake_quant_with_min_max_vars"):
        raise ValueError(f"quantize_aware needs keras.quantizers.fake_quant_with_min_max_vars with gradients, which "
                           f"the {backend!r} backend lacks. Use KERAS_BACKEND=tensorflow, jax or torch.")
    if not isinstance(model, keras.Model):
        raise TypeError(f"quantize_aware takes a keras_mlp model, got {type(model).__name__}.")
    if not isinstance(model, MLPTrunk):
        known = {"InputLayer"}
        unknown = sorted({type(layer).__name__ for layer in model.layers} - known)
        raise TypeError(f"quantize_aware knows the keras_mlp models only (built by keras_mlp.create_model or a "
                        f"family class); {type(model).__name__} holds layers it does not know: {unknown}.")
    if model.quantization is not None or any(isinstance(v, RangeQuantizer) for v in model._flatten_layers()):
        raise ValueError(f"{model.name} is already quantisation-aware; pass the float model it was made from.")
    int8 = _keras_quantized(model)
    if int8:
        raise ValueError(f"{model.name} was quantised with model.quantize() (layers {int8[:5]}...); pass the float "
                         "model: fake quantisation needs float weights.")
    quantization = check_quantization(dict(weight_bits=weight_bits, activation_bits=activation_bits,
                                           per_channel=per_channel, momentum=momentum))
    qat = type(model).from_config({**model.get_config(), "quantization": quantization})
    values = {v.path: v for v in model.weights}
    for variable in qat.weights:
        if variable.path in values:
            variable.assign(keras.ops.copy(values.pop(variable.path).value))  # own buffer: JAX fit donates them
    if values:
        raise RuntimeError(f"Weights without a place in the quantised copy: {sorted(values)[:5]}.")
    if calibration is not None:
        calibrate(qat, calibration)
    return qat


def range_quantizers(model) -> list[RangeQuantizer]:
    """Every activation range of a `quantize_aware` model, in layer order."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, RangeQuantizer)]


def calibrate(model, images, batch_size: int = 64) -> None:
    """Set the activation ranges of `model` from `images` (an inference pass; moving averages over batches)."""
    quantizers = range_quantizers(model)
    for q in quantizers:
        q.calibrating = True
    try:
        images = np.asarray(images, np.float32)
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size], training=False)
    finally:
        for q in quantizers:
            q.calibrating = False


def int8_converter(model, batch_size: int = 1):
    """A `tf.lite.TFLiteConverter` (TensorFlow backend) of a `quantize_aware` model to full int8, int8 input and
    output, built-in ops, no representative dataset: every range comes from the model's fake-quant ops.

    From a frozen concrete function: `from_keras_model` and `from_saved_model` keep the ranges as variables, and
    then the converter leaves the FakeQuant ops unconverted ("neither a custom op nor a flex op"). The ops set stays
    TFLITE_BUILTINS: TFLITE_BUILTINS_INT8 makes TF 2.21 ask for a representative dataset before it sees the
    FakeQuant ops.
    """
    import tensorflow as tf
    spec = tf.TensorSpec([batch_size, *model.inputs[0].shape[1:]], tf.float32, name="images")
    concrete = tf.function(lambda images: {"logits": model(images, training=False)},
                           input_signature=[spec]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter


__all__ = ["calibrate", "int8_converter", "quantize_aware", "range_quantizers"]
