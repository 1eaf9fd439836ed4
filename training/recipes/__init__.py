"""Named recipes: runnable documentation of how each model was (or is to be) trained.

Each module holds a docstring with the command, the accuracy reached and the time it took, and `CONFIG`, a
dict of `training.config.TrainConfig` fields. `keras-mlp-train --recipe NAME --set key=value` overrides any
field (`--set model.num_blocks=4` overrides a model argument); `resolve` holds the rules of that merge.
"""
from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
from collections.abc import Mapping, Sequence
from typing import Any

from training.config import TrainConfig, UsageError
from training.overrides import parse_overrides


def list_recipes() -> list[str]:
    """Names of the bundled recipes."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get_recipe(name: str) -> dict:
    """The `CONFIG` dict of recipe `name` (a copy); `UsageError` listing the recipes otherwise."""
    if name not in list_recipes():
        close = difflib.get_close_matches(name, list_recipes(), n=2)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UsageError(f"Unknown recipe {name!r}.{hint} Choose from: {', '.join(list_recipes())}.")
    config = importlib.import_module(f"{__name__}.{name}").CONFIG
    return {**config, "model_overrides": dict(config.get("model_overrides", {}))}


def describe(name: str) -> str:
    """The recipe's docstring (command, expected accuracy and time)."""
    get_recipe(name)
    return (importlib.import_module(f"{__name__}.{name}").__doc__ or "").strip()


def resolve(name: str, fields: Mapping[str, Any] | None = None, assignments: Sequence[str] = ()) -> TrainConfig:
    """The config of recipe `name` with `fields` (config values, e.g. from CLI flags), then `assignments`
    (`--set KEY=VALUE` strings, `model.ARG=V` for a model argument) applied; later wins.

    The recipe's `model_overrides` are its model's arguments: they apply only when that model is trained
    (`model.*` assignments always apply). Its `augment` is chosen for its dataset: another dataset gets "auto"
    unless an assignment sets `augment`.

    >>> resolve("digits_mixer", {"model": "gmlp_ti16_224"}, ["model.image_size=32"]).model_overrides
    {'image_size': 32}
    """
    recipe = get_recipe(name)
    values = {**recipe, **(fields or {}), "model_overrides": {}}
    try:
        pairs = parse_overrides(assignments, example="--set epochs=10 or --set model.num_blocks=4")
    except ValueError as err:
        raise UsageError(str(err)) from err
    for key, value in pairs:
        if key == "model_overrides" and not isinstance(value, dict):
            raise UsageError(f"`model_overrides` must be a JSON object, got {value!r}. Pass e.g. "
                             "--set model_overrides={\"num_blocks\":4}, or --set model.num_blocks=4.")
        if key.startswith("model."):
            values["model_overrides"][key[len("model."):]] = value
        else:
            values[key] = value
    if values.get("model") == recipe.get("model"):
        values["model_overrides"] = {**recipe["model_overrides"], **values["model_overrides"]}
    if values.get("dataset") != recipe.get("dataset") and "augment" not in dict(pairs):
        values["augment"] = "auto"
    return TrainConfig.from_dict(values)


def default_work_dir(name: str, config: TrainConfig) -> str:
    """runs/<recipe>, or runs/<model> when the run trains another model than recipe `name`'s."""
    return os.path.join("runs", name if config.model == get_recipe(name)["model"] else config.model)
