"""Builds a keras_mlp model under tf_keras (run with TF_USE_LEGACY_KERAS=1) from a Keras 3 model's config and
weights, and writes its logits: `python legacy_forward.py CLASS DIR` reads DIR/config.json, weights.npz, images.npy."""
import json
import sys
from pathlib import Path

import numpy as np

import keras_mlp
from keras_mlp.backend import LEGACY, keras

assert LEGACY and keras.__name__.startswith("tf_keras"), "run with TF_USE_LEGACY_KERAS=1"
family, folder = getattr(keras_mlp, sys.argv[1]), Path(sys.argv[2])
model = family.from_config(json.loads((folder / "config.json").read_text()))
weights = np.load(folder / "weights.npz")
model.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
np.save(folder / "logits.npy", model.predict(np.load(folder / "images.npy"), verbose=0))
