"""The Keras implementation every layer builds on, and the ops the layers do their maths with.

Keras 3 by default, on any of its backends (TensorFlow, JAX, PyTorch: `KERAS_BACKEND`); the layers' maths is
`keras.ops`, so importing the models imports no TensorFlow on JAX or PyTorch. With ``TF_USE_LEGACY_KERAS=1`` the
same layer source builds tf_keras models (tensorflow-model-optimization quantises only those): `ops` is then the
TensorFlow op of the same name and positional signature as each `keras.ops` function the layers call (call
them positionally: the keyword names differ). One source, never a second copy of an architecture.
"""
from __future__ import annotations

import os
import types

LEGACY = os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes")

if LEGACY:
    import tensorflow as tf
    import tf_keras as keras

    ops = types.SimpleNamespace(
        cast=tf.cast, concatenate=tf.concat, convert_to_tensor=tf.convert_to_tensor, gelu=tf.nn.gelu,
        matmul=tf.matmul, mean=tf.reduce_mean, reshape=tf.reshape, rsqrt=tf.math.rsqrt, shape=tf.shape,
        split=tf.split, tile=tf.tile, transpose=tf.transpose)
else:
    import keras
    from keras import ops

serializable = keras.saving.register_keras_serializable(package="keras_mlp")


def initializer(spec):
    """Resolve an initializer name/config (JSON-friendly) to an object; `trunc_normal` is ViT/timm's N(0, .02)."""
    if spec == "trunc_normal":
        return keras.initializers.TruncatedNormal(stddev=0.02)
    return keras.initializers.get(spec)


__all__ = ["LEGACY", "keras", "ops", "serializable", "initializer"]
