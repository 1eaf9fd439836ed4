"""The training configuration: one flat, JSON-friendly dataclass; recipes (`training.recipes`) set its fields.

The learning rate given is the one for `lr_batch_size` images per step and is scaled linearly with the
global batch (Goyal et al. 2017; DeiT: lr = 5e-4 * batch / 512).
"""
from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any


class UsageError(ValueError):
    """Bad input the user can fix; the CLI prints the message and exits with status 2."""


AUGMENTS = ("auto", "digits", "natural", "none")
OPTIMIZERS = ("adamw", "lamb", "sgd")
HEADS = ("auto", "fresh", "keep")
MIXED_PRECISION = (None, "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "one", "mirrored", "multiworker", "tpu")
EXAMPLES = {"rand_augment": "[2,9]", "model_overrides": '{"num_blocks":4}', "data_dir": "/data/tfds",
            "export_options": '{"qat_epochs":1}'}
POSITIVE_INTS = ("epochs", "batch_size", "checkpoint_every", "keep_checkpoints", "eval_batch_size", "eval_every")

# Fields that do not change what is trained: a work directory may be resumed with other values.
RUNTIME_FIELDS = ("strategy", "data_dir", "download", "export", "export_options", "checkpoint_every",
                  "keep_checkpoints", "eval_batch_size", "eval_every", "verbose")


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on. Saved as `config.json` in the work directory."""

    # Model: a registry name plus constructor overrides (image_size, patch_size, num_blocks, ...).
    model: str = "mixer_s16_224"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    drop_path_rate: float = 0.0
    # Fine-tuning (training.finetune): a checkpoint to start from (preset name, file path or URL, as
    # keras_mlp.create_model's `weights`), its head, frozen layers and layer-wise learning-rate decay.
    weights: str | None = None
    head: str = "auto"  # auto (kept when the dataset's class names are the checkpoint's own) | fresh | keep
    linear_probe: bool = False  # train the head alone
    freeze_blocks: int = 0  # freeze the stem and the first k blocks
    layer_decay: float | None = None  # lr of layer l of L: lr * layer_decay ** (L + 1 - l)
    # Data.
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    augment: str = "auto"  # auto (digits for 'digits', else natural) | digits | natural | none
    jitter: float = 0.1
    rand_augment: list | None = None  # [num_ops, magnitude], e.g. [2, 9] (DeiT: rand-m9-mstd0.5)
    mixup: float = 0.0
    cutmix: float = 0.0
    label_smoothing: float = 0.1
    # Optimisation.
    epochs: int = 30
    batch_size: int = 64  # global
    optimizer: str = "adamw"  # adamw | lamb | sgd
    lr: float = 1e-3
    lr_batch_size: int = 0  # 0: lr is used as given
    min_lr: float = 1e-5
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    beta_1: float = 0.9
    beta_2: float = 0.999
    momentum: float = 0.9  # sgd
    clip_norm: float | None = 1.0
    use_ema: bool = False
    ema_momentum: float = 0.9999
    mixed_precision: str | None = None  # None | mixed_bfloat16 | mixed_float16
    jit_compile: bool = True  # XLA for forward + backward (about 1.8x faster on CPU for the digits Mixer)
    # Run.
    seed: int = 0
    deterministic: bool = False
    strategy: str = "auto"  # auto | one | mirrored | multiworker | tpu (training.distribute)
    checkpoint_every: int = 100  # steps
    keep_checkpoints: int = 2
    eval_batch_size: int = 256
    eval_every: int = 1  # epochs between held-out evaluations (the last epoch is always evaluated)
    export: str = "all"  # export modes after training ("none" to skip)
    export_options: dict = dataclasses.field(default_factory=dict)  # ExportOptions fields: {"qat_epochs": 1}
    verbose: int = 1

    def __post_init__(self):
        self._check_types()
        self._check_values()

    def _check_types(self) -> None:
        """Each field holds a value of its annotated type (an int is accepted for a float)."""
        for name, hint in typing.get_type_hints(type(self)).items():
            value = getattr(self, name)
            allowed = typing.get_args(hint) or (hint,)
            allowed = tuple(type(None) if a is None else a for a in allowed)
            if float in allowed:
                allowed += (int,)
            if isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed):
                continue
            kinds = " or ".join("null" if a is type(None) else a.__name__ for a in typing.get_args(hint) or (hint,))
            default = EXAMPLES.get(name, getattr(TrainConfig, name, None))
            example = default if isinstance(default, str) else json.dumps(default)
            raise UsageError(f"Config field `{name}` must be {kinds}, got {value!r}. Pass e.g. --set {name}={example}.")

    def _check_values(self) -> None:
        """Values the trainer cannot use, and options that do not apply to this run."""
        def bad(name, rule, example):
            raise UsageError(f"`{name}` must be {rule}, got {getattr(self, name)!r}. Pass e.g. --set {name}={example}.")

        for name in POSITIVE_INTS:
            if getattr(self, name) <= 0:
                bad(name, "a positive integer", getattr(TrainConfig, name))
        for name, allowed in {"augment": AUGMENTS, "optimizer": OPTIMIZERS, "mixed_precision": MIXED_PRECISION,
                              "head": HEADS, "strategy": STRATEGIES}.items():
            if getattr(self, name) not in allowed:
                bad(name, "one of " + ", ".join(map(json.dumps, allowed)), allowed[-1])
        for name in ("label_smoothing", "drop_path_rate", "beta_1", "beta_2", "ema_momentum", "momentum"):
            if not 0.0 <= getattr(self, name) < 1.0:
                bad(name, "in [0, 1)", getattr(TrainConfig, name))
        for name in ("lr", "clip_norm"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                bad(name, "positive" + (" (or null: no clipping)" if name == "clip_norm" else ""),
                    getattr(TrainConfig, name))
        for name in ("mixup", "cutmix", "jitter", "weight_decay", "min_lr", "warmup_epochs", "lr_batch_size",
                     "freeze_blocks"):
            if getattr(self, name) < 0:
                bad(name, "non-negative", 0)
        if self.layer_decay is not None and not 0.0 < self.layer_decay <= 1.0:
            bad("layer_decay", "in (0, 1] or null", 0.75)
        self._check_finetuning()
        if self.rand_augment is not None:
            if len(self.rand_augment) != 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in self.rand_augment):
                bad("rand_augment", "[num_ops, magnitude] or null", "[2,9]")
            if self.augmentation != "natural":
                raise UsageError(f"`rand_augment` applies to natural-image augmentation only, but this run uses "
                                 f"{self.augmentation!r} augmentation. Drop --set rand_augment, or pass "
                                 "--set augment=natural.")

    def _check_finetuning(self) -> None:
        """Options that only mean something when starting from `weights`, and options that exclude each other."""
        given = [f"{name}={json.dumps(getattr(self, name))}" for name, default in
                 (("head", "auto"), ("linear_probe", False), ("freeze_blocks", 0), ("layer_decay", None))
                 if getattr(self, name) != default]
        if given and self.weights is None:
            raise UsageError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to fine-tuning only. Pass "
                             "--weights PRESET|PATH|URL, or drop them.")
        if self.linear_probe and self.freeze_blocks:
            raise UsageError("linear_probe freezes every block already. Pass either --set linear_probe=true or "
                             "--set freeze_blocks=K.")

    @property
    def augmentation(self) -> str:
        """The augmentation kind: `augment`, with "auto" resolved by the dataset."""
        if self.augment != "auto":
            return self.augment
        return "digits" if self.dataset == "digits" else "natural"

    @property
    def peak_lr(self) -> float:
        return self.lr * self.batch_size / self.lr_batch_size if self.lr_batch_size else self.lr

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def identity(self) -> dict[str, Any]:
        """The fields that define the run (everything but the runtime fields)."""
        return {k: v for k, v in json.loads(self.to_json()).items() if k not in RUNTIME_FIELDS}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"Unknown config key(s) {unknown}. Known keys: {', '.join(sorted(known))}.")
        return cls(**values)

