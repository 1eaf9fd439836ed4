"""ResMLP's per-channel `Affine` (α ⊙ x + β, its replacement for LayerNorm) and `LayerScale` (γ ⊙ x).

Reference: Touvron et al. 2021, "ResMLP: Feedforward networks for image classification with data-efficient
training" (arXiv:2105.03404), and CaiT's LayerScale (arXiv:2103.17239).
"""
from __future__ import annotations

from keras_mlp.backend import keras, ops, serializable
from keras_mlp.layers.quant import check_quantization, fq, quant_config, range_quantizers


@serializable
class Affine(keras.layers.Layer):
    """Per-channel affine transform α ⊙ x + β over the last axis; α starts at 1 and β at 0.

    Example:
    >>> import numpy as np
    >>> layer = Affine()
    >>> tuple(layer(np.ones((2, 4, 8), "float32")).shape), [tuple(w.shape) for w in layer.weights]
    ((2, 4, 8), [(8,), (8,)])
    """

    def __init__(self, quantization: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.quantization = check_quantization(quantization)

    def build(self, input_shape):
        dim = (input_shape[-1],)
        self.alpha = self.add_weight(name="alpha", shape=dim, initializer="ones")
        self.beta = self.add_weight(name="beta", shape=dim, initializer="zeros")
        self.quantizers = range_quantizers(self, self.quantization, "scaled", "output")
        self.built = True

    def call(self, x, training=None):
        x = fq(self, "scaled", x * ops.cast(self.alpha, x.dtype), training)
        return fq(self, "output", x + ops.cast(self.beta, x.dtype), training)

    def get_config(self):
        return {**super().get_config(), **quant_config(self)}

    def compute_output_shape(self, input_shape):
        return input_shape


@serializable
class LayerScale(keras.layers.Layer):
    """Per-channel scale γ ⊙ x of a residual branch.

    Args:
        init_value: float. Initial value of every γ (0.1 for depth 12, 1e-5 for 24, 1e-6 deeper in ResMLP).
            Defaults to 1e-5.

    Example:
    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(LayerScale(0.1)(np.ones((1, 2, 3), "float32")))[0, 0]
    array([0.1, 0.1, 0.1], dtype=float32)
    """

    def __init__(self, init_value: float = 1e-5, quantization: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.init_value = init_value
        self.quantization = check_quantization(quantization)

    def build(self, input_shape):
        self.gamma = self.add_weight(name="gamma", shape=(input_shape[-1],),
                                     initializer=keras.initializers.Constant(self.init_value))
        self.quantizers = range_quantizers(self, self.quantization, "output")
        self.built = True

    def call(self, x, training=None):
        return fq(self, "output", x * ops.cast(self.gamma, x.dtype), training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value, **quant_config(self)}
