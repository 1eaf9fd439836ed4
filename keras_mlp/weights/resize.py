"""Move a trained model to another input size with its weights carried over: `keras_mlp.resize(model, size)`.

The patch size stays; the patch grid, and with it every token-mixing weight, changes. Two schemes:

- `"block_diagonal"` — MLP-Mixer paper (Tolstikhin et al. 2021, arXiv:2105.01601, App. C: fine-tuning at a
  higher resolution). When the grid grows by whole factors (kh, kw), each token-mixing weight becomes
  block-diagonal with kh·kw copies of the trained one; the Mixer token MLP widens to kh·kw·D_S. Copy (a, b)
  acts on the interleaved sub-grid of tokens (i·kh + a, j·kw + b), which spans the whole image as the trained
  grid did. So on an image whose patches are each repeated kh×kw times, the resized model gives exactly the
  trained model's output. Used for Mixer, ResMLP (cross-patch Linear) and gMLP (spatial gating projection).
- `"interpolate"` — every other size, and the feed-forward-only ViT (its class token and LayerNorm over the
  tokens do not split into sub-grids). Token axes are resampled bilinearly on the patch grid (half-pixel
  centres, as PyTorch `interpolate(align_corners=False)`); input token axes are scaled by N/N' so sums over
  tokens keep their size; the class token entries stay. The position embedding is resampled the same way
  (as the FF-only reference does at run time). The FF token MLP is `mlp_ratio`× the token count wide, so it
  grows: the new hidden units start with zero output weights (the function is unchanged). Shrinking it would
  drop trained units, so an FF model is refused a grid with fewer tokens.
"""
from __future__ import annotations

import numpy as np

from keras_mlp.layers.embedding import bilinear_matrix
from keras_mlp.models.trunk import resolve_input_shape

METHODS = ("auto", "block_diagonal", "interpolate")


def _rule(model, path: str):
    """(token axes, hidden axis) of a token-mixing weight of `model` (its family's `token_weights`), else None."""
    return next((rule for suffix, rule in model.token_weights.items() if path.endswith(suffix)), None)


def _block_diagonal(value: np.ndarray, shape, token_axes, hidden_axis, groups) -> np.ndarray:
    """Place one copy of `value` per token group: its tokens on the token axes, its own block on the hidden axis."""
    out = np.zeros(shape, value.dtype)
    for g, index in enumerate(groups):
        axes = [np.arange(n) for n in value.shape]
        for axis in token_axes:
            axes[axis] = index
        if hidden_axis is not None:
            axes[hidden_axis] = np.arange(g * value.shape[hidden_axis], (g + 1) * value.shape[hidden_axis])
        out[np.ix_(*axes)] = value
    return out


def _interpolate(value: np.ndarray, token_axes, is_kernel: bool, old, new, offset: int) -> np.ndarray:
    """Resample the token axes (after `offset` class tokens) from grid `old` to `new`; scale a kernel's input."""
    resample = np.kron(bilinear_matrix(old[0], new[0]), bilinear_matrix(old[1], new[1]))
    scale = (old[0] * old[1]) / (new[0] * new[1])
    for axis in token_axes:
        moved = np.moveaxis(value, axis, 0)
        grid = np.tensordot(resample, moved[offset:], axes=1) * (scale if is_kernel and axis == 0 else 1.0)
        value = np.moveaxis(np.concatenate([moved[:offset], grid.astype(value.dtype)]), 0, axis)
    return value


def _grow_hidden(value: np.ndarray, fresh: np.ndarray, axis: int, is_input: bool) -> np.ndarray:
    """Keep the trained hidden units; new ones take the fresh initial values, or zeros where they feed out."""
    out = np.zeros_like(fresh) if is_input else np.array(fresh)
    index = [slice(None)] * value.ndim
    index[axis] = slice(0, value.shape[axis])
    out[tuple(index)] = value
    return out


def resize(model, image_size, method: str = "auto"):
    """`model` rebuilt for `image_size` (int or (h, w)) with its weights carried over (see the module docstring).

    Args:
        model: an `MLPTrunk` (any family).
        image_size: int or (int, int). New input height and width, multiples of `model.patch_size`.
        method: "auto" (block-diagonal when the grid grows by whole factors, else interpolation), "block_diagonal"
            or "interpolate". Defaults to "auto".

    Example:
    >>> import keras_mlp
    >>> small = keras_mlp.create_model("resmlp_12_224", image_size=32, patch_size=8, num_blocks=1, hidden_dim=16)
    >>> keras_mlp.resize(small, 64).image_size
    (64, 64)
    """
    if method not in METHODS:
        raise ValueError(f"Unknown resize method {method!r}; use one of {METHODS}.")
    h, w, c = resolve_input_shape(image_size, None, model.patch_size)
    old, new = tuple(model.grid_size), (h // model.patch_size, w // model.patch_size)
    whole = all(n % o == 0 for n, o in zip(new, old))
    ff = not model.splits_into_subgrids
    if method == "auto":
        method = "block_diagonal" if whole and not ff else "interpolate"
    if method == "block_diagonal" and (ff or not whole):
        why = ("the feed-forward-only ViT's class token and token LayerNorm do not split into sub-grids" if ff else
               f"the patch grid {old[0]}x{old[1]} does not grow by whole factors to {new[0]}x{new[1]}")
        fit = tuple(max(1, round(n / o)) * o * model.patch_size for n, o in zip(new, old))
        raise ValueError(f"Cannot resize {model.name} block-diagonally to {h}x{w}: {why}. Use method='interpolate'"
                         + ("." if ff else f", or image_size={fit if fit[0] != fit[1] else fit[0]}."))
    if ff and new[0] * new[1] < old[0] * old[1]:
        raise ValueError(f"Cannot resize {model.name} ({model.image_size[0]}x{model.image_size[1]}) down to {h}x{w}: "
                         "its token MLP is mlp_ratio x tokens wide, so fewer tokens would drop trained hidden units. "
                         f"Resize to at least {old[0] * old[1]} patch tokens, e.g. image_size={model.image_size}.")
    config = {**model.get_config(), "image_size": (h, w), "input_shape": (h, w, model.num_channels)}
    groups = None
    if method == "block_diagonal":
        kh, kw = new[0] // old[0], new[1] // old[1]
        if "tokens_mlp_dim" in config:
            config["tokens_mlp_dim"] *= kh * kw
        i, j = np.meshgrid(np.arange(old[0]), np.arange(old[1]), indexing="ij")
        groups = [((i * kh + a) * new[1] + j * kw + b).reshape(-1) for a in range(kh) for b in range(kw)]
    resized = type(model).from_config(config)
    trained = {v.path: np.asarray(v.numpy()) for v in model.weights}
    offset = 1 if model.class_token else 0
    for variable in resized.weights:
        path = variable.path
        value, fresh = trained[path], np.asarray(variable.numpy())
        rule = _rule(model, path)
        if rule is not None and not (path == "embed/pos_embed" and model.pos_embed_grid is not None):
            token_axes, hidden_axis = rule
            if groups is not None:
                value = _block_diagonal(value, fresh.shape, token_axes, hidden_axis, groups)
            else:
                value = _interpolate(value, token_axes, path.endswith("kernel"), old, new, offset)
                if hidden_axis is not None and value.shape != fresh.shape:
                    value = _grow_hidden(value, fresh, hidden_axis, path.endswith("kernel") and hidden_axis == 0)
        variable.assign(value)
    return resized
