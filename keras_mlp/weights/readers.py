"""Checkpoint files to flat `{key: numpy array}` dicts, by file type — never unpickling code.

- `.npz`: NumPy archives (the official MLP-Mixer checkpoints, Flax names joined by "/"), read with
  `allow_pickle=False`.
- `.safetensors`: read with `safetensors.numpy` (no torch needed).
- `.pth` / `.pt` / `.bin`: PyTorch pickles, only with `torch.load(weights_only=True)` and only if torch is
  installed. Before torch sees the file, its pickle opcodes are scanned (`pickletools`, nothing is executed)
  and any import outside tensors and plain containers is refused.
"""
from __future__ import annotations

import os
import pickletools
import zipfile
from typing import Any

import numpy as np

TORCH_SUFFIXES = (".pth", ".pt", ".bin")
SUFFIXES = (".npz", ".safetensors", *TORCH_SUFFIXES)
# What a weights-only PyTorch pickle may import: tensor rebuilders, storages, dtypes and plain containers.
_DTYPES = {"Size", "device", "dtype", "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32",
           "int64", "uint8", "bool"}
_SAFE = {
    "torch": lambda n: n.endswith("Storage") or n in _DTYPES,
    "torch._utils": lambda n: n.startswith("_rebuild_") and n != "_rebuild_from_type_v2",
    "torch.storage": lambda n: n in ("UntypedStorage", "TypedStorage"),
    "collections": lambda n: n in ("OrderedDict", "defaultdict"),
    "builtins": lambda n: n in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "bool", "str", "bytes",
                                "bytearray", "slice"),
    "_codecs": lambda n: n == "encode",
    "numpy.core.multiarray": lambda n: n in ("_reconstruct", "scalar"),
    "numpy._core.multiarray": lambda n: n in ("_reconstruct", "scalar"),
    "numpy": lambda n: n in ("ndarray", "dtype"),
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says what differs and the fix."""


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a checkpoint file as `{key: array}` (nested `model`/`state_dict` wrappers unwrapped)."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise CheckpointError(f"Unknown checkpoint type {suffix or '(no suffix)'!r} for {path}. Supported: "
                              f"{', '.join(SUFFIXES)} (convert other formats to .safetensors).")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {path}.")
    try:
        if suffix == ".npz":
            return _read_npz(path)
        if suffix == ".safetensors":
            return _read_safetensors(path)
        return _read_torch(path)
    except OSError as err:
        raise CheckpointError(f"Cannot read {path}: {err}. Check that the file is readable.") from err


def _corrupt(path: str, kind: str, err: Exception | str) -> CheckpointError:
    return CheckpointError(f"{path} is not a readable {kind} file ({err}); it is corrupt or truncated, or another "
                           f"format under a {os.path.splitext(path)[1]} name. Download or export it again.")


def _read_npz(path: str) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise _corrupt(path, ".npz (zip)", "no zip directory")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise CheckpointError(f"Refused {path}: it holds object (pickled) arrays, not plain weight arrays. Save "
                                  "the weights as numeric arrays (np.savez with float arrays).") from err
        raise _corrupt(path, ".npz", err) from err
    except (zipfile.BadZipFile, EOFError, KeyError) as err:
        raise _corrupt(path, ".npz", err) from err


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError as err:
        raise ImportError("Reading .safetensors needs the `safetensors` package: pip install safetensors") from err
    try:
        return dict(load_file(path))
    except SafetensorError as err:
        raise _corrupt(path, ".safetensors", err) from err


def _read_torch(path: str) -> dict[str, np.ndarray]:
    check_weights_only(path)
    try:
        import torch
    except ImportError as err:
        raise CheckpointError(
            f"{path} is a PyTorch pickle, and reading it needs torch, which is not installed. Either "
            f"`pip install torch`, or convert it once where torch is installed:\n  python -c \"import torch; "
            f"from safetensors.torch import save_file; sd = torch.load('{path}', map_location='cpu', "
            f"weights_only=True); sd = sd.get('model', sd); save_file({{k: v.contiguous() for k, v in sd.items()}}, "
            f"'model.safetensors')\"\nthen pass model.safetensors.") from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError / RuntimeError for non-weights pickles
        raise CheckpointError(f"Refused {path}: torch.load(weights_only=True) cannot read it ({err}). Only "
                              "weights-only checkpoints are loaded; no arbitrary code is ever unpickled.") from err
    state = unwrap(obj)
    return {key: value.detach().float().numpy() if value.is_floating_point() else value.numpy()
            for key, value in state.items() if hasattr(value, "numpy")}


def unwrap(obj: Any) -> dict:
    """The state dict inside a training checkpoint (`model`, `state_dict`, `model_ema`), minus a `module.` prefix."""
    while isinstance(obj, dict):
        inner = next((obj[k] for k in ("model", "state_dict", "model_ema") if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise CheckpointError(f"The checkpoint holds a {type(obj).__name__}, not a state dict of tensors.")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _pickles(path: str):
    """The pickle streams of a PyTorch file: `*/data.pkl` of the zip format, else the file's leading pickles."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                return [archive.read(n) for n in archive.namelist() if n.endswith("data.pkl")]
        except (zipfile.BadZipFile, EOFError) as err:
            raise _corrupt(path, "PyTorch (zip)", err) from err
    with open(path, "rb") as handle:
        return [handle.read()]


def check_weights_only(path: str) -> None:
    """Refuse a pickle that imports anything but tensors and containers; its opcodes are read, never run."""
    for blob in _pickles(path):
        offset = 0
        while offset < len(blob):
            try:
                ops = list(pickletools.genops(blob[offset:]))
            except Exception as err:
                if offset == 0:
                    raise CheckpointError(f"Refused {path}: not a readable pickle ({err}).") from err
                break  # legacy format: raw tensor bytes follow the pickles
            _check_ops(path, ops)
            offset += ops[-1][2] + 1


def _check_ops(path: str, ops) -> None:
    """Follow the strings a pickle pushes (memo included) to learn what each GLOBAL / STACK_GLOBAL imports."""
    stack: list = []  # recent pushed values: strings, or None for anything else
    memo: dict = {}
    for opcode, arg, _ in ops:
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            _check_global(path, *str(arg).split(" ", 1))
            stack.append(None)
        elif name == "STACK_GLOBAL":
            module, attr = (stack[-2:] + [None, None])[:2] if len(stack) >= 2 else (None, None)
            _check_global(path, str(module), str(attr))
            stack[-2:] = [None]
        elif "UNICODE" in name or "STRING" in name:
            stack.append(str(arg))
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
        elif name.endswith("PUT"):
            memo[arg] = stack[-1] if stack else None
        elif name.endswith("GET"):
            stack.append(memo.get(arg))
        else:
            stack.append(None)


def _check_global(path: str, module: str, name: str = "") -> None:
    allowed = _SAFE.get(module)
    if allowed is None or not allowed(name):
        raise CheckpointError(f"Refused {path}: its pickle imports {module}.{name}, which is not a tensor or plain "
                              "container, so it is not a weights-only checkpoint; no arbitrary code is ever "
                              "unpickled. If you trust the file, extract its state dict with torch and save it with "
                              "safetensors.torch.save_file, then load the .safetensors file.")
