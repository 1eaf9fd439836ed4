"""Custom layers of keras-mlp; every one is `register_keras_serializable(package="keras_mlp")`."""
from keras_mlp.layers.affine import Affine, LayerScale
from keras_mlp.layers.blocks import BLOCKS, FFBlock, GMLPBlock, MixerBlock, ResMLPBlock
from keras_mlp.layers.embedding import ClassTokenPositionEmbedding, SelectToken
from keras_mlp.layers.gating import SpatialGatingUnit
from keras_mlp.layers.mlp import MlpBlock, TokenMixing
from keras_mlp.layers.norm import LayerNorm
from keras_mlp.layers.quant import QuantConv2D, QuantDense, RangeQuantizer
from keras_mlp.layers.regularization import DropPath
from keras_mlp.layers.stem import PatchEmbed

__all__ = ["Affine", "BLOCKS", "ClassTokenPositionEmbedding", "DropPath", "FFBlock", "GMLPBlock", "LayerNorm",
           "LayerScale", "MixerBlock", "MlpBlock", "PatchEmbed", "QuantConv2D", "QuantDense",
           "RangeQuantizer", "ResMLPBlock", "SelectToken", "SpatialGatingUnit",
           "TokenMixing"]
