"""Evaluation of a classifier on a dataset split, as timm's `validate.py`: a registry model or preset, a `.keras`
file, or a `.tflite` file of any export mode (run through `ai_edge_litert` with the preprocessing of its sidecar).

`load_classifier(source)` gives a `Classifier` (a predict function on normalised images, its preprocessing, input
size and class names); `evaluate(classifier, dataset)` gives top-1/top-5, cross-entropy, images/s and per-class
accuracy; `classify_files(classifier, paths)` the top-5 classes of single images.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

import keras_mlp
from export import litert
from keras_mlp.preprocessing import Preprocessing


class EvaluationError(ValueError):
    """Bad input to the evaluation (unreadable file, class or size mismatch); the message says the fix."""


@dataclasses.dataclass
class Classifier:
    """A model to evaluate: `predict(images) -> logits` on images normalised by `preprocessing`."""

    name: str
    kind: str  # "keras" or "tflite"
    predict: Callable[[np.ndarray], np.ndarray]
    preprocessing: Preprocessing
    image_size: tuple[int, int]
    class_names: tuple[str, ...] | None
    num_classes: int


def _keras_classifier(model: keras.Model, name: str) -> Classifier:
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise EvaluationError(f"{name} is not a classifier with one (batch, classes) output. Evaluate a model with "
                              "its head (include_top=True).")
    predict = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), reduce_retracing=True)
    preprocessing = getattr(model, "preprocessing", None)
    if preprocessing is None:
        raise EvaluationError(f"{name} records no preprocessing (not a keras_mlp model). Save it from a keras_mlp "
                              "model, or pass --mean and --std.")
    size = tuple(int(s) for s in model.inputs[0].shape[1:3])
    return Classifier(name, "keras", lambda x: predict(x).numpy(), preprocessing, size,
                      getattr(model, "class_names", None), int(model.outputs[0].shape[-1]))


def _tflite_classifier(path: str) -> Classifier:
    sidecar = path[: -len(".tflite")] + ".json"
    try:
        with open(sidecar) as f:
            info = json.load(f)
        norm = info["input"]["normalization"]
        size = tuple(int(s) for s in info["input"]["image_size"])
        labels = tuple(info["labels"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise EvaluationError(f"{path} has no readable sidecar {sidecar} ({type(err).__name__}: {err}); its "
                              "preprocessing and labels come from there. Evaluate a file written by "
                              "keras-mlp-export (the .tflite with its .json beside it).") from err
    with open(path, "rb") as f:
        flatbuffer = f.read()
    # The model's own crop and resize, recorded whole in the sidecar (the exporter's `input.preprocessing`).
    recorded = info["input"].get("preprocessing") or {}
    # A raw-pixel file (`raw_pixels`) takes 0..255 as they are: a normalisation that leaves them unchanged.
    mean, std = ((0.0,) * len(norm["mean"]), (1 / 255,) * len(norm["std"])) if info["input"].get("raw_pixels") \
        else (norm["mean"], norm["std"])
    preprocessing = Preprocessing(mean, std, recorded.get("crop_pct", 0.875), recorded.get("interpolation", "bicubic"))
    return Classifier(os.path.basename(path), "tflite", lambda x: litert.run(flatbuffer, x), preprocessing, size,
                      labels, len(labels))


def load_classifier(source: str, *, image_size: int | None = None, crop_pct: float | None = None,
                    interpolation: str | None = None) -> Classifier:
    """A `Classifier` from a `.tflite` file (with its sidecar), a `.keras` file, or a registry name / preset
    (`keras_mlp.create_model(source)`); `image_size` resizes a Keras model (`keras_mlp.resize`), `crop_pct` and
    `interpolation` replace its preprocessing's (as timm's validate.py options)."""
    if source.endswith(".tflite"):
        if not os.path.isfile(source):
            raise EvaluationError(f"TFLite file {source!r} does not exist.")
        classifier = _tflite_classifier(source)
        if image_size is not None and (image_size, image_size) != classifier.image_size:
            raise EvaluationError(f"{source} takes {classifier.image_size[0]}x{classifier.image_size[1]} images; "
                                  f"--image-size {image_size} needs a re-export at that size.")
    else:
        if source.endswith(".keras"):
            if not os.path.isfile(source):
                raise EvaluationError(f"Model file {source!r} does not exist.")
            try:
                model = keras.saving.load_model(source)
            except Exception as err:  # corrupt zip, missing config, unknown class
                raise EvaluationError(f"Cannot load {source!r} as a Keras model ({type(err).__name__}: {err}).") \
                    from err
        else:
            try:
                model = keras_mlp.create_model(source)
            except (ValueError, TypeError, OSError) as err:
                raise EvaluationError(str(err)) from err
        if image_size is not None and (image_size, image_size) != tuple(model.inputs[0].shape[1:3]):
            if not isinstance(model, keras_mlp.MLPTrunk):
                raise EvaluationError(f"--image-size resizes keras_mlp models only; {source} is a {type(model)}.")
            model = keras_mlp.resize(model, image_size)
        classifier = _keras_classifier(model, os.path.basename(source))
    if crop_pct is not None or interpolation is not None:
        pre = classifier.preprocessing
        classifier.preprocessing = dataclasses.replace(pre, crop_pct=pre.crop_pct if crop_pct is None else crop_pct,
                                                       interpolation=interpolation or pre.interpolation)
    return classifier


def check_labels(classifier: Classifier, class_names: Sequence[str]) -> None:
    """The dataset's classes must be the model's: same count, and the same names in the same order when known."""
    if len(class_names) != classifier.num_classes:
        raise EvaluationError(f"{classifier.name} has {classifier.num_classes} classes but the dataset has "
                              f"{len(class_names)}. Evaluate on the dataset the model was trained on.")
    if classifier.class_names is not None and tuple(classifier.class_names) != tuple(class_names):
        first = next(i for i, (a, b) in enumerate(zip(classifier.class_names, class_names)) if a != b)
        raise EvaluationError(f"{classifier.name}'s class {first} is {classifier.class_names[first]!r} but the "
                              f"dataset's is {class_names[first]!r}: the label lists differ. Evaluate on the dataset "
                              "the model was trained on (same class folders).")


def evaluate(classifier: Classifier, batches: Iterable, class_names: Sequence[str], *,
             progress: Callable[[int], None] | None = None) -> dict:
    """Top-1/top-5 accuracy, mean cross-entropy, images/s (model time only) and per-class accuracy over
    `batches` of (normalised images, int labels)."""
    k = min(5, classifier.num_classes)
    correct = np.zeros(classifier.num_classes, np.int64)
    seen = np.zeros(classifier.num_classes, np.int64)
    top5 = 0
    loss = seconds = 0.0
    for images, labels in batches:
        images, labels = np.asarray(images, np.float32), np.asarray(labels).reshape(-1).astype(np.int64)
        start = time.perf_counter()
        logits = np.asarray(classifier.predict(images), np.float64)
        seconds += time.perf_counter() - start
        shifted = logits - logits.max(1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        loss += float(-log_probs[np.arange(len(labels)), labels].sum())
        ranked = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        np.add.at(seen, labels, 1)
        np.add.at(correct, labels, (ranked[:, 0] == labels).astype(np.int64))
        top5 += int((ranked == labels[:, None]).any(1).sum())
        if progress:
            progress(len(labels))
    total = int(seen.sum())
    if total == 0:
        raise EvaluationError("The evaluation split is empty.")
    return {"model": classifier.name, "kind": classifier.kind, "examples": total,
            "top1": float(correct.sum() / total), f"top{k}": top5 / total, "loss": loss / total,
            "images_per_second": total / seconds if seconds else None,
            "per_class": {name: (float(correct[i] / seen[i]) if seen[i] else None)
                          for i, name in enumerate(class_names)}}


def classify_files(classifier: Classifier, paths: Sequence[str], top: int = 5) -> list[dict]:
    """The `top` classes (name, probability) of each image file, preprocessed as the classifier's own."""
    names = classifier.class_names or tuple(str(i) for i in range(classifier.num_classes))
    out = []
    for path in paths:
        try:
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except (tf.errors.OpError, ValueError) as err:
            raise EvaluationError(f"{path} is not a readable image ({type(err).__name__}). Pass JPEG, PNG, GIF, BMP "
                                  "or WebP files.") from err
        x = classifier.preprocessing(image, classifier.image_size).numpy()[None]
        logits = np.asarray(classifier.predict(x), np.float64)[0]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = np.argsort(-probs, kind="stable")[:top]
        out.append({"file": path, "top": [{"class": names[i], "index": int(i), "probability": float(probs[i])}
                                          for i in best]})
    return out
