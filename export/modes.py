"""The export modes and what each needs (pure Python: no TensorFlow).

A new mode is one entry in `MODES`, its converter settings in `export.convert.configure` and its gate thresholds
in `export.parity.DEFAULT_THRESHOLDS` (a test fails if a mode has none).
"""
from __future__ import annotations

from collections.abc import Sequence

from export.errors import ExportError

MODES = ("float32", "float16", "dynamic", "int8", "int8_uint8", "int8_float_io", "int16x8", "qat", "qat_uint8")
"""Every export mode; `qat` is produced by `export.qat.quantization_aware_training`, then converted as `int8`;
`int8_uint8` and `qat_uint8` are `int8` and `qat` taking raw uint8 pixels (`export.pixels`)."""
QAT_MODES = ("qat", "qat_uint8")
"""Modes converted from one quantisation-aware fine-tune of the model (`export.qat`)."""
QAT_ENGINES = ("tfmot", "keras")
"""Who fine-tunes the QAT modes: "tfmot" (`export.qat`, tf_keras in a subprocess) or "keras"
(`export.qat_keras`: `keras_mlp.quantization`, Keras 3 in process)."""
PIXEL_MODES = {"int8_uint8": "int8", "qat_uint8": "qat"}
"""Raw-pixel mode → the mode whose quantisation it uses (`export.pixels`: uint8 0..255 in, float32 logits out)."""
CALIBRATED = ("int8", "int8_uint8", "int16x8", "int8_float_io", "qat", "qat_uint8")
"""Modes that need a representative dataset (calibration images)."""
INTEGER_COMPUTE = ("int8", "int8_uint8", "int8_float_io", "int16x8", "qat", "qat_uint8")
"""Modes whose every compute op is integer: a float op left in the graph fails the gate."""


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ExportError(f"Unknown export mode {mode!r}. Choose from {', '.join(MODES)} (or 'all').")
    return mode


def resolve_modes(modes: str | Sequence[str]) -> tuple[str, ...]:
    """'all', a comma-separated string or a list → the checked modes, in `MODES` order."""
    if isinstance(modes, str):
        modes = list(MODES) if modes.strip() == "all" else [m.strip() for m in modes.split(",") if m.strip()]
    if isinstance(modes, (bytes, dict)) or not isinstance(modes, Sequence) or not modes:
        raise ExportError(f"No export mode given ({modes!r}). Choose from {', '.join(MODES)} or 'all'.")
    for mode in modes:
        check_mode(mode)
    return tuple(m for m in MODES if m in modes)
