"""Class token + learned position embedding, and pooling by token: ViT (Dosovitskiy et al. 2020,
arXiv:2010.11929) as the feed-forward-only ViT keeps it (Melas-Kyriazi 2021, arXiv:2105.02723; reference code:
timm `VisionTransformer`, lukemelas/do-you-even-need-attention).

The position embedding may be stored on another patch grid than the model's (the feed-forward-only ViT-L/32
keeps ViT's 14×14 grid): it is then resampled bilinearly (half-pixel centres, like PyTorch
`interpolate(..., align_corners=False)`) by a constant matrix, which TFLite folds away.
"""
from __future__ import annotations

import numpy as np

from keras_mlp.backend import initializer, keras, ops, serializable
from keras_mlp.layers.quant import check_quantization, fq, quant_config, range_quantizers


def bilinear_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix of 1-D linear interpolation with half-pixel centres (align_corners=False)."""
    m = np.zeros((dst, src), np.float64)
    for i in range(dst):
        x = min(max((i + 0.5) * src / dst - 0.5, 0.0), src - 1)
        lo = int(np.floor(x))
        hi = min(lo + 1, src - 1)
        m[i, lo] += 1 - (x - lo)
        m[i, hi] += x - lo
    return m


@serializable
class ClassTokenPositionEmbedding(keras.layers.Layer):
    """Prepends a learned class token and adds a learned position embedding to (B, N, C) patch tokens.

    Args:
        grid_size: (int, int). Patch grid of the model's input.
        pos_embed_grid: (int, int) or None. Grid the embedding is stored on; None means `grid_size`.
            Defaults to None.
        quantization: dict or None. Fake quantisation (`keras_mlp.layers.quant`). Defaults to None.

    Example (a 2×3 patch grid, the embedding stored on 4×4 and resampled):
    >>> import numpy as np
    >>> layer = ClassTokenPositionEmbedding(grid_size=(2, 3), pos_embed_grid=(4, 4))
    >>> tuple(layer(np.zeros((2, 6, 8), "float32")).shape), tuple(layer.pos_embed.shape)
    ((2, 7, 8), (1, 17, 8))
    """

    def __init__(self, grid_size, pos_embed_grid=None, quantization: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = tuple(grid_size)
        self.pos_embed_grid = tuple(pos_embed_grid or grid_size)
        self.quantization = check_quantization(quantization)

    def build(self, input_shape):
        dim = input_shape[-1]
        stored = self.pos_embed_grid[0] * self.pos_embed_grid[1]
        self.cls_token = self.add_weight(name="cls_token", shape=(1, 1, dim), initializer=initializer("trunc_normal"))
        self.pos_embed = self.add_weight(name="pos_embed", shape=(1, stored + 1, dim),
                                         initializer=initializer("trunc_normal"))
        resample = None
        if self.pos_embed_grid != self.grid_size:
            resample = np.kron(bilinear_matrix(self.pos_embed_grid[0], self.grid_size[0]),
                               bilinear_matrix(self.pos_embed_grid[1], self.grid_size[1])).astype("float32")
        self._resample = resample
        self.quantizers = range_quantizers(self, self.quantization, "tokens", "output")
        self.built = True

    def call(self, tokens, training=None):
        pos = ops.cast(self.pos_embed, tokens.dtype)
        if self._resample is not None:
            grid = ops.matmul(ops.convert_to_tensor(self._resample, tokens.dtype), pos[0, 1:])
            pos = ops.concatenate([pos[:, :1], grid[None]], 1)
        cls = ops.tile(ops.cast(self.cls_token, tokens.dtype), [ops.shape(tokens)[0], 1, 1])
        return fq(self, "output", fq(self, "tokens", ops.concatenate([cls, tokens], 1), training) + pos, training)

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], n, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "grid_size": self.grid_size, "pos_embed_grid": self.pos_embed_grid,
                **quant_config(self)}


@serializable
class SelectToken(keras.layers.Layer):
    """Pools (B, N, C) tokens to (B, C) by taking one token (the class token at index 0 by default).

    Args:
        index: int. Token to take. Defaults to 0.

    Example:
    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(SelectToken()(np.arange(12, dtype="float32").reshape(1, 3, 4)))
    array([[0., 1., 2., 3.]], dtype=float32)
    """

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, tokens):
        return tokens[:, self.index]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "index": self.index}
