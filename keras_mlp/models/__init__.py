"""The four model families, each a subclass of the one trunk."""
from keras_mlp.models.ff_vit import FeedForwardViT
from keras_mlp.models.gmlp import GMLP
from keras_mlp.models.mixer import MLPMixer
from keras_mlp.models.resmlp import ResMLP
from keras_mlp.models.trunk import MLPTrunk

FAMILIES: tuple[type[MLPTrunk], ...] = (MLPMixer, ResMLP, GMLP, FeedForwardViT)
__all__ = ["FAMILIES", "FeedForwardViT", "GMLP", "MLPMixer", "MLPTrunk", "ResMLP"]
