"""Patch stem: non-overlapping patches embedded by a strided convolution, then flattened to tokens.

The linear patch embedding of ViT (Dosovitskiy et al. 2020, arXiv:2010.11929) and MLP-Mixer (Tolstikhin et
al. 2021, arXiv:2105.01601; reference code: vit_jax/models_mixer.py `stem`, timm `PatchEmbed`).

A `Conv2D` with kernel = stride = patch is that embedding (and lowers to the built-in CONV_2D op in TFLite;
`tf.image.extract_patches` would need Flex ops).
"""
from __future__ import annotations

from keras_mlp.backend import initializer, keras, ops, serializable
from keras_mlp.layers.quant import QuantConv2D, check_quantization, quant_config


@serializable
class PatchEmbed(keras.layers.Layer):
    """Strided-conv patch embedding: (B, H, W, C) images to (B, H/p * W/p, hidden_dim) tokens.

    Args:
        patch_size: int. Side of the square patches (kernel size and stride).
        hidden_dim: int. Embedding width.
        kernel_initializer: str or dict. Initializer of the projection. Defaults to "glorot_uniform".
        quantization: dict or None. Fake quantisation (`keras_mlp.layers.quant`). Defaults to None.

    Example:
    >>> import numpy as np
    >>> tuple(PatchEmbed(patch_size=4, hidden_dim=8)(np.zeros((2, 16, 12, 3), "float32")).shape)
    (2, 12, 8)
    """

    def __init__(self, patch_size: int, hidden_dim: int, kernel_initializer="glorot_uniform",
                 quantization: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.kernel_initializer = kernel_initializer
        self.quantization = check_quantization(quantization)

    def build(self, input_shape):
        conv = dict(strides=self.patch_size, padding="valid", kernel_initializer=initializer(self.kernel_initializer),
                    name="proj", dtype=self.dtype_policy)
        if self.quantization is None:
            self.proj = keras.layers.Conv2D(self.hidden_dim, self.patch_size, **conv)
        else:
            self.proj = QuantConv2D(self.hidden_dim, self.patch_size, quantization=self.quantization, **conv)
        self.proj.build(input_shape)
        self.built = True

    def call(self, images, training=None):
        x = self.proj(images, training=training) if self.quantization else self.proj(images)
        return ops.reshape(x, (-1, x.shape[1] * x.shape[2], self.hidden_dim))

    def compute_output_shape(self, input_shape):
        grid = [None if s is None else s // self.patch_size for s in input_shape[1:3]]
        tokens = None if None in grid else grid[0] * grid[1]
        return (input_shape[0], tokens, self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "hidden_dim": self.hidden_dim,
                "kernel_initializer": self.kernel_initializer, **quant_config(self)}
