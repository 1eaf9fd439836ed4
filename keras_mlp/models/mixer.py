"""MLP-Mixer: Tolstikhin et al. 2021, "MLP-Mixer: An all-MLP Architecture for Vision" (arXiv:2105.01601).

Reference code: google-research/vision_transformer `vit_jax/models_mixer.py` (names: `stem`, `MixerBlock_i`
with `token_mixing` / `channel_mixing`, `pre_head_layer_norm`, zero-initialised `head`), timm `MlpMixer`.
"""
from __future__ import annotations

from keras_mlp.backend import serializable
from keras_mlp.models.mixer_weights import LAYOUTS
from keras_mlp.models.trunk import TOKEN_MLP_WEIGHTS, MLPTrunk
from keras_mlp.preprocessing import HALF, Preprocessing


@serializable
class MLPMixer(MLPTrunk):
    """MLP-Mixer image classifier (functional `keras.Model`).

    Args:
        patch_size: int. Patch side. Defaults to 16.
        num_blocks: int. Mixer blocks. Defaults to 8.
        hidden_dim: int. Channels C. Defaults to 512.
        tokens_mlp_dim: int. Hidden width D_S of the token-mixing MLP. Defaults to 256.
        channels_mlp_dim: int. Hidden width D_C of the channel-mixing MLP. Defaults to 2048.
        approximate_gelu: bool. Tanh GELU (official JAX, True) or exact erf GELU (timm, False). Defaults to True.
        **kwargs: the trunk's arguments (`image_size`, `num_classes`, `include_top`, `pooling`, ...;
            see `keras_mlp.models.trunk.MLPTrunk`).

    Example:
    >>> model = MLPMixer(patch_size=4, num_blocks=2, hidden_dim=32, tokens_mlp_dim=16, channels_mlp_dim=64,
    ...                  image_size=16, num_classes=10)
    >>> model.output_shape
    (None, 10)
    """

    block = "mixer"
    display_name = "MLP-Mixer"
    default_preprocessing = Preprocessing(HALF, HALF)
    layouts = LAYOUTS
    token_weights = TOKEN_MLP_WEIGHTS
    final_norm_name = "pre_head_layer_norm"

    def __init__(self, patch_size: int = 16, num_blocks: int = 8, hidden_dim: int = 512, tokens_mlp_dim: int = 256,
                 channels_mlp_dim: int = 2048, approximate_gelu: bool = True, **kwargs):
        kwargs.setdefault("name", "mlp_mixer")
        super().__init__(patch_size=patch_size, num_blocks=num_blocks, hidden_dim=hidden_dim,
                         block_config=dict(tokens_mlp_dim=tokens_mlp_dim, channels_mlp_dim=channels_mlp_dim,
                                           approximate_gelu=approximate_gelu), **kwargs)
