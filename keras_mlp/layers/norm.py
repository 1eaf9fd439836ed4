"""LayerNorm in the form TFLite's integer quantiser handles (Ba et al. 2016, arXiv:1607.06450).

Keras 3's `LayerNormalization` lowers to NEG and SQUARED_DIFFERENCE, which the TFLite quantiser cannot quantise
(NEG has no int8/int16 rule, SQUARED_DIFFERENCE no int16 kernel), so an int8 model would keep float islands.
The same maths written as c = x − μ; c · rsqrt(mean(c²) + ε) · γ + β lowers to SUB/MUL/MEAN/RSQRT/ADD, all
quantisable, in float32, int8, int16x8 and QAT alike.
"""
from __future__ import annotations

from keras_mlp.backend import keras, ops, serializable


@serializable
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` (same arguments and weights `gamma`, `beta`) with a quantisable graph.

    Half-precision inputs (mixed precision) are normalised in float32, as Keras does.

    Example:
    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(LayerNorm(epsilon=1e-6)(np.array([[1.0, 2.0, 3.0]], "float32"))).round(4)
    array([[-1.2247,  0.    ,  1.2247]], dtype=float32)
    """

    def call(self, inputs):
        x = ops.cast(inputs, self.dtype)  # the variable dtype: float32 under mixed precision
        rank = len(x.shape)
        axes = tuple(a % rank for a in (self.axis if isinstance(self.axis, (list, tuple)) else [self.axis]))
        param_shape = [x.shape[a] if a in axes else 1 for a in range(rank)]
        centred = x - ops.mean(x, axes, True)
        y = centred * ops.rsqrt(ops.mean(centred * centred, axes, True) + self.epsilon)
        if self.scale:
            y = y * ops.reshape(ops.cast(self.gamma, y.dtype), param_shape)
        if self.center:
            y = y + ops.reshape(ops.cast(self.beta, y.dtype), param_shape)
        return ops.cast(y, inputs.dtype)
