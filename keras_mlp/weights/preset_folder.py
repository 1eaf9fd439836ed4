"""Share what you fine-tuned: a local preset folder (keras-hub's `save_to_preset` / `from_preset`).

    folder/
      model.keras   the model: architecture, weights, `preprocessing` and `class_names` (loads after `import keras_mlp`)
      labels.txt    its class names, one a line (only when it has them)
      preset.json   provenance: model class, registry name, source weights, keras_mlp version, date, image size,
                    classes and preprocessing

`keras_mlp.save_preset(model, folder)` writes it, `keras_mlp.create_model(folder)` loads it. Every file is written
atomically; a folder holding other files but no keras_mlp `preset.json` is never written into.
"""
from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import logging
import os

from keras_mlp.backend import keras
from keras_mlp.io import atomic_path
from keras_mlp.models import FAMILIES, MLPTrunk
from keras_mlp.weights.loading import load_checkpoint
from keras_mlp.weights.readers import CheckpointError
from keras_mlp.weights.resize import resize
from keras_mlp.weights.saving import checkpoint_state

log = logging.getLogger("keras_mlp")
MODEL_FILE, LABELS_FILE, INFO_FILE = "model.keras", "labels.txt", "preset.json"
FORMAT, VERSION = "keras_mlp preset", 1  # preset.json's "format" and "version"
HOW = "A preset folder is written by keras_mlp.save_preset(model, folder)."


def _version() -> str:
    try:
        return importlib.metadata.version("keras-mlp")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) and info.get("format") == FORMAT else None


def _writable(folder: str) -> dict | None:
    """The folder's current preset.json (None when the folder is new or empty); refuses any other folder."""
    if not os.path.exists(folder):
        return None
    if not os.path.isdir(folder):
        raise FileExistsError(f"{folder} is a file; save the preset into a new or empty folder.")
    present = sorted(os.listdir(folder))
    if not present:
        return None
    info = _read_json(os.path.join(folder, INFO_FILE))
    if info is None:
        raise FileExistsError(f"{folder} holds other files ({', '.join(present[:5])}) and no keras_mlp "
                              f"{INFO_FILE}, so it is not a preset folder; nothing was written. Save the preset into "
                              "a new or empty folder.")
    return info


