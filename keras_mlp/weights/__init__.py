"""Published weights: checkpoint readers (`readers`), layout detection and loading (`loading`), moving a model to
another input size (`resize`), named published weights (`presets`), their
verified download (`download`) and class names (`labels`), writing a model back in a published layout (`saving`)
and local preset folders (`preset_folder`). The key maps themselves stay beside their family
(`keras_mlp.models.*_weights`)."""
from keras_mlp.weights.download import DownloadError, fetch_preset, fetch_url, resolve_weights
from keras_mlp.weights.labels import class_names
from keras_mlp.weights.loading import build_with_weights, find_layout, load_checkpoint, named_weights
from keras_mlp.weights.preset_folder import load_preset, read_preset_info
from keras_mlp.weights.presets import PRESETS, Preset, WeightFile, get_preset, list_presets, preset_class_names
from keras_mlp.weights.readers import CheckpointError, read_checkpoint
from keras_mlp.weights.resize import resize
from keras_mlp.weights.saving import checkpoint_state, save_checkpoint

__all__ = ["PRESETS", "CheckpointError", "DownloadError", "Preset", "WeightFile", "build_with_weights",
           "checkpoint_state", "class_names", "fetch_preset", "fetch_url", "find_layout", "get_preset", "list_presets",
           "load_checkpoint", "load_preset", "named_weights", "preset_class_names", "read_checkpoint",
           "read_preset_info", "resize", "resolve_weights", "save_checkpoint"]
