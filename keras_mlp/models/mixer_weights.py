"""MLP-Mixer checkpoint layouts: the official Flax `.npz` (google-research/vision_transformer,
`vit_jax/models_mixer.py`: `stem`, `MixerBlock_i/{LayerNorm_0,token_mixing,LayerNorm_1,channel_mixing}`,
`pre_head_layer_norm`, `head`) and timm's `MlpMixer` state dict (`stem.proj`, `blocks.i.{norm1,mlp_tokens,norm2,
mlp_channels}`, `norm`, `head`). Official weights use tanh GELU (`approximate_gelu=True`), timm's exact GELU.
"""
from __future__ import annotations

from keras_mlp.models.keymap import (
    Layout,
    Spec,
    flax_dense,
    flax_norm,
    same,
    torch_conv,
    torch_linear,
    torch_mlp,
    torch_norm,
)


def flax_spec(num_blocks: int) -> Spec:
    spec: Spec = {"stem/proj/kernel": (("stem/kernel",), same), "stem/proj/bias": (("stem/bias",), same)}
    for i in range(num_blocks):
        src, dst = f"MixerBlock_{i}", f"MixerBlock_{i}"
        spec |= flax_norm(f"{dst}/norm1", f"{src}/LayerNorm_0") | flax_norm(f"{dst}/norm2", f"{src}/LayerNorm_1")
        for j in (0, 1):
            spec |= flax_dense(f"{dst}/token_mixing/mlp/fc{j + 1}", f"{src}/token_mixing/Dense_{j}")
            spec |= flax_dense(f"{dst}/channel_mixing/fc{j + 1}", f"{src}/channel_mixing/Dense_{j}")
    return spec | flax_norm("pre_head_layer_norm", "pre_head_layer_norm") | flax_dense("head", "head")


def timm_spec(num_blocks: int) -> Spec:
    spec = torch_conv("stem/proj", "stem.proj")
    for i in range(num_blocks):
        src, dst = f"blocks.{i}", f"MixerBlock_{i}"
        spec |= torch_norm(f"{dst}/norm1", f"{src}.norm1") | torch_norm(f"{dst}/norm2", f"{src}.norm2")
        spec |= torch_mlp(f"{dst}/token_mixing/mlp", f"{src}.mlp_tokens")
        spec |= torch_mlp(f"{dst}/channel_mixing", f"{src}.mlp_channels")
    return spec | torch_norm("pre_head_layer_norm", "norm") | torch_linear("head", "head")


LAYOUTS = (
    Layout("official Flax .npz (vit_jax)", "flax", "mixer", "MixerBlock_0/token_mixing/Dense_0/kernel",
           r"MixerBlock_(\d+)/", ("head/kernel", "head/bias"), 1,
           ("MixerBlock_0/token_mixing/Dense_0/kernel", 0, 0), flax_spec, build_args=(("approximate_gelu", True),),
           suffix=".npz"),
    Layout("timm MlpMixer", "timm", "mixer", "blocks.0.mlp_tokens.fc1.weight", r"blocks\.(\d+)\.",
           ("head.weight", "head.bias"), 0, ("blocks.0.mlp_tokens.fc1.weight", 1, 0), timm_spec,
           build_args=(("approximate_gelu", False),)),
)
