"""Dataset sources for training, export and evaluation: tfds by name, local image folders, the embedded `digits`.

`digits` is scikit-learn's bundled copy of the UCI handwritten digits (1,797 8x8 images, values 0..16), so
the main job needs no network. It is served as 3-channel RGB (grey replicated, scaled to 0..255) with a fixed
stratified 80/20 split: `train_test_split(range(1797), test_size=0.2, stratify=y, random_state=0)`
(1,437 train / 360 test images).

`source(name, split, image_size, ...)` gives the raw examples; `keras_mlp.data.pipeline` turns them into batches.
"""
from __future__ import annotations

import dataclasses
import glob
import os

import numpy as np
import tensorflow as tf

DIGITS_SPLIT_SEED = 0
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")  # what tf.io.decode_image reads
# Image files tf.io.decode_image cannot read: refused by name rather than skipped (other files are ignored).
UNREADABLE_EXTENSIONS = (".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".heic", ".heif", ".avif", ".ico", ".svg")
KNOWN_TFDS = ("cifar10", "cifar100", "imagenette", "oxford_flowers102", "imagenet2012")
_TEST_SPLITS = ("test", "validation", "val")


class DataUnavailableError(ValueError):
    """The dataset is not on this machine and downloading was not allowed."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and a client need to know about a dataset."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    num_train: int
    num_test: int


# === digits ===
def _digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=DIGITS_SPLIT_SEED)
    idx = train if split == "train" else test
    images = np.repeat((x[idx].reshape(-1, 8, 8, 1) * (255.0 / 16.0)).astype("float32"), 3, axis=-1)
    return images, y[idx].astype("int32")


# === image folders ===
def _folder_files(root: str, split: str) -> tuple[list[str], list[int], tuple[str, ...]]:
    """Files and labels of `root/<class>/*` (stratified 80/20 split, seed 0) or `root/<split>/<class>/*`."""
    from sklearn.model_selection import train_test_split

    split_dirs = {s: os.path.join(root, s) for s in ("train", *_TEST_SPLITS) if os.path.isdir(os.path.join(root, s))}
    base = split_dirs.get("train", root)
    classes = tuple(sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))))
    if len(classes) < 2:
        found = f"one class folder, {os.path.join(base, classes[0])}/" if classes else "no class sub-folders"
        raise ValueError(f"Image folder {base!r} has {found}; a classifier needs at least 2 classes. Lay it out as "
                         "root/<class>/*.jpg or root/{train,test}/<class>/*.jpg with a folder per class.")

    def listing(folder):
        present = {d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))}
        if present != set(classes):
            missing, extra = sorted(set(classes) - present), sorted(present - set(classes))
            fix = f"add {os.path.join(folder, missing[0])}/" if missing else f"remove {os.path.join(folder, extra[0])}/"
            raise ValueError(f"Image folder {folder!r} must hold the class folders of {base!r} ({', '.join(classes)})"
                             + (f"; missing: {', '.join(missing)}" if missing else "")
                             + (f"; not in {base!r}: {', '.join(extra)}" if extra else "")
                             + f". Give every split the same class folders (e.g. {fix}), or use the root/<class>/ "
                             "layout (stratified 80/20 split).")
        files, labels = [], []
        for label, cls in enumerate(classes):
            entries = sorted(os.listdir(os.path.join(folder, cls)))
            unreadable = [f for f in entries if f.lower().endswith(UNREADABLE_EXTENSIONS)]
            if unreadable:
                more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
                raise ValueError(f"{os.path.join(folder, cls, unreadable[0])}{more} are in a format tf.io.decode_image "
                                 f"cannot read. Convert them to one of {', '.join(IMAGE_EXTENSIONS)}, or move them "
                                 "out of the folder.")
            names = [f for f in entries if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")]
            if not names:
                found = f"found {', '.join(entries[:3])}{', ...' if len(entries) > 3 else ''}" if entries else "empty"
                raise ValueError(f"Class folder {os.path.join(folder, cls)!r} holds no images ({found}). Add "
                                 f"{', '.join(IMAGE_EXTENSIONS)} files, or remove the folder.")
            files += [os.path.join(folder, cls, f) for f in names]
            labels += [label] * len(names)
        return files, labels

    if "train" in split_dirs:
        test_dir = next((split_dirs[s] for s in _TEST_SPLITS if s in split_dirs), None)
        if split != "train" and test_dir is None:
            raise ValueError(f"Image folder {root!r} has train/ but no test/ or val/ folder.")
        return (*listing(split_dirs["train"] if split == "train" else test_dir), classes)
    files, labels = listing(root)
    counts = np.bincount(labels, minlength=len(classes))
    if counts.min() < 2:
        small = os.path.join(root, classes[int(counts.argmin())])
        raise ValueError(f"Class folder {small!r} holds {counts.min()} image; the 80/20 split of the root/<class>/ "
                         "layout needs at least 2 images per class. Add images, or lay it out as "
                         "root/{train,test}/<class>/.")
    train, test = train_test_split(np.arange(len(files)), test_size=0.2, stratify=labels, random_state=0)
    idx = train if split == "train" else test
    return [files[i] for i in idx], [labels[i] for i in idx], classes


def _image_format(head: bytes) -> str | None:
    """The format of a file starting with `head` (its first 12 bytes), if tf.io.decode_image reads it."""
    for magic, name in ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"),
                        (b"GIF89a", "GIF"), (b"BM", "BMP")):
        if head.startswith(magic):
            return name
    return "WebP" if head[:4] == b"RIFF" and head[8:12] == b"WEBP" else None


def check_images(files: list[str]) -> None:
    """Refuse, by name, the first file that is not a JPEG, PNG, GIF, BMP or WebP image (its first bytes only)."""
    for path in files:
        with open(path, "rb") as f:
            head = f.read(12)
        if _image_format(head) is None:
            found = f"it starts with {head[:8]!r}" if head else "it is empty"
            raise ValueError(f"{path} is not a JPEG, PNG, GIF, BMP or WebP image ({found}). Replace it with a valid "
                             "image or move it out of the folder.")


def _decode(path):
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


# === tfds ===
def _tfds_dir(data_dir: str | None) -> str:
    return os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def _tfds_builder(name: str, data_dir: str | None, download: bool):
    """The prepared tfds builder of `name`; fails fast (no network) when it is not prepared and not downloading.

    A module tfds needs but cannot import, and a failed download, are `DataUnavailableError`s saying so.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise _tfds_import_error(err) from err

    base = name.split("/")[0].split(":")[0]
    if base not in tfds.list_builders(with_community_datasets=False):
        raise ValueError(f"Unknown dataset {name!r}. Choose 'digits', an image folder path, or a tfds "
                         f"image-classification dataset, e.g. {', '.join(KNOWN_TFDS)}.")
    root = _tfds_dir(data_dir)
    prepared = glob.glob(os.path.join(root, base, "**", "dataset_info.json"), recursive=True)
    if not prepared and not download:
        manual = " (imagenet2012 needs its tar files in <data_dir>/downloads/manual/)" if base == "imagenet2012" else ""
        raise DataUnavailableError(
            f"Dataset {name!r} is not prepared under {root}. Pass --download (download=True) to fetch it with "
            f"tfds{manual}, or --data-dir pointing at a prepared tensorflow_datasets directory, or use the "
            "offline dataset 'digits'.")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
    except ImportError as err:  # tfds imports some modules lazily, on first use
        raise _tfds_import_error(err) from err
    except OSError as err:  # requests' ConnectionError and HTTPError are OSErrors
        raise DataUnavailableError(
            f"Downloading {name!r} into {root} failed ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
            "Check the network and run again (tfds resumes), or prepare the dataset on a machine with access and "
            "pass --data-dir pointing at it.") from err
    return builder


def _tfds_import_error(err: ImportError) -> DataUnavailableError:
    missing = getattr(err, "name", None)
    fix = f"pip install {missing.split('.')[0]}" if missing else "pip install -U tensorflow-datasets"
    return DataUnavailableError(f"tensorflow_datasets cannot run here ({type(err).__name__}: {err}). Install what "
                                f"it needs ({fix}, or reinstall keras-mlp: pip install -e .), or use 'digits' or an "
                                "image folder.")


def _tfds_split(builder, split: str) -> str:
    splits = builder.info.splits
    if split == "train":
        return "train"
    for candidate in _TEST_SPLITS:
        if candidate in splits:
            return candidate
    raise ValueError(f"Dataset {builder.name!r} has no test/validation split (has {sorted(splits)}).")


def dataset_info(name: str, *, data_dir: str | None = None, download: bool = False) -> DatasetInfo:
    """Classes and split sizes of `name` ("digits", an image folder, or a prepared tfds dataset).

    An image folder's files are checked here (first bytes only), so a file that is not an image is named before
    anything is trained or written.
    """
    if name == "digits":
        return DatasetInfo("digits", 10, tuple(str(i) for i in range(10)), 1437, 360)
    if os.path.isdir(name):
        train, _, classes = _folder_files(name, "train")
        test, _, _ = _folder_files(name, "test")
        check_images(train + test)
        return DatasetInfo(os.path.basename(os.path.normpath(name)), len(classes), classes, len(train), len(test))
    builder = _tfds_builder(name, data_dir, download)
    label = builder.info.features["label"]
    return DatasetInfo(name, label.num_classes, tuple(label.names), builder.info.splits["train"].num_examples,
                       builder.info.splits[_tfds_split(builder, "test")].num_examples)


def source(name: str, split: str, image_size: tuple[int, int], data_dir=None, download: bool = False):
    """(dataset, decode, kind, cacheable): `decode` (or None) maps its elements, after shuffling and sharding, to
    (image float32 [0, 255] HWC, label int32) before augmentation.

    Digits are resized here (cheap, cacheable); natural images stay at their size for the crop. Image folders
    yield (file name, label) until `decode`, so their shuffle buffer holds names, not images.
    """
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r}; use 'train' or 'test'.")
    if name == "digits":
        images, labels = _digits_arrays(split)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        return ds.map(lambda x, y: (tf.image.resize(x, image_size, method="bilinear"), y)), None, "digits", True
    if os.path.isdir(name):
        files, labels, _ = _folder_files(name, split)
        ds = tf.data.Dataset.from_tensor_slices((files, np.asarray(labels, "int32")))
        return ds, lambda f, y: (tf.cast(_decode(f), tf.float32), y), "natural", False
    builder = _tfds_builder(name, data_dir, download)
    ds = builder.as_dataset(split=_tfds_split(builder, split), as_supervised=True, shuffle_files=False)
    shape = builder.info.features["image"].shape
    small = None not in shape and np.prod(shape) * builder.info.splits["train"].num_examples <= 2e8
    return ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.int32))), None, "natural", small
