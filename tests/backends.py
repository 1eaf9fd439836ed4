"""The Keras backend the tests run on (`KERAS_BACKEND`) and the mark of tests that need the TensorFlow backend."""
from __future__ import annotations

import keras
import pytest

BACKEND = keras.backend.backend()


def tensorflow_only(what: str):
    """Skip mark for tests of `what` (TFLite export, the tf.distribute trainer, ...) on the other backends."""
    return pytest.mark.skipif(BACKEND != "tensorflow",
                              reason=f"{what} runs on the TensorFlow backend only (KERAS_BACKEND={BACKEND})")
