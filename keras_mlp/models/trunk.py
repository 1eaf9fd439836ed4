"""The one trunk of every family: patch stem → [class token + position embedding] → N blocks → norm → pool → head.

A family is a subclass that names its block (see `keras_mlp.layers.blocks.BLOCKS`) and its defaults; the
model is a functional `keras.Model` built in `__init__` (the keras-hub backbone pattern), so every
intermediate feature is reachable with `model.get_layer(name).output`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from keras_mlp.backend import initializer, keras
from keras_mlp.layers import BLOCKS, Affine, ClassTokenPositionEmbedding, LayerNorm, PatchEmbed, SelectToken
from keras_mlp.layers.quant import RangeQuantizer, check_quantization, dense
from keras_mlp.preprocessing import Preprocessing

POOLINGS = ("avg", "max", "token")
# `MLPTrunk.token_weights` of a token MLP (`TokenMixing` with a hidden layer) named `token_mixing`.
TOKEN_MLP_WEIGHTS = {
    "token_mixing/mlp/fc1/kernel": ((0,), 1), "token_mixing/mlp/fc1/bias": ((), 0),
    "token_mixing/mlp/fc2/kernel": ((1,), 0), "token_mixing/mlp/fc2/bias": ((0,), None),
}


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}. Pass e.g. {name}=8.")
    return int(value)


def _fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}. Pass e.g. {name}=0.1.")
    return float(value)


def resolve_input_shape(image_size, input_shape, patch_size: int) -> tuple[int, int, int]:
    """(H, W, C) from `input_shape`, else from `image_size` (int or (H, W)) with 3 channels; checked."""
    if input_shape is not None:
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__") or len(input_shape) != 3:
            raise ValueError(f"`input_shape` must be (height, width, channels), got {input_shape!r}.")
        shape = tuple(input_shape)
    else:
        size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
        if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
            raise ValueError(f"`image_size` must be an int or (height, width), got {image_size!r}. "
                             "Pass e.g. image_size=224 or image_size=(224, 160).")
        shape = (*size, 3)
    for axis, value in zip(("height", "width", "channels"), shape):
        _positive_int(f"input {axis}", value)
    h, w, _ = shape
    if h % patch_size or w % patch_size:
        fit = (max(patch_size, round(h / patch_size) * patch_size), max(patch_size, round(w / patch_size) * patch_size))
        raise ValueError(f"Image size {h}x{w} is not divisible by `patch_size`={patch_size}. Use an image size "
                         f"that is a multiple of the patch, e.g. image_size={fit if fit[0] != fit[1] else fit[0]}.")
    return tuple(int(s) for s in shape)


class MLPTrunk(keras.Model):
    """Base class of the zoo's models; subclasses set the class attributes below and pass `block_config`.

    Args (common to every family):
        patch_size: int. Patch side; the image size must be a multiple of it.
        num_blocks: int. Number of residual blocks.
        hidden_dim: int. Token width.
        image_size: int or (int, int). Input height and width. Defaults to 224.
        input_shape: (int, int, int) or None. (H, W, C); overrides `image_size`. Defaults to None (3 channels).
        num_classes: int. Classes of the head; 0 with `include_top=False`. Defaults to 1000.
        include_top: bool. Add the pooled classification head. Defaults to True.
        pooling: "avg", "max", "token" (class token, FF-only) or None. None means the family's pooling with
            the head, and the unpooled (B, N, C) tokens without it. Defaults to None.
        classifier_activation: str or None. Activation of the head; None gives logits. Defaults to None.
        dropout_rate: float. Dropout before the head. Defaults to 0.
        drop_path_rate: float in [0, 1). Stochastic depth, rising linearly to this rate over the blocks.
        layer_norm_epsilon: float. Epsilon of the LayerNorms. Defaults to 1e-6.
        pos_embed_grid: (int, int) or None. Grid the position embedding is stored on (families with a class
            token and position embedding only; refused otherwise). Defaults to None (the model's grid).
        preprocessing: `keras_mlp.Preprocessing`, its config dict, or None. How the model's images are prepared;
            recorded in the config, so data loading, export and evaluation take it from the model. Defaults to
            None (the family's `default_preprocessing`, RGB: pass your own for other channel counts).
        class_names: list of str or None. One name per output class (labels of exported files). Defaults to None.
        quantization: dict or None. Fake quantisation for quantisation-aware training (`keras_mlp.layers.quant`;
            set by `keras_mlp.quantization.quantize_aware`): ranges on the input, in every layer and block, after
            the pooling and on the logits. Defaults to None (float).

    Example (a family is a subclass naming its block; see `keras_mlp.models.mixer.MLPMixer`):
    >>> class TinyGMLP(MLPTrunk):
    ...     block = "gmlp"
    >>> model = TinyGMLP(block_config=dict(mlp_ratio=2.0), patch_size=4, num_blocks=1, hidden_dim=8, image_size=8,
    ...                  num_classes=3)
    >>> model.output_shape, model.grid_size
    ((None, 3), (2, 2))
    """

    block: str = ""
    display_name: str = ""
    default_preprocessing = Preprocessing()
    layouts: tuple = ()  # the published checkpoint layouts (`keras_mlp.models.keymap.Layout`)
    # Keras weight path suffix -> (token axes, hidden axis following the token count) for `keras_mlp.resize`.
    token_weights: dict[str, tuple[tuple[int, ...], int | None]] = {}
    splits_into_subgrids = True  # token mixing acts on interleaved sub-grids (block-diagonal resize)
    default_pooling = "avg"
    final_norm = "layernorm"
    final_norm_name = "norm"
    class_token = False
    kernel_initializer: Any = "glorot_uniform"
    head_initializer: Any = "zeros"

    def __init__(self, *, block_config: dict, patch_size: int, num_blocks: int, hidden_dim: int,
                 image_size=224, input_shape=None, num_classes: int = 1000, include_top: bool = True,
                 pooling: str | None = None, classifier_activation: str | None = None, dropout_rate: float = 0.0,
                 drop_path_rate: float = 0.0, layer_norm_epsilon: float = 1e-6, pos_embed_grid=None,
                 preprocessing=None, class_names=None, quantization=None, **kwargs):
        # === Checks ===
        patch_size = _positive_int("patch_size", patch_size)
        num_blocks = _positive_int("num_blocks", num_blocks)
        hidden_dim = _positive_int("hidden_dim", hidden_dim)
        shape = resolve_input_shape(image_size, input_shape, patch_size)
        for key, value in block_config.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise ValueError(f"`{key}` must be positive, got {value!r}.")
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 0:
            raise ValueError(f"`num_classes` must be a non-negative integer, got {num_classes!r}.")
        if include_top and num_classes == 0:
            raise ValueError("`include_top=True` needs `num_classes` > 0. Pass num_classes=N, or include_top=False "
                             "for a feature extractor.")
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"Unknown `pooling`={pooling!r}. Use one of {POOLINGS} or None.")
        if pooling == "token" and not self.class_token:
            raise ValueError(f"`pooling='token'` needs a class token, which {type(self).__name__} has not. "
                             "Use 'avg' or 'max'.")
        if pos_embed_grid is not None and not self.class_token:
            raise ValueError(f"`pos_embed_grid` is for models with a position embedding, which "
                             f"{type(self).__name__} has not (only FeedForwardViT has one). Leave it out.")
        given = Preprocessing.from_config(preprocessing)
        if given is not None and given.channels != shape[2]:
            raise ValueError(f"`preprocessing` normalises {given.channels}-channel images but the model takes "
                             f"{shape[2]} channels. Pass preprocessing=keras_mlp.Preprocessing(mean=..., std=...) "
                             f"with {shape[2]} value(s) each.")
        preprocessing = given or self.default_preprocessing
        if class_names is not None:
            if isinstance(class_names, (str, bytes)) or not all(isinstance(c, str) for c in class_names):
                raise ValueError(f"`class_names` must be a list of strings, got {class_names!r}.")
            if include_top and len(class_names) != num_classes:
                raise ValueError(f"{len(class_names)} `class_names` for a {num_classes}-class head. Pass exactly "
                                 f"{num_classes} names (or none).")
            class_names = tuple(class_names)
        dropout_rate = _fraction("dropout_rate", dropout_rate)
        drop_path_rate = _fraction("drop_path_rate", drop_path_rate)
        grid = (shape[0] // patch_size, shape[1] // patch_size)
        q = check_quantization(quantization)
        quantized = {} if q is None else {"quantization": q}

        # === Functional model ===
        images = keras.Input(shape=shape, name="images")
        x = images
        if q is not None:
            x = RangeQuantizer(q["activation_bits"], q["momentum"], name="input_range")(x)
        x = PatchEmbed(patch_size, hidden_dim, kernel_initializer=self.kernel_initializer, name="stem", **quantized)(x)
        if self.class_token:
            x = ClassTokenPositionEmbedding(grid, pos_embed_grid, name="embed", **quantized)(x)
        block_cls = BLOCKS[self.block]
        for i, rate in enumerate(np.linspace(0.0, drop_path_rate, num_blocks)):
            x = block_cls(drop_path_rate=float(rate), layer_norm_epsilon=layer_norm_epsilon,
                          kernel_initializer=self.kernel_initializer, name=f"{block_cls.__name__}_{i}",
                          **block_config, **quantized)(x)
        if self.final_norm == "affine":
            x = Affine(name=self.final_norm_name, **quantized)(x)
        else:
            x = LayerNorm(epsilon=layer_norm_epsilon, name=self.final_norm_name, **quantized)(x)
        pool = pooling or (self.default_pooling if include_top else None)
        if pool == "avg":
            x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
        elif pool == "max":
            x = keras.layers.GlobalMaxPooling1D(name="pool")(x)
        elif pool == "token":
            x = SelectToken(0, name="pool")(x)
        if q is not None and pool in ("avg", "max"):  # the MEAN of avg pooling makes a new range
            x = RangeQuantizer(q["activation_bits"], q["momentum"], name="pool_range")(x)
        if include_top:
            if dropout_rate:
                x = keras.layers.Dropout(dropout_rate, name="head_drop")(x)
            x = dense(num_classes, q, activation=classifier_activation,
                      kernel_initializer=initializer(self.head_initializer), name="head")(x)
        super().__init__(inputs=images, outputs=x, **kwargs)

        # === Config ===
        self.block_config = dict(block_config)
        self.patch_size = patch_size
        self.num_blocks = num_blocks
        self.hidden_dim = hidden_dim
        self.image_size = shape[:2]
        self.num_channels = shape[2]
        self.num_classes = int(num_classes)
        self.include_top = include_top
        self.pooling = pooling
        self.classifier_activation = classifier_activation
        self.dropout_rate = dropout_rate
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.pos_embed_grid = None if pos_embed_grid is None else tuple(pos_embed_grid)
        self.preprocessing = preprocessing
        self.class_names = class_names
        self.quantization = q

    @property
    def grid_size(self) -> tuple[int, int]:
        return (self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size)

    @property
    def input_spec(self):
        """None, so that `call` (not Keras' generic spec check) reports a wrong input with the fix."""
        return None

    @input_spec.setter
    def input_spec(self, value):
        pass

    def call(self, inputs, training=None, mask=None):
        expected = (*self.image_size, self.num_channels)
        shape = tuple(inputs.shape)
        want = f"(batch, {expected[0]}, {expected[1]}, {expected[2]})"
        if len(shape) != 4:
            fix = "add a batch axis, e.g. images[None]" if len(shape) == 3 else "pass a 4-D batch of images"
            raise ValueError(f"{type(self).__name__} expects images of shape {want}, got rank {len(shape)} "
                             f"shape {shape}: {fix}.")
        if tuple(shape[1:]) != expected:
            raise ValueError(f"{type(self).__name__} expects images of shape {want}, got {shape}. Resize the images "
                             f"to {expected[0]}x{expected[1]} with {expected[2]} channels, or build the model with "
                             f"input_shape={tuple(shape[1:])}.")
        return super().call(inputs, training=training, mask=mask)

    def get_config(self) -> dict:
        config = {
            "name": self.name, "trainable": self.trainable, "patch_size": self.patch_size,
            "num_blocks": self.num_blocks, "hidden_dim": self.hidden_dim, "image_size": self.image_size,
            "input_shape": (*self.image_size, self.num_channels), "num_classes": self.num_classes,
            "include_top": self.include_top, "pooling": self.pooling,
            "classifier_activation": self.classifier_activation, "dropout_rate": self.dropout_rate,
            "drop_path_rate": self.drop_path_rate, "layer_norm_epsilon": self.layer_norm_epsilon,
            "preprocessing": self.preprocessing.get_config(),
            "class_names": None if self.class_names is None else list(self.class_names),
        }
        if self.class_token:
            config["pos_embed_grid"] = self.pos_embed_grid
        if self.quantization is not None:
            config["quantization"] = self.quantization
        return {**config, **self.block_config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)
