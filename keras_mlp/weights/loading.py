"""Load published checkpoints into the zoo's models: find the layout by its keys, check it fits, assign.

`load_checkpoint(model, path_or_state)` fails with the full list of what differs (missing keys, unexpected keys,
shape mismatches) before a single weight is assigned — never a silent partial load. `build_with_weights` is
`create_model(name, weights=...)`: it reads the class count, patch grid and position grid off the checkpoint,
builds the model to fit (at the checkpoint's own image size), gives it a fresh head when another class count is
asked for, and resizes it when another image size is asked for (`keras_mlp.resize`).
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping

import numpy as np

from keras_mlp.backend import LEGACY, keras
from keras_mlp.models import FAMILIES
from keras_mlp.models.keymap import Layout
from keras_mlp.weights.readers import CheckpointError, read_checkpoint
from keras_mlp.weights.resize import resize

log = logging.getLogger("keras_mlp")
LAYOUTS: tuple[Layout, ...] = tuple(layout for family in FAMILIES for layout in family.layouts)
FAMILY_NAMES = {family.block: family.display_name for family in FAMILIES}


def _short(items, limit: int = 12) -> str:
    items = list(items)
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def named_weights(model) -> dict:
    """`{path: variable}` with the Keras 3 weight paths the key maps use (`MixerBlock_0/norm1/gamma`).

    tf_keras variables (the QAT build) have no `path` and drop the sublayer scopes from their names, so there the
    path is rebuilt from the layer tree (`tf.Module.submodules`, public in both builds)."""
    if not LEGACY:
        return {variable.path: variable for variable in model.weights}
    out: dict = {}

    def walk(layer, prefix: str) -> None:
        subs = [m for m in layer.submodules if isinstance(m, keras.layers.Layer)]
        nested = {id(n) for m in subs for n in m.submodules}
        children = [m for m in subs if id(m) not in nested]
        owned = {id(w) for child in children for w in child.weights}
        for w in layer.weights:
            if id(w) not in owned:
                out[prefix + w.name.split("/")[-1].split(":")[0]] = w
        for child in children:
            walk(child, f"{prefix}{child.name}/")

    for layer in model.layers:
        walk(layer, f"{layer.name}/")
    return out


def find_layout(state: Mapping[str, np.ndarray], source: str = "the checkpoint") -> Layout:
    """The layout whose marker key the state dict holds; a `CheckpointError` naming the keys otherwise."""
    for layout in LAYOUTS:
        if layout.matches(state):
            return layout
    raise CheckpointError(f"{source} has no known key layout (first keys: {_short(sorted(state), 6)}). Supported: "
                          f"{'; '.join(f'{FAMILY_NAMES[x.block]} ({x.name})' for x in LAYOUTS)}.")


def _as_state(source) -> tuple[dict, str]:
    if isinstance(source, Mapping):
        return dict(source), "the checkpoint"
    return read_checkpoint(source), os.fspath(source)


def load_checkpoint(model, source, *, skip_head: bool = False) -> Layout:
    """Assign a checkpoint (file path or `{key: array}`) to `model`, all or nothing; returns the layout found.

    Args:
        model: an `MLPTrunk` (any family).
        source: str, path or mapping. A checkpoint file (see `keras_mlp.checkpoint_io`) or its tensors.
        skip_head: bool. Leave the model's (fresh) head and ignore the checkpoint's. Also implied by
            `include_top=False`.
    """
    state, where = _as_state(source)
    layout = find_layout(state, where)
    if layout.block != model.block:
        raise CheckpointError(f"{where} is a {FAMILY_NAMES[layout.block]} checkpoint ({layout.name} layout), but the "
                              f"model is a {type(model).__name__}. Build a {FAMILY_NAMES[layout.block]} variant "
                              f"instead: keras_mlp.list_models({layout.block!r}).")
    spec = layout.spec(model.num_blocks)
    ignored = set(layout.head) if skip_head or not model.include_top else set()
    if ignored:
        spec = {k: v for k, v in spec.items() if not k.startswith("head/")}
    targets = named_weights(model)
    wanted = {key for keys, _ in spec.values() for key in keys}
    problems = []
    missing = sorted(wanted - set(state))
    extra = sorted(set(state) - wanted - ignored)
    if missing:
        problems.append(f"missing in the checkpoint: {_short(missing)}")
    if extra:
        problems.append(f"unexpected in the checkpoint: {_short(extra)}")
    unsourced = sorted(p for p in set(targets) - set(spec) if not (ignored and p.startswith("head/")))
    if unsourced:
        problems.append(f"model weights with no source: {_short(unsourced)}")
    values = {}
    mismatched = []
    for path, (keys, convert) in spec.items():
        if path not in targets or any(k not in state for k in keys):
            continue
        value = np.asarray(convert(*(state[k] for k in keys)))
        if tuple(value.shape) != tuple(targets[path].shape):
            mismatched.append(f"{path} ← {'+'.join(keys)}: checkpoint {tuple(value.shape)}, model "
                              f"{tuple(targets[path].shape)}")
        values[path] = value
    if mismatched:
        problems.append("shape mismatches:\n    " + "\n    ".join(mismatched[:12]) +
                        (f"\n    (+{len(mismatched) - 12} more)" if len(mismatched) > 12 else ""))
    if problems:
        found = (f"checkpoint: {layout.num_blocks(state)} blocks, {layout.num_tokens(state)} patch tokens, "
                 f"{layout.num_classes(state)} classes; model: {model.num_blocks} blocks, "
                 f"{model.grid_size[0] * model.grid_size[1]} patch tokens, {model.num_classes} classes")
        raise CheckpointError(f"{where} ({layout.name} layout) does not fit {model.name}; nothing was loaded.\n  "
                              + "\n  ".join(problems) + f"\n  ({found}; build the model with matching arguments.)")
    for path, value in values.items():
        variable = targets[path]
        variable.assign(value.astype(getattr(variable.dtype, "name", variable.dtype)))
    return layout


def native_grid(layout: Layout, state: Mapping, asked: tuple[int, int] | None = None) -> tuple[int, int]:
    """The patch grid the checkpoint was trained on, from its token count: the `asked` grid when it has that many
    tokens (a non-square grid can only be told so), else the square one."""
    tokens = layout.num_tokens(state)
    if asked is not None and asked[0] * asked[1] == tokens:
        return tuple(asked)
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise CheckpointError(f"The checkpoint has {tokens} patch tokens, not a square grid: pass the image size it "
                              "was trained on (image_size=(height, width), its grid times the patch size).")
    return side, side


def build_with_weights(build: Callable[..., object], kwargs: dict, overrides: dict, source) -> object:
    """`create_model(name, weights=source, **overrides)`: build to fit the checkpoint, load, then adapt.

    `build(**kwargs)` makes the model; `kwargs` are the variant's arguments with `overrides` applied.
    """
    state, where = _as_state(source)
    layout = find_layout(state, where)
    kwargs = dict(kwargs)
    patch = kwargs["patch_size"]
    asked = overrides.get("input_shape") or overrides.get("image_size")
    if isinstance(asked, (int, np.integer)):
        asked = (asked, asked)
    grid = native_grid(layout, state, None if asked is None else (asked[0] // patch, asked[1] // patch))
    if "input_shape" in overrides and overrides["input_shape"] is not None:
        target = tuple(overrides["input_shape"][:2])
        kwargs["input_shape"] = (grid[0] * patch, grid[1] * patch, overrides["input_shape"][2])
    else:
        kwargs["image_size"] = (grid[0] * patch, grid[1] * patch)
        size = overrides.get("image_size") or kwargs["image_size"]  # the checkpoint's own size unless asked
        target = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    classes = layout.num_classes(state)
    fresh_head = None  # logged once the model has built (bad arguments fail first)
    if kwargs.get("include_top", True) and classes is None:
        fresh_head = (f"{where} has no classifier head; the model gets a fresh "
                      f"{kwargs.get('num_classes', 1000)}-class head.")
    elif kwargs.get("include_top", True):
        if "num_classes" in overrides and overrides["num_classes"] != classes:
            fresh_head = (f"{where} has a {classes}-class head; loading everything but the head, and a fresh "
                          f"{overrides['num_classes']}-class head (num_classes={overrides['num_classes']}).")
        else:
            kwargs["num_classes"] = classes
    for key, value in layout.build_args:
        kwargs[key] = overrides.get(key, value)
    if layout.pos_grid is not None and "pos_embed_grid" not in overrides:
        stored = layout.pos_grid(state)
        kwargs["pos_embed_grid"] = None if stored == grid else stored
    model = build(**kwargs)
    if fresh_head:
        log.warning(fresh_head)
    load_checkpoint(model, state, skip_head=fresh_head is not None)
    if target != tuple(model.image_size):
        model = resize(model, target)
    return model
