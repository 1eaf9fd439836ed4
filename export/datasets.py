"""What an export reads: the saved Keras model, and its data from `keras_mlp.data` — the train split (calibration,
QAT) and the held-out split (the parity gate), both in the model's own evaluation preprocessing and both shuffled
with a fixed seed, so that the samples taken from the front (calibration, QAT, `--num-eval`) cover every class and
are the same on every call."""
from __future__ import annotations

import os

from export.errors import ExportError
from keras_mlp.backend import keras
from keras_mlp.data import dataset_info, load_dataset
from keras_mlp.preprocessing import Preprocessing


def load_model(path: str):
    """The Keras model at `path` (keras_mlp classes registered), or `ExportError` naming the problem."""
    if not os.path.isfile(path):
        raise ExportError(f"Model file {path!r} does not exist. Pass the path of a saved .keras model.")
    if not path.endswith(".keras"):
        raise ExportError(f"{path!r} is not a .keras file. Save the model with model.save('model.keras').")
    try:
        return keras.saving.load_model(path)
    except Exception as err:  # corrupt zip, missing config, unknown class
        raise ExportError(f"Cannot load {path!r} as a Keras model ({type(err).__name__}: {err}). Is the file "
                          "complete? Re-save it with model.save('model.keras').") from err


def load_splits(dataset: str, preprocessing: Preprocessing, image_size, *, data_dir: str | None = None,
                batch_size: int = 256):
    """(train, test, class_names) of `dataset` ("digits", an image folder or a tfds name), else `ExportError`."""
    try:
        info = dataset_info(dataset, data_dir=data_dir)
        load = dict(preprocessing=preprocessing, image_size=tuple(int(s) for s in image_size), batch_size=batch_size,
                    data_dir=data_dir, shuffle=True)
        return load_dataset(dataset, "train", **load), load_dataset(dataset, "test", **load), list(info.class_names)
    except (ValueError, OSError) as err:
        raise ExportError(f"Cannot load dataset {dataset!r}: {err}") from err
