"""Feed-forward-only ViT: Melas-Kyriazi 2021, "Do You Even Need Attention? A Stack of Feed-Forward Layers Does
Surprisingly Well on ImageNet" (arXiv:2105.02723). Reference code: lukemelas/do-you-even-need-attention
`vision_transformer_linear.py` (timm ViT with `LinearBlock`: channel MLP, then a token MLP over the
transposed tokens with LayerNorm over the token axis; class token, learned position embedding, init
truncated normal 0.02).
"""
from __future__ import annotations

from keras_mlp.backend import serializable
from keras_mlp.models.ff_vit_weights import LAYOUTS
from keras_mlp.models.trunk import TOKEN_MLP_WEIGHTS, MLPTrunk
from keras_mlp.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing


@serializable
class FeedForwardViT(MLPTrunk):
    """ViT with every attention layer replaced by a feed-forward layer over the tokens (functional `keras.Model`).

    Args:
        patch_size: int. Patch side. Defaults to 16.
        num_blocks: int. Blocks. Defaults to 12.
        hidden_dim: int. Channels. Defaults to 192.
        mlp_ratio: float. Hidden width of the channel and token MLPs as a multiple of their input. Defaults to 4.
        pos_embed_grid: (int, int) or None. Patch grid the position embedding is stored on, resampled to the
            model's grid (ViT-L/32 keeps 14×14). Defaults to None (the model's grid).
        **kwargs: the trunk's arguments (see `keras_mlp.models.trunk.MLPTrunk`); pooling defaults to "token".

    Example:
    >>> FeedForwardViT(patch_size=4, num_blocks=2, hidden_dim=16, image_size=16, num_classes=10).output_shape
    (None, 10)
    """

    block = "ff"
    display_name = "feed-forward-only ViT"
    default_preprocessing = Preprocessing(IMAGENET_MEAN, IMAGENET_STD)
    layouts = LAYOUTS
    token_weights = {**TOKEN_MLP_WEIGHTS, "token_mixing/norm/gamma": ((0,), None),
                     "token_mixing/norm/beta": ((0,), None), "embed/pos_embed": ((1,), None)}
    splits_into_subgrids = False  # the class token and the LayerNorm over tokens do not split into sub-grids
    default_pooling = "token"
    class_token = True
    kernel_initializer = "trunc_normal"
    head_initializer = "trunc_normal"

    def __init__(self, patch_size: int = 16, num_blocks: int = 12, hidden_dim: int = 192, mlp_ratio: float = 4.0,
                 pos_embed_grid=None, **kwargs):
        kwargs.setdefault("name", "ff_vit")
        super().__init__(patch_size=patch_size, num_blocks=num_blocks, hidden_dim=hidden_dim,
                         pos_embed_grid=pos_embed_grid, block_config=dict(mlp_ratio=mlp_ratio), **kwargs)
