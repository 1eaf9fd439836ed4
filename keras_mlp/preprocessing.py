"""How a model's images are prepared: resize + centre crop (timm's `transforms_imagenet_eval`) and the one
normalisation formula `(x / 255 - mean) / std`.

A `Preprocessing` travels with the model (`MLPTrunk(preprocessing=...)`, recorded in its config and so in every
`.keras` file), as keras-hub saves its image converter with the task and timm keeps a `pretrained_cfg` per
weight file. Data loading, export metadata and evaluation take it from the model, never from the model's name.

The resize and crop run in TensorFlow (`tf.image.resize`), on every Keras backend: they are `tf.data` transforms,
and an image resized on another backend would differ. TensorFlow is imported when `center_crop` first runs, so
that the model code imports none on JAX or PyTorch; `Preprocessing` itself and `normalize` need no TensorFlow.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")
DEFAULT_INTERPOLATION = "bicubic"


def check_interpolation(interpolation: str) -> str:
    """`interpolation` if `tf.image.resize` knows it, else a `ValueError` listing the methods."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"Unknown `interpolation`={interpolation!r}. Use one of {INTERPOLATIONS}.")
    return interpolation


def center_crop(images, image_size, crop_pct: float = 0.875, interpolation: str = DEFAULT_INTERPOLATION):
    """Evaluation resize and centre crop of (H, W, C) or (B, H, W, C) images with values 0..255, as timm's
    `transforms_imagenet_eval` (Resize(floor(size / crop_pct)) then CenterCrop(size), torchvision's rounding).

    The shorter side becomes floor(max(image_size) / crop_pct), the longer side keeps the aspect ratio (floored),
    then the centre `image_size` is cut out (offset rounded half to even, as torchvision). TensorFlow ops only,
    so it runs eagerly and inside `tf.data.Dataset.map`.

    Args:
        images: (H, W, C) or (B, H, W, C) array or tensor, values 0..255.
        image_size: int or (int, int). Output height and width.
        crop_pct: float in (0, 1]. Fraction of the resized shorter side that is kept. Defaults to 0.875.
        interpolation: str. A `tf.image.resize` method (`INTERPOLATIONS`). Defaults to "bicubic".

    Returns:
        float32 images of `image_size`, clipped to 0..255 (bicubic overshoot).

    >>> center_crop(np.full((40, 60, 3), 255, np.uint8), 32).shape  # resized to 36x54, centre 32x32
    TensorShape([32, 32, 3])
    """
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(f"`image_size` must be a positive int or (height, width), got {image_size!r}.")
    check_crop_pct(crop_pct)
    check_interpolation(interpolation)
    import tensorflow as tf  # here, not at the top: see the module docstring

    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    if images.shape.rank not in (None, 3, 4):
        raise ValueError(f"`images` must be (H, W, C) or (B, H, W, C), got shape {tuple(images.shape)}.")
    hw = tf.shape(images)[-3:-1]
    resized = (math.floor(max(size) / crop_pct) * hw) // tf.reduce_min(hw)  # the shorter side exactly, as timm
    images = tf.image.resize(images, resized, method=interpolation)
    diff = resized - tf.constant(size, tf.int32)  # >= 0 since crop_pct <= 1
    half = diff // 2
    top, left = tf.unstack(half + (diff % 2) * (half % 2))  # round(diff / 2) half to even, as torchvision
    images = tf.image.crop_to_bounding_box(images, top, left, size[0], size[1])
    return tf.clip_by_value(images, 0.0, 255.0)


def check_crop_pct(crop_pct) -> float:
    if isinstance(crop_pct, bool) or not isinstance(crop_pct, (int, float)) or not 0.0 < crop_pct <= 1.0:
        raise ValueError(f"`crop_pct` must be a float in (0, 1], got {crop_pct!r}. Pass e.g. crop_pct=0.875.")
    return float(crop_pct)


def _channels(name: str, values) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a sequence of numbers (one per channel), got {values!r}.") from None
    if not values or not all(map(math.isfinite, values)):
        raise ValueError(f"`{name}` must be one finite number per channel, got {values!r}.")
    return values


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """A model's evaluation preprocessing: `center_crop` with `crop_pct` / `interpolation`, then
    `(x / 255 - mean) / std` per channel.

    Args:
        mean: per-channel mean on 0..1 pixels. Defaults to (0.5, 0.5, 0.5) (the official Mixer weights).
        std: per-channel std (> 0) on 0..1 pixels. Defaults to (0.5, 0.5, 0.5).
        crop_pct: fraction of the resized shorter side kept by the centre crop. Defaults to 0.875.
        interpolation: resize method (`INTERPOLATIONS`). Defaults to "bicubic".

    >>> p = Preprocessing(IMAGENET_MEAN, IMAGENET_STD)
    >>> Preprocessing.from_config(p.get_config()) == p, p.channels
    (True, 3)
    """

    mean: tuple[float, ...] = HALF
    std: tuple[float, ...] = HALF
    crop_pct: float = 0.875
    interpolation: str = DEFAULT_INTERPOLATION

    def __post_init__(self):
        mean, std = _channels("mean", self.mean), _channels("std", self.std)
        if len(mean) != len(std):
            raise ValueError(f"`mean` and `std` need one value per channel each, got {len(mean)} and {len(std)}.")
        if any(v <= 0 for v in std):
            raise ValueError(f"`std` must be > 0 per channel (pixels are divided by it), got {std}.")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "crop_pct", check_crop_pct(self.crop_pct))
        check_interpolation(self.interpolation)

    @property
    def channels(self) -> int:
        return len(self.mean)

    def normalize(self, images):
        """`(images / 255 - mean) / std` of 0..255 float pixels, channels last: a NumPy array, a tensor of any Keras
        backend or a `tf.data` tensor (float32 constants, so float32 pixels stay float32).

        >>> Preprocessing().normalize(np.array([[0.0, 127.5, 255.0]], np.float32)).tolist()
        [[-1.0, 0.0, 1.0]]
        """
        return (images / np.float32(255.0) - np.float32(self.mean)) / np.float32(self.std)

    def __call__(self, images, image_size):
        """Evaluation preprocessing of (H, W, C) or (B, H, W, C) images with values 0..255 (timm's eval transform).

        >>> Preprocessing()(np.full((40, 60, 3), 255, np.uint8), 32).shape
        TensorShape([32, 32, 3])
        """
        channels = (images.shape if hasattr(images, "shape") else np.shape(images))[-1]
        if channels != self.channels:
            raise ValueError(f"Preprocessing normalises {self.channels}-channel images, got {channels} channels. "
                             "Convert the images to RGB, or normalise them yourself with your own mean/std.")
        return self.normalize(center_crop(images, image_size, self.crop_pct, self.interpolation))

    def get_config(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "crop_pct": self.crop_pct,
                "interpolation": self.interpolation}

    @classmethod
    def from_config(cls, config: dict | Preprocessing | None) -> Preprocessing | None:
        """A `Preprocessing` from its config dict (or itself; None stays None); unknown keys are an error."""
        if config is None or isinstance(config, Preprocessing):
            return config
        if not isinstance(config, dict):
            raise ValueError(f"`preprocessing` must be a Preprocessing or its config dict, got {config!r}.")
        unknown = sorted(set(config) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"Unknown preprocessing key(s) {unknown}: use mean, std, crop_pct, interpolation.")
        return cls(**config)
