"""Feed-forward-only ViT checkpoint layouts: lukemelas/do-you-even-need-attention `vision_transformer_linear.py`
(`patch_embed.proj`, `cls_token`, `pos_encoding.pos_embed` stored (1, C, H, W) plus `pos_encoding.cls_pos_embed`,
`blocks.i.{norm1,mlp1,norm2,mlp2}` with `norm2`/`mlp2` over the tokens, `norm`, `head`), and the same model with a
timm-ViT `pos_embed` of shape (1, 1 + N, C).
"""
from __future__ import annotations

import numpy as np

from keras_mlp.models.keymap import Convert, Layout, Spec, same, torch_conv, torch_linear, torch_mlp, torch_norm


def _join(cls_pos: np.ndarray, grid_pos: np.ndarray) -> np.ndarray:
    """(1, 1, C) class position and (1, C, H, W) grid → the Keras (1, 1 + H·W, C), row-major like the tokens."""
    c = grid_pos.shape[1]
    return np.concatenate([cls_pos.reshape(1, 1, c), grid_pos.reshape(1, c, -1).transpose(0, 2, 1)], axis=1)


def _split(pos: np.ndarray, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `_join`: (1, 1 + H·W, C) → (1, 1, C) and (1, C, H, W) on the stored `grid` (H, W)."""
    return pos[:, :1], pos[:, 1:].transpose(0, 2, 1).reshape(1, pos.shape[2], *grid)


def _spec(num_blocks: int, learned_grid: bool) -> Spec:
    spec = torch_conv("stem/proj", "patch_embed.proj") | {"embed/cls_token": (("cls_token",), same)}
    if learned_grid:
        spec["embed/pos_embed"] = (("pos_encoding.cls_pos_embed", "pos_encoding.pos_embed"), Convert(_join, _split))
    else:
        spec["embed/pos_embed"] = (("pos_embed",), same)
    for i in range(num_blocks):
        src, dst = f"blocks.{i}", f"FFBlock_{i}"
        spec |= torch_norm(f"{dst}/norm1", f"{src}.norm1") | torch_mlp(f"{dst}/mlp_channels", f"{src}.mlp1")
        spec |= torch_norm(f"{dst}/token_mixing/norm", f"{src}.norm2")
        spec |= torch_mlp(f"{dst}/token_mixing/mlp", f"{src}.mlp2")
    return spec | torch_norm("norm", "norm") | torch_linear("head", "head")


def _learned_grid(state: dict) -> tuple[int, int]:
    return tuple(int(s) for s in state["pos_encoding.pos_embed"].shape[2:])


def _vit_grid(state: dict) -> tuple[int, int]:
    side = int(np.sqrt(state["pos_embed"].shape[1] - 1))
    return side, side


LAYOUTS = (
    Layout("do-you-even-need-attention", "lukemelas", "ff", "pos_encoding.pos_embed", r"blocks\.(\d+)\.",
           ("head.weight", "head.bias"), 0, ("blocks.0.mlp2.fc1.weight", 1, 1),
           lambda n: _spec(n, learned_grid=True), _learned_grid),
    Layout("feed-forward ViT, timm pos_embed", "vit", "ff", "blocks.0.mlp2.fc1.weight", r"blocks\.(\d+)\.",
           ("head.weight", "head.bias"), 0, ("blocks.0.mlp2.fc1.weight", 1, 1), lambda n: _spec(n, learned_grid=False),
           _vit_grid),
)
