"""gMLP: Liu et al. 2021, "Pay Attention to MLPs" (arXiv:2105.08050). Reference code: timm `MlpMixer` with
`SpatialGatingBlock` (names: `stem`, `GMLPBlock_i` with `norm`/`fc1`/`gate`/`fc2`, final `norm`, `head`).
"""
from __future__ import annotations

from keras_mlp.backend import serializable
from keras_mlp.models.gmlp_weights import LAYOUTS
from keras_mlp.models.trunk import MLPTrunk
from keras_mlp.preprocessing import HALF, Preprocessing


@serializable
class GMLP(MLPTrunk):
    """gMLP image classifier (functional `keras.Model`): channel MLPs gated by a spatial gating unit.

    Args:
        patch_size: int. Patch side. Defaults to 16.
        num_blocks: int. Blocks. Defaults to 30.
        hidden_dim: int. Channels d. Defaults to 256.
        mlp_ratio: float. Hidden width as a multiple of d (the gate halves it). Defaults to 6.
        **kwargs: the trunk's arguments (see `keras_mlp.models.trunk.MLPTrunk`).

    Example:
    >>> GMLP(patch_size=4, num_blocks=2, hidden_dim=16, image_size=16, num_classes=10).output_shape
    (None, 10)
    """

    block = "gmlp"
    display_name = "gMLP"
    default_preprocessing = Preprocessing(HALF, HALF)
    layouts = LAYOUTS
    token_weights = {"gate/proj/fc/kernel": ((0, 1), None), "gate/proj/fc/bias": ((0,), None)}
    kernel_initializer = "trunc_normal"

    def __init__(self, patch_size: int = 16, num_blocks: int = 30, hidden_dim: int = 256, mlp_ratio: float = 6.0,
                 **kwargs):
        kwargs.setdefault("name", "gmlp")
        super().__init__(patch_size=patch_size, num_blocks=num_blocks, hidden_dim=hidden_dim,
                         block_config=dict(mlp_ratio=mlp_ratio), **kwargs)
