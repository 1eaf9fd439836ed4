"""ResMLP: Touvron et al. 2021, "ResMLP: Feedforward networks for image classification with data-efficient
training" (arXiv:2105.03404). Reference code: facebookresearch/deit `resmlp_models.py`, timm `MlpMixer` with
`ResBlock` (names: `stem`, `ResMLPBlock_i` with `norm1`/`linear_tokens`/`ls1`/`norm2`/`mlp_channels`/`ls2`,
final `Affine` `norm`, `head`).
"""
from __future__ import annotations

from keras_mlp.backend import serializable
from keras_mlp.models.resmlp_weights import LAYOUTS
from keras_mlp.models.trunk import MLPTrunk
from keras_mlp.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing


@serializable
class ResMLP(MLPTrunk):
    """ResMLP image classifier (functional `keras.Model`): Affine pre-norms, a cross-patch Linear, LayerScale.

    Args:
        patch_size: int. Patch side. Defaults to 16.
        num_blocks: int. Residual blocks. Defaults to 12.
        hidden_dim: int. Channels. Defaults to 384.
        mlp_ratio: float. Channel MLP width as a multiple of `hidden_dim`. Defaults to 4.
        init_values: float. Initial LayerScale γ (paper: 0.1 at depth 12, 1e-5 at 24, 1e-6 deeper).
            Defaults to 0.1.
        **kwargs: the trunk's arguments (see `keras_mlp.models.trunk.MLPTrunk`).

    Example:
    >>> ResMLP(patch_size=4, num_blocks=2, hidden_dim=32, image_size=16, num_classes=10).count_params()
    19594
    """

    block = "resmlp"
    display_name = "ResMLP"
    default_preprocessing = Preprocessing(IMAGENET_MEAN, IMAGENET_STD)
    layouts = LAYOUTS
    token_weights = {"linear_tokens/fc/kernel": ((0, 1), None), "linear_tokens/fc/bias": ((0,), None)}
    final_norm = "affine"
    kernel_initializer = "trunc_normal"

    def __init__(self, patch_size: int = 16, num_blocks: int = 12, hidden_dim: int = 384, mlp_ratio: float = 4.0,
                 init_values: float = 0.1, **kwargs):
        kwargs.setdefault("name", "resmlp")
        super().__init__(patch_size=patch_size, num_blocks=num_blocks, hidden_dim=hidden_dim,
                         block_config=dict(mlp_ratio=mlp_ratio, init_values=init_values), **kwargs)
