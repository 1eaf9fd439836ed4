"""keras-mlp: the all-MLP vision networks (MLP-Mixer, ResMLP, gMLP, feed-forward-only ViT) as Keras models.

>>> import keras_mlp
>>> model = keras_mlp.create_model("gmlp_ti16_224", image_size=32, num_blocks=2, num_classes=10)
>>> model.output_shape
(None, 10)
"""
from keras_mlp import layers, quantization
from keras_mlp.models import GMLP, FeedForwardViT, MLPMixer, MLPTrunk, ResMLP
from keras_mlp.preprocessing import Preprocessing, center_crop
from keras_mlp.registry import VARIANTS, Variant, create_model, get_variant, list_models, save_preset
from keras_mlp.weights import list_presets, load_checkpoint, resize, save_checkpoint

__version__ = "0.1.0"
__all__ = ["FeedForwardViT", "GMLP", "MLPMixer", "MLPTrunk", "Preprocessing", "ResMLP", "VARIANTS", "Variant",
           "center_crop", "create_model", "get_variant", "layers", "list_models", "list_presets", "load_checkpoint",
           "quantization", "resize", "save_checkpoint", "save_preset"]
