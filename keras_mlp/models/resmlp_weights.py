"""ResMLP checkpoint layouts: timm (`stem.proj`, `blocks.i.{norm1,linear_tokens,ls1,norm2,mlp_channels,ls2}`, Affine
α/β stored (1, 1, C)) and the authors' deit `resmlp_models.py` (`patch_embed.proj`, `blocks.i.{norm1,attn,gamma_1,
norm2,mlp,gamma_2}`, α/β stored (C,)), the names timm's `checkpoint_filter_fn` remaps.
"""
from __future__ import annotations

from keras_mlp.models.keymap import Layout, Spec, same, torch_affine, torch_conv, torch_linear, torch_mlp


def _spec(num_blocks: int, deit: bool) -> Spec:
    spec = torch_conv("stem/proj", "patch_embed.proj" if deit else "stem.proj")
    tokens, mlp, ls = ("attn", "mlp", "gamma_") if deit else ("linear_tokens", "mlp_channels", "ls")
    affine = (-1,) if deit else (1, 1, -1)
    for i in range(num_blocks):
        src, dst = f"blocks.{i}", f"ResMLPBlock_{i}"
        spec |= torch_affine(f"{dst}/norm1", f"{src}.norm1", affine)
        spec |= torch_affine(f"{dst}/norm2", f"{src}.norm2", affine)
        spec |= torch_linear(f"{dst}/linear_tokens/fc", f"{src}.{tokens}")
        spec |= torch_mlp(f"{dst}/mlp_channels", f"{src}.{mlp}")
        spec |= {f"{dst}/ls{j}/gamma": ((f"{src}.{ls}{j}",), same) for j in (1, 2)}
    return spec | torch_affine("norm", "norm", affine) | torch_linear("head", "head")


LAYOUTS = (
    Layout("timm ResMLP", "timm", "resmlp", "blocks.0.linear_tokens.weight", r"blocks\.(\d+)\.",
           ("head.weight", "head.bias"), 0, ("blocks.0.linear_tokens.weight", 1, 0), lambda n: _spec(n, deit=False)),
    Layout("deit resmlp_models.py", "deit", "resmlp", "blocks.0.attn.weight", r"blocks\.(\d+)\.",
           ("head.weight", "head.bias"), 0, ("blocks.0.attn.weight", 1, 0), lambda n: _spec(n, deit=True)),
)
