"""Download preset and URL weights into the Keras cache, verified before they are cached.

`keras.utils.get_file` does the download (progress bar, `http(s)://` and `file://`), into a temporary folder
beside the cache: the file is checked there (sha256 where known, readable by `read_checkpoint`, the expected key
layout and class count) and only then moved into the cache (`os.replace`, atomic). A bad download is refused and
never cached. The cache is `$KERAS_HOME/models/keras_mlp/` (`~/.keras` without KERAS_HOME).

`KERAS_MLP_WEIGHTS_MIRROR=<base URL>` fetches every file from `<base>/<host>/<path>` of its URL instead (the tree
`wget -x` makes), for offline sites: e.g. `file:///srv/weights` or `http://intranet/weights`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Mapping
from typing import Any

from keras_mlp.backend import keras
from keras_mlp.weights.loading import find_layout
from keras_mlp.weights.preset_folder import load_preset
from keras_mlp.weights.presets import PRESETS, Preset, WeightFile, get_preset, list_presets, preset_class_names
from keras_mlp.weights.readers import TORCH_SUFFIXES, CheckpointError, read_checkpoint
from keras_mlp.weights.saving import checkpoint_state, own_layout

MIRROR_ENV = "KERAS_MLP_WEIGHTS_MIRROR"
URL_SCHEMES = ("https://", "http://", "file://")


class DownloadError(CheckpointError):
    """Weights that could not be downloaded, or were downloaded but refused; says which URL and what to do."""


def cache_folder() -> str:
    """Where verified downloads are kept: `$KERAS_HOME/models/keras_mlp` (Keras' own default home)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models", "keras_mlp")


def mirrored(url: str) -> str:
    """`url` under the `KERAS_MLP_WEIGHTS_MIRROR` base (`<base>/<host>/<path>`), or `url` when it is unset."""
    base = os.environ.get(MIRROR_ENV, "").strip()
    if not base:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{base.rstrip('/')}/{parts.netloc}{parts.path}"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: str, url: str, file: WeightFile | None, preset: Preset | None) -> None:
    """Refuse a downloaded file whose hash, readability, layout or class count is not the expected one."""
    if file is not None and file.sha256:
        digest = sha256_of(path)
        if not digest.startswith(file.sha256.lower()):
            raise DownloadError(f"sha256 mismatch: expected {file.sha256}…, got {digest[:16]}…")
    state = read_checkpoint(path)
    layout = find_layout(state, url)
    if file is not None and layout.name != file.layout:
        raise DownloadError(f"the file is in the {layout.name!r} layout, not {file.layout!r}")
    classes = layout.num_classes(state)
    if preset is not None and preset.num_classes is not None and classes != preset.num_classes:
        raise DownloadError(f"the file has a {classes}-class head, not {preset.num_classes}")


def _download(url: str, target: str, file: WeightFile | None, preset: Preset | None) -> None:
    """get_file into a temporary folder beside `target`, verify, move into place; nothing is left on failure."""
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".download-", dir=folder)
    try:
        try:
            path = keras.utils.get_file(os.path.basename(target), url, cache_dir=tmp, cache_subdir="")
        except Exception as err:  # get_file raises a bare Exception for HTTP and network errors
            raise DownloadError(f"download failed ({err})") from err
        try:
            _verify(path, url, file, preset)
        except CheckpointError as err:
            raise DownloadError(f"refused, not cached: {err}") from err
        os.replace(path, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch(candidates: list[tuple[str, WeightFile | None]], preset: Preset | None, usage: str) -> str:
    """The cached copy of the first candidate `(url, file)`, else the first that downloads and verifies."""
    folder = cache_folder()
    targets = [os.path.join(folder, _cache_name(url, preset)) for url, _ in candidates]
    for target in targets:
        if os.path.isfile(target):
            return target
    problems = []
    for (url, file), target in zip(candidates, targets):
        source = mirrored(url)
        shown = source if source == url else f"{source} (mirror of {url})"
        if target.endswith(TORCH_SUFFIXES) and importlib.util.find_spec("torch") is None:
            problems.append(f"{shown}: a PyTorch .pth file; reading it needs torch, which is not installed "
                            "(pip install torch)")
            continue
        try:
            _download(source, target, file, preset)
            return target
        except DownloadError as err:
            problems.append(f"{shown}: {err}")
    name = f"preset {preset.name}" if preset else "the weights"
    raise DownloadError(f"Could not get {name}:\n  " + "\n  ".join(problems) + f"\nIf this machine is offline, "
                        f"download a file above elsewhere and pass its path: {usage}; or serve a copy of the files "
                        f"and set {MIRROR_ENV}=<base URL> (files at <base>/<host>/<path>).")


def _cache_name(url: str, preset: Preset | None) -> str:
    base = os.path.basename(urllib.parse.urlsplit(url).path)
    prefix = preset.name if preset else hashlib.sha256(url.encode()).hexdigest()[:16]
    return f"{prefix}.{base}"


def fetch_preset(preset: Preset | str) -> str:
    """The local path of a preset's verified weights, downloaded on first use.

    >>> fetch_preset("nope.nope")
    Traceback (most recent call last):
    ValueError: Unknown preset 'nope.nope'. See keras_mlp.list_presets().
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    usage = f"create_model({preset.model!r}, weights='/path/to/the/file')"
    return _fetch([(f.url, f) for f in preset.files], preset, usage)


def fetch_url(url: str, model: str = "<model>") -> str:
    """The local path of the checkpoint at `url` (any known layout), downloaded and verified on first use."""
    return _fetch([(url, None)], None, f"create_model({model!r}, weights='/path/to/{os.path.basename(url)}')")


def resolve_weights(name: str, weights: Any = None, overrides: dict | None = None) -> tuple[str, Any, dict]:
    """`create_model(name, weights, **overrides)` → (model name, checkpoint path / mapping / None, overrides).

    `name` is a model (`"mixer_b16_224"`) or a preset (`"mixer_b16_224.goog_in21k_ft_in1k"`); `weights` is None, a
    tag of the model (`"goog_in21k_ft_in1k"`), a preset name, an http(s)/file URL, a checkpoint path, a preset
    folder (`keras_mlp.save_preset`) or a `{key: array}` mapping. Presets and URLs are downloaded (once) and
    verified. A preset or preset folder adds its `preprocessing`, and its `class_names` where its head is kept, to
    the overrides (explicit ones win).

    >>> resolve_weights("mixer_s16_224", "/data/mixer.npz", {"num_classes": 10})
    ('mixer_s16_224', '/data/mixer.npz', {'num_classes': 10})
    """
    model, source, preset = _resolve(name, weights)
    overrides = dict(overrides or {})
    if preset is not None:
        _carry(overrides, preset.preprocessing, preset.num_classes, preset_class_names(preset))
    elif isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        saved = load_preset(source)
        _carry(overrides, saved.preprocessing, saved.num_classes if saved.include_top else None, saved.class_names)
        source = checkpoint_state(saved, own_layout(saved))
    return model, source, overrides


def _carry(overrides: dict, preprocessing, num_classes: int | None, class_names) -> None:
    """The weights' preprocessing, and their class names where the model keeps their head, unless overridden."""
    overrides.setdefault("preprocessing", preprocessing)
    same_head = overrides.get("num_classes", num_classes) == num_classes
    if overrides.get("include_top", True) and same_head and class_names is not None:
        overrides.setdefault("class_names", class_names)


def _resolve(name: str, weights: Any) -> tuple[str, Any, Preset | None]:
    model, dot, _ = name.partition(".")
    if dot:
        if weights is not None:
            raise ValueError(f"{name!r} names preset weights and weights={weights!r} names others; pass one: "
                             f"create_model({model!r}, weights=...) or create_model({name!r}).")
        preset = get_preset(name)
        return model, fetch_preset(preset), preset
    if weights is None or isinstance(weights, Mapping):
        return model, weights, None
    text = os.fspath(weights)
    if not isinstance(text, str):
        raise TypeError(f"weights must be a preset tag, path, URL or mapping, got {type(weights).__name__}.")
    if text.startswith(URL_SCHEMES):
        return model, fetch_url(text, model), None
    preset = PRESETS.get(f"{model}.{text}") or PRESETS.get(text)
    if preset is not None:
        if preset.model != model:
            raise ValueError(f"{text!r} holds {preset.model} weights, not {model}: "
                             f"create_model({preset.name!r}).")
        return model, fetch_preset(preset), preset
    if os.path.exists(text) or os.path.splitext(text)[1] or os.sep in text:
        return model, weights, None  # a checkpoint path; read_checkpoint says what is wrong with it
    tags = ", ".join(p.split(".", 1)[1] for p in list_presets(model)) or "none"
    raise ValueError(f"weights={text!r} is neither a file nor a preset of {model} (its presets: {tags}). Pass a "
                     "checkpoint path, an https URL or a preset tag; keras_mlp.list_presets() lists them all.")
