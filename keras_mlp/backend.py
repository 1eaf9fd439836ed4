"""The Keras implementation every layer builds on.

Keras 3 by default; tf_keras when ``TF_USE_LEGACY_KERAS=1`` (tensorflow-model-optimization quantises only
tf_keras models). Both builds come from the same layer source: layers use ``keras.layers`` for structure and
plain TensorFlow ops for maths, which both implementations accept.
"""
from __future__ import annotations

import os

import tensorflow as tf

LEGACY = os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes")

if LEGACY:
    import tf_keras as keras  # noqa: F401
else:
    import keras  # noqa: F401

serializable = keras.saving.register_keras_serializable(package="keras_mlp")


def initializer(spec):
    """Resolve an initializer name/config (JSON-friendly) to an object; `trunc_normal` is ViT/timm's N(0, .02)."""
    if spec == "trunc_normal":
        return keras.initializers.TruncatedNormal(stddev=0.02)
    return keras.initializers.get(spec)


__all__ = ["LEGACY", "keras", "tf", "serializable", "initializer"]
