"""LayerNorm in the form TFLite's integer quantiser handles (Ba et al. 2016, arXiv:1607.06450).

Keras 3's `LayerNormalization` lowers to NEG and SQUARED_DIFFERENCE, which the TFLite quantiser cannot quantise
(NEG has no int8/int16 rule, SQUARED_DIFFERENCE no int16 kernel), so an int8 model would keep float islands.
The same maths written as c = x − μ; c · rsqrt(mean(c²) + ε) · γ + β lowers to SUB/MUL/MEAN/RSQRT/ADD, all
quantisable, in float32, int8, int16x8 and QAT alike.

On the PyTorch backend a float layer runs Keras' own `LayerNormalization` instead, which calls PyTorch's fused
kernel (`torch.nn.functional.layer_norm`): the decomposed form costs nine elementwise passes there, forward and
back. Nothing is exported from PyTorch, and XLA fuses the decomposed form on JAX and TensorFlow anyway.
"""
from __future__ import annotations

from keras_mlp.backend import LEGACY, keras, ops, serializable
from keras_mlp.layers.quant import check_quantization, fq, quant_config, range_quantizers

FUSED_KERNEL = not LEGACY and keras.backend.backend() == "torch"
POINTS = ("mean", "centred", "square", "variance", "variance_eps", "rsqrt", "normalised", "scaled", "output")


@serializable
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` (same arguments and weights `gamma`, `beta`) with a quantisable graph.

    Half-precision inputs (mixed precision) are normalised in float32, as Keras does. With `quantization` (see
    `keras_mlp.layers.quant`) every intermediate tensor is fake-quantised (`POINTS`), so that each of the ops it
    lowers to has a range in a full-int8 file.

    Example:
    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(LayerNorm(epsilon=1e-6)(np.array([[1.0, 2.0, 3.0]], "float32"))).round(4)
    array([[-1.2247,  0.    ,  1.2247]], dtype=float32)
    """

    def __init__(self, *args, quantization: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.quantization = check_quantization(quantization)

    def build(self, input_shape):
        super().build(input_shape)
        self.quantizers = range_quantizers(self, self.quantization, *POINTS)

    def call(self, inputs, training=None):
        if self.quantization is None and FUSED_KERNEL:
            return super().call(inputs)
        return self.quantizable_call(inputs, training)

    def quantizable_call(self, inputs, training=None):
        """The SUB/MUL/MEAN/RSQRT/ADD form, fake-quantised at `POINTS` under `quantization`."""
        def q(name, t):
            return fq(self, name, t, training)
        x = ops.cast(inputs, self.dtype)  # the variable dtype: float32 under mixed precision
        rank = len(x.shape)
        axes = tuple(a % rank for a in (self.axis if isinstance(self.axis, (list, tuple)) else [self.axis]))
        param_shape = [x.shape[a] if a in axes else 1 for a in range(rank)]
        centred = q("centred", x - q("mean", ops.mean(x, axes, True)))
        variance = q("variance", ops.mean(q("square", centred * centred), axes, True))
        variance = q("variance_eps", variance + self.epsilon)
        # (`getattr`: export binds this form to plain Keras LayerNormalization layers, which have no `quantization`)
        if getattr(self, "quantization", None) is not None:  # a variance under half a step rounds to 0: rsqrt = inf
            variance = ops.maximum(variance, self.epsilon)
        y = q("normalised", centred * q("rsqrt", ops.rsqrt(variance)))
        if self.scale:
            y = q("scaled", y * ops.reshape(ops.cast(self.gamma, y.dtype), param_shape))
        if self.center:
            y = y + ops.reshape(ops.cast(self.beta, y.dtype), param_shape)
        return ops.cast(q("output", y), inputs.dtype)

    def get_config(self):
        return {**super().get_config(), **quant_config(self)}
