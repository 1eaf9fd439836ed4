"""Evidence for keras_mlp.resize: a model trained on 8x8 `digits`, resized to 16x16 input, starts fine-tuning
clearly above chance and far above a randomly initialised model at that size (sklearn digits, in-process)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import keras_mlp
from keras_mlp.backend import keras
from tests.helpers import tiny_model


def _compiled(model):
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


@pytest.mark.parametrize("name", ["mixer_s16_224",
                                  pytest.param("resmlp_12_224", marks=pytest.mark.slow),
                                  pytest.param("gmlp_s16_224", marks=pytest.mark.slow),
                                  pytest.param("ff_ti16_224", marks=pytest.mark.slow)])
def test_resized_digits_model_starts_ahead(name):
    keras.utils.set_random_seed(0)
    digits = load_digits()
    images, labels = (digits.images / 16.0).astype("float32")[..., None].repeat(3, -1), digits.target
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1400], order[1400:]
    build = lambda size: _compiled(tiny_model(name, image_size=size, patch_size=2, num_classes=10))  # noqa: E731
    small = build(8)
    small.fit(images[train], labels[train], batch_size=64, epochs=10, verbose=0)
    assert small.evaluate(images[test], labels[test], verbose=0)[1] > 0.7

    big = tf.image.resize(images, (16, 16), "bilinear").numpy()
    resized, scratch = _compiled(keras_mlp.resize(small, 16)), build(16)
    start = [m.evaluate(big[test], labels[test], verbose=0)[1] for m in (resized, scratch)]
    for m in (resized, scratch):
        m.fit(big[train][:320], labels[train][:320], batch_size=64, epochs=1, verbose=0)
    tuned = [m.evaluate(big[test], labels[test], verbose=0)[1] for m in (resized, scratch)]
    print(f"{name}: 16x16 accuracy at start resized {start[0]:.3f} vs random {start[1]:.3f}; "
          f"after 5 steps {tuned[0]:.3f} vs {tuned[1]:.3f}")
    assert start[0] > 0.4 and start[0] > start[1] + 0.25  # chance is 0.1
    assert tuned[0] > tuned[1] + 0.25
