"""Raw-pixel input: full-integer files that take uint8 0..255 pixels, the normalisation folded into the graph.

MediaPipe Tasks' ImageClassifier normalises float inputs only: a uint8 input gets the raw 0..255 pixels
(`mediapipe/tasks/cc/components/processors/image_preprocessing_graph.cc`, `output_tensor_uint_range` 0..255),
and an int8 input is refused (`vision/utils/image_tensor_specs.cc`: uint8 or float32). So the raw-pixel modes
wrap the classifier at export time, never the user's model: `PixelNormalization` pins the input range to 0..255
(a FakeQuant, so the converter sets the uint8 input to scale 1, zero point 0 whatever range the calibration
images happen to cover; measured without it: scale 0.937 for images up to 239, so 255 would read as 239) and
applies `(pixel / 255 - mean) / std` as one multiply-add, which the converter quantises with the rest.

The modes quantise as their base mode (`int8` post-training, `qat` quantisation-aware) with uint8 input and
float32 logits out: MediaPipe takes a uint8 or float32 output (`classification_postprocessing_graph.cc`), and
float32 leaves the logits unrounded (no ties on an 8-bit output grid) for one DEQUANTIZE of `classes` values.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_mlp.backend import keras, serializable

PIXEL_RANGE = (0.0, 255.0)


@serializable
class PixelNormalization(keras.layers.Layer):
    """Raw 0..255 pixels → `(pixel / 255 - mean) / std`, the input range pinned to 8-bit pixels.

    Args:
        mean: sequence of float. Per-channel mean on 0..1 pixels.
        std: sequence of float. Per-channel std (> 0) on 0..1 pixels.
    """

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]

    def call(self, pixels):
        pixels = tf.quantization.fake_quant_with_min_max_args(pixels, min=PIXEL_RANGE[0], max=PIXEL_RANGE[1],
                                                              num_bits=8)
        scale = tf.constant([1.0 / (255.0 * s) for s in self.std], pixels.dtype)
        offset = tf.constant([-m / s for m, s in zip(self.mean, self.std)], pixels.dtype)
        return pixels * scale + offset

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


def pixel_model(model, mean, std):
    """`model` behind `PixelNormalization`: a new Keras model taking raw pixels (`model` is shared, not copied)."""
    pixels = keras.Input(tuple(model.inputs[0].shape[1:]), name="images")
    return keras.Model(pixels, model(PixelNormalization(mean, std, name="pixel_normalization")(pixels)),
                       name=model.name)


def to_pixels(images: np.ndarray, mean, std) -> np.ndarray:
    """Normalised images back to the 8-bit pixels a camera gives: round(clip((x · std + mean) · 255)) as uint8."""
    pixels = (np.asarray(images, np.float64) * np.asarray(std) + np.asarray(mean)) * 255.0
    return np.clip(np.round(pixels), *PIXEL_RANGE).astype(np.uint8)


def normalize(pixels: np.ndarray, mean, std) -> np.ndarray:
    """`(pixel / 255 - mean) / std` in float32: what the Keras model is fed for the same pixels."""
    return ((np.asarray(pixels, np.float32) / 255.0 - np.asarray(mean, np.float32))
            / np.asarray(std, np.float32)).astype(np.float32)
