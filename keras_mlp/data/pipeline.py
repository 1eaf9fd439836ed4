"""Batches for training, export and evaluation: a `tf.data` pipeline over `keras_mlp.data.sources` (never inside
the model): decode, resize (or random-resized crop), augmentation (`keras_mlp.data.augment`), the model's
normalisation (`keras_mlp.Preprocessing.normalize`), batching, prefetch. Training order and augmentation are
functions of (seed, epoch, position), so a resumed run sees the same batches.
"""
from __future__ import annotations

import tensorflow as tf

from keras_mlp.data.augment import Augmenter, element_seed, random_resized_crop
from keras_mlp.data.sources import source
from keras_mlp.preprocessing import Preprocessing, center_crop


def build_pipeline(name: str, split: str, *, preprocessing: Preprocessing, image_size, batch_size: int,
                   augmenter: Augmenter | None = None, seed: int = 0, epoch: int = 0, num_epochs: int = 1,
                   skip_batches: int = 0, shuffle: bool = False, drop_remainder: bool = False, one_hot: int = 0,
                   num_shards: int = 1, shard_index: int = 0, data_dir=None, download: bool = False) -> tf.data.Dataset:
    """Batches of epochs `epoch`..`epoch + num_epochs - 1`, skipping the first `skip_batches`.

    Natural images are random-resized-cropped when the augmenter says so, else centre-cropped as `preprocessing`
    says (its `crop_pct` and `interpolation`), and every image is normalised by `preprocessing.normalize`.

    Order and augmentation depend only on (seed, epoch, position), so the batches after a skip are the same
    whether or not the epoch was started before. `one_hot` > 0 yields one-hot labels of that many classes
    (mixed by MixUp/CutMix when the augmenter has them). `num_shards`/`shard_index` split the examples
    between input pipelines (multi-worker); `batch_size` is then this pipeline's batch.
    """
    size = tuple(int(s) for s in image_size)
    examples, decode, kind, cacheable = source(name, split, size, data_dir, download)
    if cacheable:
        examples = examples.cache()
    count = int(examples.cardinality()) if int(examples.cardinality()) > 0 else 10_000
    buffer = count if decode is not None else min(count, 50_000)  # file names: shuffle them all
    method = preprocessing.interpolation

    def one_epoch(epoch):
        ds = examples
        if shuffle:
            shuffle_seed = (seed * 1_000_003 + epoch * 7_919 + 12_345) % 2**31
            ds = ds.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
        if num_shards > 1:
            ds = ds.shard(num_shards, shard_index)
        if decode is not None:
            ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

        def prepare(index, example):
            image, label = example
            index = index * num_shards + shard_index  # position in the epoch, whatever the sharding
            if kind == "natural":
                if augmenter is not None and augmenter.kind == "natural":
                    image = random_resized_crop(image, size, element_seed(seed, epoch, -index - 1), method=method)
                else:
                    image = center_crop(image, size, preprocessing.crop_pct, method)
                image = tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), (*size, 3))
            if augmenter is not None:
                image = augmenter.example(image, element_seed(seed, epoch, index))
            return image, label

        ds = ds.enumerate().map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)

        def finish(index, batch):
            images, labels = batch
            if one_hot:
                labels = tf.one_hot(labels, one_hot)
                if augmenter is not None and augmenter.mixes:
                    batch_seed = element_seed(seed, epoch, -(2**40) - index * num_shards - shard_index)
                    images, labels = augmenter.batch(images, labels, batch_seed)
            return preprocessing.normalize(images), labels

        return ds.enumerate().map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    ds = one_epoch(epoch)  # python-level epochs: tf.data shuffle seeds must be Python ints
    for later in range(epoch + 1, epoch + num_epochs):
        ds = ds.concatenate(one_epoch(later))
    if skip_batches:
        ds = ds.skip(skip_batches)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def load_dataset(name: str, split: str, *, preprocessing: Preprocessing, image_size, batch_size: int,
                 shuffle: bool | None = None, data_dir: str | None = None) -> tf.data.Dataset:
    """Batches of (images float32 NHWC normalised by `preprocessing`, labels int32) of `split`, without
    augmentation: natural images centre-cropped as `preprocessing` says (pass the model's, `model.preprocessing`).
    `shuffle` (default: `split == "train"`) uses a fixed seed, so the order is the same on every call; samples
    taken from the front then cover every class.

    >>> from keras_mlp.preprocessing import Preprocessing
    >>> ds = load_dataset("digits", "test", preprocessing=Preprocessing(), image_size=(16, 16), batch_size=360)
    >>> images, labels = next(iter(ds))
    >>> images.shape, labels.dtype.name, float(images.numpy().min())
    (TensorShape([360, 16, 16, 3]), 'int32', -1.0)
    """
    return build_pipeline(name, split, preprocessing=preprocessing, image_size=image_size, batch_size=batch_size,
                          shuffle=split == "train" if shuffle is None else shuffle, data_dir=data_dir)
