"""Published weights: checkpoint readers (`readers`), layout detection and loading (`loading`), moving a model to
another input size (`resize`), and the `keras-mlp-convert` CLI (`cli`). The key maps themselves stay beside their
family (`keras_mlp.models.*_weights`)."""
from keras_mlp.weights.loading import build_with_weights, find_layout, load_checkpoint, named_weights
from keras_mlp.weights.readers import CheckpointError, read_checkpoint
from keras_mlp.weights.resize import resize

__all__ = ["CheckpointError", "build_with_weights", "find_layout", "load_checkpoint", "named_weights",
           "read_checkpoint", "resize"]
