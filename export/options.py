"""`ExportOptions`: everything an export run depends on but the model and the data, in one validated dataclass.

    >>> ExportOptions(modes="int8,float32", threads=[1]).modes
    ('float32', 'int8')
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from export.convert import input_spec, num_classes_of
from export.errors import ExportError, positive_int
from export.modes import QAT_ENGINES, resolve_modes
from export.parity import MIN_GATE_IMAGES, check_thresholds
from keras_mlp.preprocessing import Preprocessing

COUNTS = ("num_calibration", "qat_epochs", "qat_batch_size", "qat_samples", "latency_runs")


def check_name(name) -> str:
    """`name` as a plain file-name stem (files land in out_dir only), else `ExportError`."""
    if not isinstance(name, str) or not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ExportError(f"Export name {name!r} must be a plain file-name stem without '/', '\\' or '..' (e.g. "
                          "'mixer_s16'): every file is written into out_dir.")
    return name


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """How `export.pipeline.export_model` (and `export.gate.gate_file`) export and gate a model.

    Args:
        modes: "all", "float32,int8" or a sequence of `export.MODES`; kept as a tuple in `MODES` order.
        batch_size: static batch of the signature (1 for mobile/XNNPACK), or None for a dynamic batch.
        num_calibration: images of the representative dataset (`export.modes.CALIBRATED`). Defaults to 256.
        num_eval: held-out images of the gate (at least `export.parity.MIN_GATE_IMAGES`); None: all given.
        thresholds: {mode: {key: value}} overriding `export.parity.DEFAULT_THRESHOLDS` (keys and ranges checked).
        qat_epochs, qat_learning_rate, qat_batch_size, qat_samples: QAT fine-tuning (epochs, Adam learning rate,
            batch size, training images).
        qat_engine: who fine-tunes the QAT modes: "tfmot" (`export.qat`, tf_keras in a subprocess) or "keras"
            (`export.qat_keras`, `keras_mlp.quantization` in process, no representative dataset). Defaults to
            "tfmot".
        latency_runs: timed `invoke()` calls per latency figure (median reported).
        threads: XNNPACK thread counts of the latency figures. Defaults to (1, 2).
        metadata: embed TFLite metadata (normalisation, labels) for MediaPipe. Defaults to True.
        progress: progress bars. Defaults to True.
        preprocessing: a `keras_mlp.Preprocessing` (or its config dict) written to the sidecar and metadata;
            None: the model's own `model.preprocessing`.
        class_names: one name per class; None: `model.class_names`, else "0", "1", ...
        name: file-name stem of every file; None: `model.name`.
        mediapipe_python: Python of a venv with `export.runtimes.MEDIAPIPE`: every file is then classified by
            MediaPipe's ImageClassifier too (`export.runtimes.verify`); None: MediaPipe's refusal rules only.
    """

    modes: tuple[str, ...] | str = "all"
    batch_size: int | None = 1
    num_calibration: int = 256
    num_eval: int | None = None
    thresholds: dict = dataclasses.field(default_factory=dict)
    qat_epochs: int = 3
    qat_learning_rate: float = 1e-4
    qat_batch_size: int = 32
    qat_samples: int = 8192
    # The engine that measures better on the harder setting, tfmot on a tie: digits int8 top-1 (one seed, 360 images;
    # export/README.md) is tfmot 95.28 vs Keras 3 95.83 (94.72 vs 95.56 at lr 1e-3), 2-4 images apart, a tie, and the
    # harder low-bit setting has no tfmot row to compare, so tfmot stays the default.
    qat_engine: str = "tfmot"
    latency_runs: int = 50
    threads: tuple[int, ...] = (1, 2)
    metadata: bool = True
    progress: bool = True
    preprocessing: Preprocessing | None = None
    class_names: tuple[str, ...] | None = None
    name: str | None = None
    mediapipe_python: str | None = None

    def __post_init__(self):
        fix = lambda field, value: object.__setattr__(self, field, value)  # noqa: E731 (frozen dataclass)
        fix("modes", resolve_modes(self.modes))
        if self.batch_size is not None:
            fix("batch_size", positive_int(self.batch_size, "batch_size"))
        for field in COUNTS:
            fix(field, positive_int(getattr(self, field), field))
        if self.num_eval is not None and positive_int(self.num_eval, "num_eval") < MIN_GATE_IMAGES:
            raise ExportError(f"`num_eval`={self.num_eval} is below the gate's minimum of {MIN_GATE_IMAGES} held-out "
                              f"images: pass {MIN_GATE_IMAGES} or more (or None: all).")
        fix("thresholds", check_thresholds(self.thresholds))
        rate = self.qat_learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise ExportError(f"`qat_learning_rate` must be a finite number > 0, got {rate!r}.")
        if self.qat_engine not in QAT_ENGINES:
            raise ExportError(f"Unknown `qat_engine` {self.qat_engine!r}. Choose from {', '.join(QAT_ENGINES)}.")
        threads = self.threads
        if isinstance(threads, (str, bytes)) or not isinstance(threads, Sequence) or not threads:
            raise ExportError(f"`threads` must be a non-empty list of positive integers, got {threads!r}.")
        fix("threads", tuple(positive_int(t, "threads") for t in threads))
        for field in ("metadata", "progress"):
            if not isinstance(getattr(self, field), bool):
                raise ExportError(f"`{field}` must be True or False, got {getattr(self, field)!r}.")
        try:
            fix("preprocessing", Preprocessing.from_config(self.preprocessing))
        except ValueError as err:
            raise ExportError(f"`preprocessing`: {err}") from None
        if self.class_names is not None:
            if isinstance(self.class_names, str) or not all(isinstance(c, str) for c in self.class_names):
                raise ExportError(f"`class_names` must be a list of strings, got {self.class_names!r}.")
            fix("class_names", tuple(self.class_names))
        if self.name is not None:
            check_name(self.name)
        if self.mediapipe_python is not None and not isinstance(self.mediapipe_python, str):
            raise ExportError(f"`mediapipe_python` must be the path of a Python executable, got "
                              f"{self.mediapipe_python!r}.")

    def for_model(self, model) -> ExportOptions:
        """These options with `preprocessing`, `class_names` and `name` taken from `model` where not given, checked
        against it (channels, class count), else `ExportError`."""
        channels, num_classes = int(input_spec(model).shape[-1]), num_classes_of(model)
        preprocessing = self.preprocessing or getattr(model, "preprocessing", None)
        if preprocessing is None and self.metadata:
            raise ExportError(f"Model {model.name!r} records no preprocessing (not a keras_mlp model), so its "
                              "normalisation is unknown. Pass preprocessing=keras_mlp.Preprocessing(mean, std) (per "
                              "channel, on 0..1 pixels), or metadata=False.")
        if preprocessing is not None and preprocessing.channels != channels:
            origin = "given" if self.preprocessing else "the model's own"
            raise ExportError(f"The preprocessing ({origin}) has {preprocessing.channels} channel(s) but the model "
                              f"takes {channels}-channel images: pass a Preprocessing with {channels} mean/std "
                              "value(s) (--mean/--std).")
        names = self.class_names or getattr(model, "class_names", None)
        if names is not None and len(names) != num_classes:
            raise ExportError(f"{len(names)} class names for a model with {num_classes} outputs. Pass exactly "
                              f"{num_classes} names (or none).")
        return dataclasses.replace(self, preprocessing=preprocessing, name=check_name(self.name or model.name),
                                   class_names=tuple(names) if names else tuple(map(str, range(num_classes))))


def normalization(model, mean=None, std=None) -> Preprocessing | None:
    """The model's preprocessing with its `mean` / `std` replaced where given (one value per input channel each),
    else `ExportError`; None when neither the model nor the caller knows them (a model not built by keras_mlp)."""
    channels = int(input_spec(model).shape[-1])
    recorded = getattr(model, "preprocessing", None)
    if (mean is None) != (std is None) and recorded is None:
        raise ExportError("Pass both `mean` and `std` (per-channel, on 0..1 pixels) or neither.")
    if mean is None and std is None:
        return recorded
    for what, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) != channels:
            raise ExportError(f"`{what}` has {len(values)} value(s) but the model takes {channels}-channel images: "
                              f"pass --mean and --std with {channels} value(s) each.")
    base = recorded or Preprocessing()
    try:
        return dataclasses.replace(base, mean=base.mean if mean is None else mean,
                                   std=base.std if std is None else std)
    except ValueError as err:
        raise ExportError(str(err)) from None
