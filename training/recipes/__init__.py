"""Named recipes: runnable documentation of how each model was (or is to be) trained.

Each module holds a docstring with the command, the accuracy reached and the time it took, and `CONFIG`, a
dict of `training.config.TrainConfig` fields. `keras-mlp-train --recipe NAME --set key=value` overrides any
field (`--set model.num_blocks=4` overrides a model argument).
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil

from training.config import UsageError


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
