"""The residual blocks of the four families. The trunk (`keras_mlp.models.trunk`) takes any of them by name.

Every block maps (B, N, C) tokens to (B, N, C) and takes `drop_path_rate`, `layer_norm_epsilon` and
`kernel_initializer` (and `quantization`: None, or fake quantisation as `keras_mlp.layers.quant`, with a range
after each residual add); the rest of its arguments are the family's own.
"""
from __future__ import annotations

from keras_mlp.backend import initializer, keras, ops, serializable
from keras_mlp.layers.affine import Affine, LayerScale
from keras_mlp.layers.gating import SpatialGatingUnit
from keras_mlp.layers.mlp import MlpBlock, TokenMixing
from keras_mlp.layers.norm import LayerNorm
from keras_mlp.layers.quant import check_quantization, dense, fq, quant_config, range_quantizers
from keras_mlp.layers.regularization import DropPath


class _Block(keras.layers.Layer):
    """Shared constructor arguments and config of a residual block."""

    def __init__(self, drop_path_rate: float = 0.0, layer_norm_epsilon: float = 1e-6,
                 kernel_initializer="glorot_uniform", quantization: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = kernel_initializer
        self.quantization = check_quantization(quantization)

    def _sublayers(self, input_shape, **layers):
        """Attach, name and build sublayers in order; each is built on `input_shape` (they all keep it)."""
        for name, layer in layers.items():
            setattr(self, name, layer)
            layer.build(input_shape)
        self.drop_path = DropPath(self.drop_path_rate, name="drop_path", dtype=self.dtype_policy)
        self.quantizers = range_quantizers(self, self.quantization, *self.residuals)
        self.built = True

    residuals = ("residual1", "residual2")  # the activation point after each residual add

    def _add(self, name, x, branch, training):
        return fq(self, name, x + self.drop_path(branch, training=training), training)

    def _norm(self, name):
        return LayerNorm(epsilon=self.layer_norm_epsilon, name=name, dtype=self.dtype_policy,
                         quantization=self.quantization)

    def _dense(self, units, name):
        return dense(units, self.quantization, kernel_initializer=initializer(self.kernel_initializer), name=name,
                     dtype=self.dtype_policy)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "drop_path_rate": self.drop_path_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon, "kernel_initializer": self.kernel_initializer,
                **quant_config(self)}


