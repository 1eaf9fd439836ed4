"""gMLP's spatial gating unit: split channels into (u, v), normalise v, project v across tokens, gate u.

Reference: Liu et al. 2021, "Pay Attention to MLPs" (arXiv:2105.08050), timm `SpatialGatingUnit`.
"""
from __future__ import annotations

from keras_mlp.backend import keras, ops, serializable
from keras_mlp.layers.mlp import TokenMixing
from keras_mlp.layers.norm import LayerNorm
from keras_mlp.layers.quant import check_quantization, fq, quant_config, range_quantizers


@serializable
class SpatialGatingUnit(keras.layers.Layer):
    """(B, N, 2c) → u ⊙ Linear_N(LayerNorm(v)) with (u, v) the first and second channel halves, (B, N, c).

    The token projection starts near zero (weights N(0, 1e-6)) with bias one, so the unit starts as identity
    on u, as the paper prescribes.

    Args:
        layer_norm_epsilon: float. Epsilon of the LayerNorm on v. Defaults to 1e-5 (PyTorch's default, timm).
        quantization: dict or None. Fake quantisation (`keras_mlp.layers.quant`). Defaults to None.

    Example:
    >>> import numpy as np
    >>> tuple(SpatialGatingUnit()(np.ones((2, 6, 16), "float32")).shape)
    (2, 6, 8)
    """

    def __init__(self, layer_norm_epsilon: float = 1e-5, quantization: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.quantization = check_quantization(quantization)

    def build(self, input_shape):
        if input_shape[-1] % 2:
            raise ValueError(f"SpatialGatingUnit needs an even channel count, got {input_shape[-1]}.")
        half = (*input_shape[:-1], input_shape[-1] // 2)
        self.norm = LayerNorm(epsilon=self.layer_norm_epsilon, name="norm", dtype=self.dtype_policy,
                              quantization=self.quantization)
        self.norm.build(half)
        self.proj = TokenMixing(kernel_initializer={"class_name": "RandomNormal", "config": {"stddev": 1e-6}},
                                bias_initializer="ones", name="proj", dtype=self.dtype_policy,
                                quantization=self.quantization)
        self.proj.build(half)
        self.quantizers = range_quantizers(self, self.quantization, "output")
        self.built = True

    def call(self, x, training=None):
        u, v = ops.split(x, 2, -1)
        return fq(self, "output", u * self.proj(self.norm(v, training=training), training=training), training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)

    def get_config(self):
        return {**super().get_config(), "layer_norm_epsilon": self.layer_norm_epsilon, **quant_config(self)}
