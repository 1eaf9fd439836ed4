"""Independent NumPy forward passes, written from the papers' equations on the checkpoints' own layouts (no key
map, no Keras): the official Flax MLP-Mixer `.npz` and the feed-forward-only ViT of "Do You Even Need Attention?".
Also seeded random checkpoints in those layouts.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf


def gelu(x, approximate: bool):
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def layer_norm(x, scale, bias, eps: float):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * scale + bias


def mixer_flax_forward(p: dict, images: np.ndarray, patch: int, blocks: int) -> np.ndarray:
    """Tolstikhin et al. 2021, eq. (1): U = X + W2 σ(W1 LN(X)ᵀ)ᵀ, Y = U + W4 σ(W3 LN(U)); Flax (in, out) kernels."""
    b, h, w, c = images.shape
    tiles = images.reshape(b, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    x = np.einsum("bijuvc,uvco->bijo", tiles, p["stem/kernel"]).reshape(b, -1, p["stem/bias"].shape[0])
    x = x + p["stem/bias"]
    for i in range(blocks):
        q = {k[len(f"MixerBlock_{i}/"):]: v for k, v in p.items() if k.startswith(f"MixerBlock_{i}/")}
        y = layer_norm(x, q["LayerNorm_0/scale"], q["LayerNorm_0/bias"], 1e-6).transpose(0, 2, 1)
        y = gelu(y @ q["token_mixing/Dense_0/kernel"] + q["token_mixing/Dense_0/bias"], True)
        x = x + (y @ q["token_mixing/Dense_1/kernel"] + q["token_mixing/Dense_1/bias"]).transpose(0, 2, 1)
        y = layer_norm(x, q["LayerNorm_1/scale"], q["LayerNorm_1/bias"], 1e-6)
        y = gelu(y @ q["channel_mixing/Dense_0/kernel"] + q["channel_mixing/Dense_0/bias"], True)
        x = x + y @ q["channel_mixing/Dense_1/kernel"] + q["channel_mixing/Dense_1/bias"]
    x = layer_norm(x, p["pre_head_layer_norm/scale"], p["pre_head_layer_norm/bias"], 1e-6).mean(1)
    return x @ p["head/kernel"] + p["head/bias"]


def _resize_1d(src: int, dst: int) -> np.ndarray:
    """PyTorch `interpolate(mode='bilinear', align_corners=False)` along one axis, as a (dst, src) matrix."""
    out = np.zeros((dst, src))
    for i in range(dst):
        x = max((i + 0.5) * src / dst - 0.5, 0.0)
        lo = min(int(x), src - 1)
        hi = lo + (lo < src - 1)
        out[i, lo] += 1 - (x - lo)
        out[i, hi] += x - lo
    return out


def ff_forward(p: dict, images: np.ndarray, patch: int, blocks: int) -> np.ndarray:
    """Melas-Kyriazi 2021: ViT with attention replaced by a token MLP; torch layouts ((out, in) Linear, OIHW conv)."""
    linear = lambda x, name: x @ p[f"{name}.weight"].T + p[f"{name}.bias"]  # noqa: E731
    mlp = lambda x, name: linear(gelu(linear(x, f"{name}.fc1"), False), f"{name}.fc2")  # noqa: E731
    norm = lambda x, name: layer_norm(x, p[f"{name}.weight"], p[f"{name}.bias"], 1e-6)  # noqa: E731
    b, h, w, c = images.shape
    tiles = images.reshape(b, h // patch, patch, w // patch, patch, c)
    x = np.einsum("biujvc,ocuv->bijo", tiles, p["patch_embed.proj.weight"]) + p["patch_embed.proj.bias"]
    gh, gw, dim = x.shape[1], x.shape[2], x.shape[3]
    grid = p["pos_encoding.pos_embed"][0]  # (C, H, W)
    grid = np.einsum("ih,jw,chw->ijc", _resize_1d(grid.shape[1], gh), _resize_1d(grid.shape[2], gw), grid)
    pos = np.concatenate([p["pos_encoding.cls_pos_embed"].reshape(1, dim), grid.reshape(-1, dim)])
    x = np.concatenate([np.broadcast_to(p["cls_token"].reshape(1, 1, dim), (b, 1, dim)), x.reshape(b, -1, dim)], 1)
    x = x + pos
    for i in range(blocks):
        x = x + mlp(norm(x, f"blocks.{i}.norm1"), f"blocks.{i}.mlp1")
        t = x.transpose(0, 2, 1)
        x = (t + mlp(norm(t, f"blocks.{i}.norm2"), f"blocks.{i}.mlp2")).transpose(0, 2, 1)
    return linear(norm(x, "norm")[:, 0], "head")


STEM_SCALE = 0.3  # patch embeddings of variance ~0.1, so that the first LayerNorm's epsilon visibly matters


def random_checkpoint(shapes: dict, seed: int) -> dict:
    """Seeded random tensors; scale/weight-like vectors around 1, everything else around 0, none left at init; the
    patch embedding (stem) times STEM_SCALE."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in shapes.items():
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        value = rng.normal(0, 1 / np.sqrt(max(fan_in, 1)) if len(shape) > 1 else 0.2, shape)
        if len(shape) == 1 and key.endswith(("scale", "norm1.weight", "norm2.weight", "norm.weight")):
            value += 1.0
        if key.startswith(("stem/", "patch_embed.")):
            value *= STEM_SCALE
        out[key] = value.astype(np.float32)
    return out


def mixer_flax_shapes(patch: int, dim: int, tokens: int, ds: int, dc: int, blocks: int, classes: int) -> dict:
    shapes = {"stem/kernel": (patch, patch, 3, dim), "stem/bias": (dim,), "pre_head_layer_norm/scale": (dim,),
              "pre_head_layer_norm/bias": (dim,), "head/kernel": (dim, classes), "head/bias": (classes,)}
    for i in range(blocks):
        for j in (0, 1):
            shapes |= {f"MixerBlock_{i}/LayerNorm_{j}/scale": (dim,), f"MixerBlock_{i}/LayerNorm_{j}/bias": (dim,)}
        for name, n, hidden in (("token_mixing", tokens, ds), ("channel_mixing", dim, dc)):
            prefix = f"MixerBlock_{i}/{name}"
            shapes |= {f"{prefix}/Dense_0/kernel": (n, hidden), f"{prefix}/Dense_0/bias": (hidden,),
                       f"{prefix}/Dense_1/kernel": (hidden, n), f"{prefix}/Dense_1/bias": (n,)}
    return shapes


def ff_shapes(patch: int, dim: int, tokens: int, pos_grid: tuple, blocks: int, classes: int) -> dict:
    shapes = {"patch_embed.proj.weight": (dim, 3, patch, patch), "patch_embed.proj.bias": (dim,),
              "cls_token": (1, 1, dim), "pos_encoding.pos_embed": (1, dim, *pos_grid),
              "pos_encoding.cls_pos_embed": (1, 1, dim), "norm.weight": (dim,), "norm.bias": (dim,),
              "head.weight": (classes, dim), "head.bias": (classes,)}
    for i in range(blocks):
        for name, n in (("1", dim), ("2", tokens + 1)):
            shapes |= {f"blocks.{i}.norm{name}.weight": (n,), f"blocks.{i}.norm{name}.bias": (n,),
                       f"blocks.{i}.mlp{name}.fc1.weight": (4 * n, n), f"blocks.{i}.mlp{name}.fc1.bias": (4 * n,),
                       f"blocks.{i}.mlp{name}.fc2.weight": (n, 4 * n), f"blocks.{i}.mlp{name}.fc2.bias": (n,)}
    return shapes
