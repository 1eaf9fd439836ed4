"""Fake quantisation for quantisation-aware training (Jacob et al. 2018, "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference", arXiv:1712.05877; Krishnamoorthi 2018, "Quantizing deep
convolutional networks for efficient inference: A whitepaper", arXiv:1806.08342).

Every layer of the zoo takes `quantization` (None, or the dict `check_quantization` returns); with it the layer
fake-quantises its kernels and every activation whose range the TFLite converter needs, through
`keras.quantizers.fake_quant_with_min_max_vars` (straight-through gradients on every backend; on TensorFlow it is
the `FakeQuantWithMinMaxVars` op the converter reads). `keras_mlp.quantization.quantize_aware` sets it.

- Weights: symmetric ranges ±max|w| taken from the weights at every step, narrow range (zero point 0 in the int8
  file). Per output channel (`per_channel`) for the stem's Conv2D; per tensor for every Dense. Measured on the
  four tiny families (TF 2.21 converter): per-axis kernels on every Dense fail with "'tfl.transpose' op has
  mismatched quantized axes of input and output", and so do per-axis kernels on the head alone, although it sits
  after the last transpose; per-axis on the stem only converts to full int8 in every family.
- Activations: per-tensor `RangeQuantizer` observers with min/max updated as exponential moving averages in
  training (as Jacob et al. §3.1 and tfmot's MovingAverageQuantizer), not trainable ranges: they need no
  initial guess (the first batch sets them), cannot collapse under a large learning rate, and train the same on
  every backend. Full-int8 conversion with no representative dataset needs a range at every tensor an op
  creates, so the points are not only block outputs but also inside LayerNorm (its SUB/MUL/MEAN/RSQRT/ADD),
  after GELU, the gating product, each residual add, Affine and LayerScale.
"""
from __future__ import annotations

from keras_mlp.backend import keras, ops, serializable

DEFAULTS = {"weight_bits": 8, "activation_bits": 8, "per_channel": True, "momentum": 0.99}


