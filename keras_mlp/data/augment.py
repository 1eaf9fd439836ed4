"""Data augmentation with Keras 3's preprocessing layers, made reproducible per example.

Keras layers draw randomness from a stateful `SeedGenerator`, so their output depends on how many elements
were processed before (parallel `map`, resumed runs). `StatelessSeed` stands in for that generator with a
seed tensor built from (run seed, epoch, example index): the same example in the same epoch gets the same
augmentation, whatever the order of evaluation — what `--deterministic` resume needs.

Recipes: light affine jitter for digits (RandomTranslation + RandomZoom); random-resized crop
(`tf.image.stateless_sample_distorted_bounding_box`, Inception/DeiT), RandomFlip and RandAugment
(Cubuk et al. 2020, arXiv:1909.13719) for natural images; MixUp (Zhang et al. 2018) / CutMix (Yun et al. 2019)
on batches.
"""
from __future__ import annotations

import keras
import tensorflow as tf


class StatelessSeed(keras.random.SeedGenerator):
    """A `SeedGenerator` without state: draw k returns fold_in(seed, k) (k counted at trace time)."""

    def __init__(self, seed: tf.Tensor):  # no super().__init__: it would create a variable inside tf.data
        self.seed = tf.cast(seed, tf.int64)
        self.count = 0
        self.name = "stateless_seed"
        self.backend = keras.backend

    def next(self, ordered: bool = True) -> tf.Tensor:
        self.count += 1
        return tf.random.experimental.stateless_fold_in(self.seed, self.count)


def apply_seeded(layer: keras.layers.Layer, data, seed: tf.Tensor):
    """Run a Keras random preprocessing layer with randomness taken from `seed` only."""
    saved = layer.generator
    object.__setattr__(layer, "generator", StatelessSeed(seed))  # bypass Keras state tracking
    try:
        return layer(data, training=True)
    finally:
        object.__setattr__(layer, "generator", saved)


def element_seed(seed: int, epoch, index) -> tf.Tensor:
    """The [2] int64 seed of example `index` in `epoch` of a run seeded with `seed`."""
    base = tf.constant([seed, 0x5EED], tf.int64)
    return tf.random.experimental.stateless_fold_in(
        tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64)), tf.cast(index, tf.int64))


def random_resized_crop(image: tf.Tensor, size: tuple[int, int], seed: tf.Tensor,
                        scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), method: str = "bicubic") -> tf.Tensor:
    """Inception-style random-resized crop of one HWC image to `size` (stateless)."""
    begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.zeros([1, 0, 4]), seed=seed, min_object_covered=0.0,
        aspect_ratio_range=ratio, area_range=scale, max_attempts=10, use_image_if_no_bounding_boxes=True)
    image = tf.slice(image, begin, crop)
    return tf.image.resize(image, size, method=method)


class Augmenter:
    """Per-example and per-batch training augmentation, configured by name.

    Args:
        kind: "digits" (affine jitter), "natural" (random-resized crop + flip) or "none".
        rand_augment: tuple (num_ops, magnitude) or None. Keras `RandAugment` after the crop (natural only).
        mixup_alpha, cutmix_alpha: float. Batch-level MixUp / CutMix (one of them per batch, 50/50 when both).
        jitter: float. Translation / zoom factor of the digits jitter.
    """

    def __init__(self, kind: str = "none", rand_augment=None, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0,
                 jitter: float = 0.1):
        if kind not in ("digits", "natural", "none"):
            raise ValueError(f"Unknown augmentation {kind!r}; use 'digits', 'natural' or 'none'.")
        self.kind = kind
        f32 = {"dtype": "float32"}  # augment in float32 whatever the mixed-precision policy
        self.layers = []
        if kind == "digits" and jitter > 0:
            self.layers = [keras.layers.RandomTranslation(jitter, jitter, fill_mode="constant", **f32),
                           keras.layers.RandomZoom(jitter, fill_mode="constant", **f32)]
        elif kind == "natural":
            self.layers = [keras.layers.RandomFlip("horizontal", **f32)]
            if rand_augment:
                num_ops, magnitude = rand_augment
                self.layers.append(keras.layers.RandAugment(value_range=(0, 255), num_ops=int(num_ops),
                                                            factor=float(magnitude) / 10.0, **f32))
        self.mixup = keras.layers.MixUp(alpha=mixup_alpha, **f32) if mixup_alpha > 0 else None
        self.cutmix = keras.layers.CutMix(factor=cutmix_alpha, **f32) if cutmix_alpha > 0 else None

    @property
    def mixes(self) -> bool:
        return self.mixup is not None or self.cutmix is not None

    def example(self, image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Augment one HWC float image in [0, 255]."""
        for i, layer in enumerate(self.layers):
            image = apply_seeded(layer, image, tf.random.experimental.stateless_fold_in(seed, 100 + i))
        return image

    def batch(self, images: tf.Tensor, one_hot: tf.Tensor, seed: tf.Tensor):
        """MixUp or CutMix a batch (images in [0, 255], one-hot labels); returns (images, soft labels)."""
        if not self.mixes:
            return images, one_hot
        layers = [layer for layer in (self.mixup, self.cutmix) if layer is not None]
        if len(layers) == 1:
            out = apply_seeded(layers[0], {"images": images, "labels": one_hot}, seed)
            return out["images"], out["labels"]
        pick = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, 7)) < 0.5
        outs = [apply_seeded(layer, {"images": images, "labels": one_hot}, seed) for layer in layers]
        return (tf.where(pick, outs[0]["images"], outs[1]["images"]),
                tf.where(pick, outs[0]["labels"], outs[1]["labels"]))