def save_preset(model: MLPTrunk, folder: str | os.PathLike, *, registry_name: str | None = None,
                source_weights: str | os.PathLike | None = None) -> str:
    """Write `model` as a preset folder (created, or updated if it is one); returns the folder.

    Args:
        model: a zoo model (`MLPTrunk`); its `preprocessing` and `class_names` travel in `model.keras`.
        folder: str or path. A new or empty folder, or a preset folder to update (only its own files change).
        registry_name: str or None. The registered variant it was built from (`keras_mlp.save_preset` fills it).
        source_weights: str, path or None. The weights it was fine-tuned from (a preset name, URL or path), recorded
            as provenance.

    >>> import tempfile
    >>> from keras_mlp.models import GMLP
    >>> model = GMLP(patch_size=4, num_blocks=1, hidden_dim=8, image_size=8, num_classes=2, class_names=["a", "b"])
    >>> folder = save_preset(model, tempfile.mkdtemp())
    >>> sorted(os.listdir(folder)), open(os.path.join(folder, "labels.txt")).read()
    (['labels.txt', 'model.keras', 'preset.json'], 'a\\nb\\n')
    """
    if not isinstance(model, MLPTrunk):
        raise TypeError(f"save_preset takes a keras_mlp model (MLPTrunk), got {type(model).__name__}.")
    folder = os.fspath(folder)
    names = model.class_names
    bad = [n for n in names or () if "\n" in n or "\r" in n]
    if bad:
        raise ValueError(f"Class names must be one line each for {LABELS_FILE}; got {bad[:3]!r}. Rebuild the model "
                         "with class_names=[...] without line breaks.")
    previous = _writable(folder)
    info = {"format": FORMAT, "version": VERSION, "model_class": type(model).__name__, "registry_name": registry_name,
            "name": model.name, "source_weights": None if source_weights is None else os.fspath(source_weights),
            "keras_mlp_version": _version(), "keras_version": keras.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "image_size": list(model.image_size), "num_channels": model.num_channels,
            "num_classes": model.num_classes if model.include_top else None,
            "labels": LABELS_FILE if names is not None else None, "preprocessing": model.preprocessing.get_config()}
    clean = type(model).from_config(model.get_config())  # architecture and weights only: no optimizer state
    clean.set_weights(model.get_weights())
    with contextlib.ExitStack() as stack:  # all written first, then moved into place (preset.json last)
        with open(stack.enter_context(atomic_path(os.path.join(folder, INFO_FILE))), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
        if names is not None:
            labels = stack.enter_context(atomic_path(os.path.join(folder, LABELS_FILE)))
            with open(labels, "w", encoding="utf-8", newline="\n") as f:
                f.write("".join(f"{n}\n" for n in names))
        clean.save(stack.enter_context(atomic_path(os.path.join(folder, MODEL_FILE))))
    stale = os.path.join(folder, LABELS_FILE)
    if names is None and previous and previous.get("labels") == LABELS_FILE and os.path.isfile(stale):
        os.remove(stale)  # this program wrote it for the model the folder held before
    return folder


def read_preset_info(folder: str | os.PathLike) -> dict:
    """The checked `preset.json` of a preset folder; an error naming what is missing otherwise."""
    folder = os.fspath(folder)
    if not os.path.exists(folder):
        raise FileNotFoundError(f"No preset folder at {folder}. {HOW}")
    if not os.path.isdir(folder):
        raise CheckpointError(f"{folder} is a file, not a preset folder. {HOW}")
    present = sorted(os.listdir(folder))
    missing = [name for name in (MODEL_FILE, INFO_FILE) if name not in present]
    if missing:
        raise CheckpointError(f"{folder} is not a keras_mlp preset folder: {' and '.join(missing)} missing (it holds "
                              f"{', '.join(present[:8]) or 'nothing'}). {HOW}")
    info = _read_json(os.path.join(folder, INFO_FILE))
    if info is None:
        raise CheckpointError(f"{os.path.join(folder, INFO_FILE)} is not a keras_mlp preset description (unreadable "
                              f"JSON, or no \"format\": \"{FORMAT}\"). Save the preset again. {HOW}")
    if not isinstance(info.get("version"), int) or info["version"] > VERSION:
        raise CheckpointError(f"{folder} is a version {info.get('version')!r} preset; this keras_mlp reads up to "
                              f"version {VERSION}. Upgrade keras-mlp.")
    if info.get("labels") and info["labels"] not in present:
        raise CheckpointError(f"{folder} is missing {info['labels']}, the class names its {INFO_FILE} lists. Save "
                              "the preset again, or restore the file.")
    return info


def preset_family(folder: str | os.PathLike) -> type[MLPTrunk]:
    """The model class a preset folder holds (from its `preset.json`, without loading the model)."""
    name = read_preset_info(folder).get("model_class")
    family = next((f for f in FAMILIES if f.__name__ == name), None)
    if family is None:
        raise CheckpointError(f"{os.fspath(folder)} holds a {name!r} model, not one of keras_mlp's "
                              f"({', '.join(f.__name__ for f in FAMILIES)}).")
    return family


def load_preset(folder: str | os.PathLike, **overrides) -> MLPTrunk:
    """The model of a preset folder; `overrides` rebuild it with other arguments (another `num_classes` gets a
    fresh head, another `image_size` resizes it with `keras_mlp.resize`)."""
    folder = os.fspath(folder)
    info = read_preset_info(folder)
    family = preset_family(folder)
    path = os.path.join(folder, MODEL_FILE)
    try:
        model = keras.saving.load_model(path)
    except Exception as err:  # Keras raises ValueError, OSError, zipfile errors, ... for a bad file
        raise CheckpointError(f"Cannot load {path} ({type(err).__name__}: {err}). Save the preset again.") from err
    if not isinstance(model, family):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, but {INFO_FILE} says {family.__name__}. "
                              "Save the preset again.")
    if info.get("labels"):
        with open(os.path.join(folder, info["labels"]), encoding="utf-8") as f:
            text = f.read()
        labels = tuple(text[:-1].split("\n")) if text.endswith("\n") else tuple(text.split("\n"))
        if labels != model.class_names:
            raise CheckpointError(f"{os.path.join(folder, info['labels'])} does not list the class names in "
                                  f"{MODEL_FILE} ({len(labels)} vs {len(model.class_names or ())} names). Rename "
                                  "classes with create_model(folder, class_names=[...]) and save the preset again.")
    return _with_overrides(model, overrides, folder) if overrides else model


def _with_overrides(model: MLPTrunk, overrides: dict, folder: str) -> MLPTrunk:
    overrides = dict(overrides)
    size = overrides.pop("image_size", None)
    shape = overrides.pop("input_shape", None)
    if shape is not None:
        if len(shape) != 3 or shape[2] != model.num_channels:
            raise ValueError(f"input_shape={shape!r}: the preset takes {model.num_channels}-channel images; pass "
                             "image_size=(height, width) to resize it.")
        size = tuple(shape[:2])
    if overrides:
        config = {**model.get_config(), **overrides}
        fresh = config["include_top"] and (not model.include_top or config["num_classes"] != model.num_classes)
        if (fresh or not config["include_top"]) and "class_names" not in overrides:
            config["class_names"] = None
        rebuilt = type(model).from_config(config)
        if fresh:
            log.warning(f"{folder}: a fresh {config['num_classes']}-class head (num_classes="
                        f"{config['num_classes']}); the preset's head is not loaded.")
        load_checkpoint(rebuilt, checkpoint_state(model, model.layouts[0]), skip_head=fresh)
        model = rebuilt
    if size is not None:
        model = resize(model, size)
    return model