def check_quantization(quantization) -> dict | None:
    """None, or `quantization` with the defaults filled in; ValueError for unknown keys or bad values."""
    if quantization is None:
        return None
    if not isinstance(quantization, dict):
        raise TypeError(f"`quantization` must be a dict or None, got {type(quantization).__name__}.")
    unknown = sorted(set(quantization) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown `quantization` keys {unknown}; known: {sorted(DEFAULTS)}.")
    q = {**DEFAULTS, **quantization}
    for key in ("weight_bits", "activation_bits"):
        if isinstance(q[key], bool) or not isinstance(q[key], int) or not 2 <= q[key] <= 16:
            raise ValueError(f"`{key}` must be an integer in [2, 16], got {q[key]!r}.")
    if not 0.0 <= float(q["momentum"]) < 1.0:
        raise ValueError(f"`momentum` must be in [0, 1), got {q['momentum']!r}.")
    q["per_channel"] = bool(q["per_channel"])
    return q


def fake_quant_weight(kernel, quantization: dict, per_channel: bool = True):
    """`kernel` fake-quantised on the symmetric range ±max|kernel| (per last axis if asked), narrow range."""
    axes = tuple(range(len(kernel.shape) - 1))
    if per_channel and quantization["per_channel"]:
        bound = ops.maximum(ops.max(ops.abs(kernel), axis=axes), 1e-8)
        return keras.quantizers.fake_quant_with_min_max_vars(kernel, -bound, bound, quantization["weight_bits"],
                                                             narrow_range=True, axis=-1)
    bound = ops.maximum(ops.max(ops.abs(kernel)), 1e-8)
    return keras.quantizers.fake_quant_with_min_max_vars(kernel, -bound, bound, quantization["weight_bits"],
                                                         narrow_range=True)


@serializable
class RangeQuantizer(keras.layers.Layer):
    """Per-tensor fake quantisation on a [min, max] range observed in training (moving averages; the first training
    batch sets it). `calibrating = True` updates the range in inference calls too (see `quantize_aware`).

    Args:
        num_bits: int. Bits of the quantised tensor. Defaults to 8.
        momentum: float. Weight of the old range in the moving average. Defaults to 0.99.
    """

    def __init__(self, num_bits: int = 8, momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.num_bits = num_bits
        self.momentum = momentum
        self.calibrating = False

    def build(self, input_shape):
        self.min = self.add_weight(name="min", shape=(), initializer="zeros", trainable=False)
        self.max = self.add_weight(name="max", shape=(), initializer="zeros", trainable=False)
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros", trainable=False)
        self.built = True

    def call(self, x, training=None):
        if training or self.calibrating:
            seen = ops.stop_gradient(x)
            seen = ops.where(ops.isfinite(seen), seen, ops.zeros_like(seen))  # one inf must not poison the range
            low = ops.minimum(ops.min(seen), 0.0)  # the range holds 0 (exact zero point)
            high = ops.maximum(ops.max(seen), 0.0)
            m = ops.where(self.seen > 0, self.momentum, 0.0)
            self.min.assign(m * self.min + (1 - m) * ops.cast(low, self.min.dtype))
            self.max.assign(m * self.max + (1 - m) * ops.cast(high, self.max.dtype))
            self.seen.assign(self.seen + 1)
        low, high = self.min, ops.maximum(self.max, self.min + 1e-6)
        return keras.quantizers.fake_quant_with_min_max_vars(x, low, high, self.num_bits)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_bits": self.num_bits, "momentum": self.momentum}


def range_quantizers(layer, quantization: dict | None, *names: str) -> dict:
    """{name: RangeQuantizer} for the activation points `names` of `layer` (empty without quantization)."""
    if quantization is None:
        return {}
    quantizers = {name: RangeQuantizer(quantization["activation_bits"], quantization["momentum"],
                                       name=f"{name}_range", dtype=layer.dtype_policy) for name in names}
    for quantizer in quantizers.values():
        quantizer.build(None)  # scalar ranges: built with the owner, whatever the input
    return quantizers


def fq(layer, name: str, x, training=None):
    """`x` through `layer`'s activation point `name`, or `x` unchanged when `layer` is not quantised."""
    quantizers = getattr(layer, "quantizers", None)
    return quantizers[name](x, training=training) if quantizers else x


@serializable
class QuantDense(keras.layers.Dense):
    """`keras.layers.Dense` with a fake-quantised kernel and output (the zoo's Dense under `quantization`).

    Args:
        quantization: dict. See `check_quantization`.
        per_channel: bool. Per-output-channel kernel ranges when `quantization["per_channel"]` too. Defaults to
            False: per-axis Dense kernels fail the TFLite converter in these models (see the module docstring).
    """

    def __init__(self, *args, quantization: dict, per_channel: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.quantization = quantization
        self.per_channel = per_channel

    def build(self, input_shape):
        super().build(input_shape)
        self.quantizers = range_quantizers(self, self.quantization, "output")

    def call(self, x, training=None):
        y = ops.matmul(x, fake_quant_weight(self.kernel, self.quantization, self.per_channel))
        if self.use_bias:
            y = y + self.bias
        if self.activation is not None:
            y = self.activation(y)
        return fq(self, "output", y, training)

    def get_config(self):
        return {**super().get_config(), "quantization": self.quantization, "per_channel": self.per_channel}


@serializable
class QuantConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with a per-output-channel fake-quantised kernel and output (the patch stem)."""

    def __init__(self, *args, quantization: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.quantization = quantization

    def build(self, input_shape):
        super().build(input_shape)
        self.quantizers = range_quantizers(self, self.quantization, "output")

    def call(self, x, training=None):
        y = ops.conv(x, fake_quant_weight(self.kernel, self.quantization), strides=self.strides,
                     padding=self.padding, data_format=self.data_format, dilation_rate=self.dilation_rate)
        if self.use_bias:
            y = y + ops.reshape(self.bias, (1,) * (len(y.shape) - 1) + (-1,))
        return fq(self, "output", y, training)

    def get_config(self):
        return {**super().get_config(), "quantization": self.quantization}


def dense(units: int, quantization: dict | None, per_channel: bool = False, **kwargs):
    """A Dense layer: `QuantDense` under `quantization`, else `keras.layers.Dense`."""
    if quantization is None:
        return keras.layers.Dense(units, **kwargs)
    return QuantDense(units, quantization=quantization, per_channel=per_channel, **kwargs)


def quant_config(layer) -> dict:
    """The `quantization` entry of `layer.get_config()`: only when set, so float configs are unchanged."""
    return {} if layer.quantization is None else {"quantization": layer.quantization}
