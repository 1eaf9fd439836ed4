"""Write a zoo model in its family's published checkpoint layouts, so a model fine-tuned here goes back to PyTorch
or JAX: `keras_mlp.save_checkpoint(model, path, layout=...)`.

- `.safetensors`: timm's `MlpMixer` state dicts (Mixer, ResMLP, gMLP: `timm.models.load_checkpoint(model, path)`),
  deit's ResMLP key names (`resmlp_models.py`), and the feed-forward-only ViT's release layout
  (lukemelas/do-you-even-need-attention) or a timm-ViT `pos_embed`;
- `.npz`: the official Flax MLP-Mixer checkpoint (google-research/vision_transformer, `vit_jax/checkpoint.py`).

It runs the loader's key maps (`keras_mlp.models.*_weights`) backwards, each converter through its inverse
(`keras_mlp.models.keymap.Convert.save`), so the file reads back with `create_model(name, weights=path)`.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from keras_mlp.io import atomic_path
from keras_mlp.models.keymap import Layout
from keras_mlp.weights.loading import named_weights
from keras_mlp.weights.readers import CheckpointError

log = logging.getLogger("keras_mlp")


def _choices(model) -> str:
    return ", ".join(f"{x.tag!r} ({x.name}, {x.suffix})" for x in model.layouts)


def own_layout(model) -> Layout:
    """The family's first layout trained with the model's own build arguments (Mixer: Flax for tanh GELU, timm for
    exact GELU): the one that reads back to the same model."""
    config = model.block_config
    return next((x for x in model.layouts if all(config.get(k) == v for k, v in x.build_args)), model.layouts[0])


def pick_layout(model, path: str, layout: str | None = None) -> Layout:
    """The layout `save_checkpoint` writes `model` to `path` in: `layout` (a tag or name of the family's layouts),
    else the family's first layout of `path`'s file type."""
    suffix = os.path.splitext(path)[1].lower()
    if layout is None:
        chosen = next((x for x in model.layouts if x.suffix == suffix), None)
        if chosen is None:
            raise ValueError(f"Cannot write a {model.display_name} checkpoint to {path}: its layouts are "
                             f"{_choices(model)}. Name the file with one of those suffixes.")
        return chosen
    chosen = next((x for x in model.layouts if layout in (x.tag, x.name)), None)
    if chosen is None:
        raise ValueError(f"Unknown layout {layout!r} for a {model.display_name}. Choose one of {_choices(model)}.")
    if suffix != chosen.suffix:
        raise ValueError(f"The {chosen.name} layout is written as a {chosen.suffix} file, not {path}. Name the file "
                         f"{os.path.splitext(path)[0]}{chosen.suffix}.")
    return chosen


def checkpoint_state(model, layout: Layout) -> dict[str, np.ndarray]:
    """`model`'s weights as `{key: float32 array}` in `layout`; a model without a head gets a file without one."""
    if layout.block != model.block:
        raise ValueError(f"{layout.name} is a layout of another family; a {model.display_name} is written in "
                         f"{_choices(model)}.")
    spec = layout.spec(model.num_blocks)
    if not model.include_top:
        spec = {path: entry for path, entry in spec.items() if not path.startswith("head/")}
    weights = named_weights(model)
    unmapped, absent = sorted(set(weights) - set(spec)), sorted(set(spec) - set(weights))
    if unmapped or absent:
        raise CheckpointError(f"{model.name} does not fit the {layout.name} layout: weights with no key there: "
                              f"{unmapped or 'none'}; keys with no weight: {absent or 'none'}.")
    grid = model.pos_embed_grid or model.grid_size
    state = {}
    for path, (keys, convert) in spec.items():
        stored = convert.save(np.asarray(weights[path].numpy(), np.float32), grid)
        state.update((key, np.ascontiguousarray(array)) for key, array in zip(keys, stored, strict=True))
    return state


def _warn_differences(model, layout: Layout) -> None:
    """Say where the model computes something else than the layout's published models (the weights are exact)."""
    differences = [f"{k}={model.block_config.get(k)!r} (the layout's models: {v!r})" for k, v in layout.build_args
                   if model.block_config.get(k) != v]
    if model.pooling not in (None, model.default_pooling):
        differences.append(f"pooling={model.pooling!r} (the layout's models: {model.default_pooling!r})")
    if differences:
        log.warning(f"{model.name} differs from the {layout.name} models in {', '.join(differences)}: its weights "
                    "are written exactly, but those models will compute slightly different outputs from them.")


def save_checkpoint(model, path: str | os.PathLike, layout: str | None = None) -> Layout:
    """Write `model`'s weights as a published checkpoint (atomically); returns the layout written.

    Args:
        model: a zoo model (any family, any head; `include_top=False` writes no head).
        path: str or path. A `.safetensors` file (PyTorch: `timm.models.load_checkpoint(timm_model, path)`, the
            timm model built with the same image size and class count) or an `.npz` file (the Flax Mixer).
        layout: str or None. A tag (or name) of the family's layouts, `[x.tag for x in model.layouts]`: Mixer
            "timm" (.safetensors) or "flax" (.npz), ResMLP "timm" or "deit", gMLP "timm", feed-forward-only ViT
            "lukemelas" (its release) or "vit". Defaults to the family's first layout of `path`'s file type.

    >>> import os, tempfile
    >>> from keras_mlp.models import GMLP
    >>> model = GMLP(patch_size=4, num_blocks=1, hidden_dim=8, image_size=8, num_classes=3)
    >>> save_checkpoint(model, os.path.join(tempfile.mkdtemp(), "gmlp.safetensors")).name
    'timm gMLP'
    """
    path = os.fspath(path)
    chosen = pick_layout(model, path, layout)
    state = checkpoint_state(model, chosen)
    _warn_differences(model, chosen)
    if chosen.suffix == ".npz":
        with atomic_path(path) as tmp:
            np.savez(tmp, **state)
        return chosen
    try:
        from safetensors.numpy import save_file
    except ImportError as err:
        raise ImportError("Writing .safetensors needs the `safetensors` package: pip install safetensors") from err
    with atomic_path(path) as tmp:
        save_file(state, tmp)
    return chosen