@serializable
class MixerBlock(_Block):
    """MLP-Mixer block (Tolstikhin et al. 2021, arXiv:2105.01601), names as the official Flax model.

    x += TokenMLP(LN(x)ᵀ)ᵀ; x += ChannelMLP(LN(x)).

    Args:
        tokens_mlp_dim: int. Hidden width of the token-mixing MLP.
        channels_mlp_dim: int. Hidden width of the channel-mixing MLP.
        approximate_gelu: bool. Tanh GELU as the official JAX code (True) or exact as timm. Defaults to True.

    Example (every block maps (B, N, C) tokens to the same shape):
    >>> import numpy as np
    >>> tuple(MixerBlock(tokens_mlp_dim=8, channels_mlp_dim=16)(np.ones((2, 4, 8), "float32")).shape)
    (2, 4, 8)
    """

    def __init__(self, tokens_mlp_dim: int, channels_mlp_dim: int, approximate_gelu: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.tokens_mlp_dim = tokens_mlp_dim
        self.channels_mlp_dim = channels_mlp_dim
        self.approximate_gelu = approximate_gelu

    def build(self, input_shape):
        mlp = dict(approximate_gelu=self.approximate_gelu, kernel_initializer=self.kernel_initializer,
                   dtype=self.dtype_policy, quantization=self.quantization)
        self._sublayers(input_shape,
                        norm1=self._norm("norm1"),
                        token_mixing=TokenMixing(self.tokens_mlp_dim, name="token_mixing", **mlp),
                        norm2=self._norm("norm2"),
                        channel_mixing=MlpBlock(self.channels_mlp_dim, name="channel_mixing", **mlp))

    def call(self, x, training=None):
        x = self._add("residual1", x, self.token_mixing(self.norm1(x, training=training), training=training), training)
        return self._add("residual2", x, self.channel_mixing(self.norm2(x, training=training), training=training),
                         training)

    def get_config(self):
        return {**super().get_config(), "tokens_mlp_dim": self.tokens_mlp_dim,
                "channels_mlp_dim": self.channels_mlp_dim, "approximate_gelu": self.approximate_gelu}


@serializable
class ResMLPBlock(_Block):
    """ResMLP block (Touvron et al. 2021, arXiv:2105.03404), names as timm `ResBlock`.

    x += γ₁ ⊙ Linear_N(Aff(x)ᵀ)ᵀ; x += γ₂ ⊙ MLP(Aff(x)).

    Args:
        mlp_ratio: float. Channel MLP width as a multiple of the width. Defaults to 4.
        init_values: float. Initial LayerScale γ. Defaults to 1e-4.

    Example:
    >>> import numpy as np
    >>> block = ResMLPBlock(mlp_ratio=2.0, init_values=0.1)
    >>> tuple(block(np.ones((2, 4, 8), "float32")).shape), tuple(block.linear_tokens.mix.kernel.shape)
    ((2, 4, 8), (4, 4))
    """

    def __init__(self, mlp_ratio: float = 4.0, init_values: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        self.mlp_ratio = mlp_ratio
        self.init_values = init_values

    def build(self, input_shape):
        init, dtype, q = self.kernel_initializer, self.dtype_policy, self.quantization
        self._sublayers(input_shape,
                        norm1=Affine(name="norm1", dtype=dtype, quantization=q),
                        linear_tokens=TokenMixing(kernel_initializer=init, name="linear_tokens", dtype=dtype,
                                                  quantization=q),
                        ls1=LayerScale(self.init_values, name="ls1", dtype=dtype, quantization=q),
                        norm2=Affine(name="norm2", dtype=dtype, quantization=q),
                        mlp_channels=MlpBlock(int(input_shape[-1] * self.mlp_ratio), kernel_initializer=init,
                                              name="mlp_channels", dtype=dtype, quantization=q),
                        ls2=LayerScale(self.init_values, name="ls2", dtype=dtype, quantization=q))

    def call(self, x, training=None):
        t = training
        x = self._add("residual1", x, self.ls1(self.linear_tokens(self.norm1(x, training=t), training=t), training=t),
                      t)
        return self._add("residual2", x, self.ls2(self.mlp_channels(self.norm2(x, training=t), training=t),
                                                  training=t), t)

    def get_config(self):
        return {**super().get_config(), "mlp_ratio": self.mlp_ratio, "init_values": self.init_values}


@serializable
class GMLPBlock(_Block):
    """gMLP block (Liu et al. 2021, arXiv:2105.08050), names as timm `SpatialGatingBlock`.

    x += Dense(SGU(GELU(Dense(LN(x))))), the hidden layer `mlp_ratio`× wide and gated down to half of it.

    Args:
        mlp_ratio: float. Hidden width as a multiple of the width. Defaults to 6.

    Example:
    >>> import numpy as np
    >>> block = GMLPBlock(mlp_ratio=2.0)
    >>> tuple(block(np.ones((2, 4, 8), "float32")).shape), tuple(block.fc2.kernel.shape)
    ((2, 4, 8), (8, 8))
    """

    def __init__(self, mlp_ratio: float = 6.0, **kwargs):
        super().__init__(**kwargs)
        self.mlp_ratio = mlp_ratio

    def build(self, input_shape):
        hidden = int(input_shape[-1] * self.mlp_ratio)
        self._sublayers(input_shape, norm=self._norm("norm"), fc1=self._dense(hidden, "fc1"))
        self.gate = SpatialGatingUnit(name="gate", dtype=self.dtype_policy, quantization=self.quantization)
        self.gate.build((*input_shape[:-1], hidden))
        self.fc2 = self._dense(input_shape[-1], "fc2")
        self.fc2.build((*input_shape[:-1], hidden // 2))

    residuals = ("gelu", "residual1")

    def call(self, x, training=None):
        t = training
        h = fq(self, "gelu", ops.gelu(self.fc1(self.norm(x, training=t), training=t), approximate=False), t)
        return self._add("residual1", x, self.fc2(self.gate(h, training=t), training=t), t)

    def get_config(self):
        return {**super().get_config(), "mlp_ratio": self.mlp_ratio}


@serializable
class FFBlock(_Block):
    """Feed-forward-only ViT block (Melas-Kyriazi 2021, arXiv:2105.02723): attention replaced by a token MLP.

    x += MLP_C(LN(x)); x += MLP_N(LN_N(xᵀ))ᵀ, the channel MLP first, the token MLP normalised over tokens.

    Args:
        mlp_ratio: float. Hidden width of both MLPs as a multiple of their input (C and N). Defaults to 4.

    Example:
    >>> import numpy as np
    >>> block = FFBlock(mlp_ratio=2.0)
    >>> tuple(block(np.ones((2, 4, 8), "float32")).shape), tuple(block.token_mixing.mix.fc1.kernel.shape)
    ((2, 4, 8), (4, 8))
    """

    def __init__(self, mlp_ratio: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        self.mlp_ratio = mlp_ratio

    def build(self, input_shape):
        init = self.kernel_initializer
        self._sublayers(input_shape,
                        norm1=self._norm("norm1"),
                        mlp_channels=MlpBlock(int(input_shape[-1] * self.mlp_ratio), kernel_initializer=init,
                                              name="mlp_channels", dtype=self.dtype_policy,
                                              quantization=self.quantization),
                        token_mixing=TokenMixing(int(input_shape[1] * self.mlp_ratio), norm=True,
                                                 layer_norm_epsilon=self.layer_norm_epsilon,
                                                 kernel_initializer=init, name="token_mixing",
                                                 dtype=self.dtype_policy, quantization=self.quantization))

    def call(self, x, training=None):
        t = training
        x = self._add("residual1", x, self.mlp_channels(self.norm1(x, training=t), training=t), t)
        return self._add("residual2", x, self.token_mixing(x, training=t), t)

    def get_config(self):
        return {**super().get_config(), "mlp_ratio": self.mlp_ratio}


BLOCKS = {"mixer": MixerBlock, "resmlp": ResMLPBlock, "gmlp": GMLPBlock, "ff": FFBlock}
