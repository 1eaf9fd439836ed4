"""Stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth", arXiv:1603.09382), as timm's
`DropPath`: drop a residual branch per sample."""
from __future__ import annotations

from keras_mlp.backend import keras, serializable


@serializable
class DropPath(keras.layers.Dropout):
    """Drops the whole branch of a sample with probability `rate` and scales kept ones by 1 / (1 - rate).

    This is Keras' `Dropout` with a per-sample noise shape (None, 1, ..., 1), so seeding, training-only
    behaviour and serialisation come from Keras itself.

    Args:
        rate: float in [0, 1). Drop probability.
        seed: int or None. Seed of the drop mask. Defaults to None.

    Example (each sample's branch is all kept, scaled by 2, or all dropped):
    >>> import numpy as np
    >>> y = keras.ops.convert_to_numpy(DropPath(0.5, seed=1)(np.ones((8, 3, 4), "float32"), training=True))
    >>> bool((y == y[:, :1, :1]).all()), sorted(np.unique(y).tolist())
    (True, [0.0, 2.0])
    >>> float(keras.ops.min(DropPath(0.5)(np.ones((2, 3), "float32"))))  # inference: identity
    1.0
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, **kwargs)

    def build(self, input_shape):
        self.noise_shape = (None,) + (1,) * (len(input_shape) - 1)
        super().build(input_shape)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape", None)
        return config
