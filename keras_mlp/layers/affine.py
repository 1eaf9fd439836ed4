"""ResMLP's per-channel `Affine` (α ⊙ x + β, its replacement for LayerNorm) and `LayerScale` (γ ⊙ x).

Reference: Touvron et al. 2021, "ResMLP: Feedforward networks for image classification with data-efficient
training" (arXiv:2105.03404), and CaiT's LayerScale (arXiv:2103.17239).
"""
from __future__ import annotations

from keras_mlp.backend import keras, ops, serializable


@serializable
class Affine(keras.layers.Layer):
    """Per-channel affine transform α ⊙ x + β over the last axis; α starts at 1 and β at 0.

    Example:
    >>> import numpy as np
    >>> layer = Affine()
    >>> tuple(layer(np.ones((2, 4, 8), "float32")).shape), [tuple(w.shape) for w in layer.weights]
    ((2, 4, 8), [(8,), (8,)])
    """

    def build(self, input_shape):
        dim = (input_shape[-1],)
        self.alpha = self.add_weight(name="alpha", shape=dim, initializer="ones")
        self.beta = self.add_weight(name="beta", shape=dim, initializer="zeros")
        self.built = True

    def call(self, x):
        return x * ops.cast(self.alpha, x.dtype) + ops.cast(self.beta, x.dtype)

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

    def __init__(self, init_value: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.init_value = init_value

    def build(self, input_shape):
        self.gamma = self.add_weight(name="gamma", shape=(input_shape[-1],),
                                     initializer=keras.initializers.Constant(self.init_value))
        self.built = True

    def call(self, x):
        return x * ops.cast(self.gamma, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}
