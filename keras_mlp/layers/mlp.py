"""MLP blocks: the channel MLP (Dense → GELU → Dense) and token mixing (the same maths along the token axis).

Paper: Tolstikhin et al. 2021, "MLP-Mixer: An all-MLP Architecture for Vision" (arXiv:2105.01601), whose token
and channel MLPs every family here reuses. Reference code: `MlpBlock` (google-research/vision_transformer,
vit_jax/models_mixer.py), timm `Mlp`.
"""
from __future__ import annotations

from keras_mlp.backend import initializer, keras, ops, serializable
from keras_mlp.layers.norm import LayerNorm
from keras_mlp.layers.quant import check_quantization, dense, fq, quant_config, range_quantizers


@serializable
class MlpBlock(keras.layers.Layer):
    """Dense → GELU → Dense back to the input width, applied over the last axis.

    Args:
        hidden_dim: int. Width of the hidden layer.
        approximate_gelu: bool. Tanh-approximate GELU (the official JAX Mixer) or exact erf GELU (PyTorch,
            timm). Defaults to False.
        dropout_rate: float. Dropout after the activation and after the output. Defaults to 0.
        kernel_initializer: str or dict. Initializer of both kernels. Defaults to "glorot_uniform".
        quantization: dict or None. Fake quantisation (`keras_mlp.layers.quant`). Defaults to None.

    Example:
    >>> import numpy as np
    >>> tuple(MlpBlock(hidden_dim=16)(np.zeros((2, 4, 8), "float32")).shape)
    (2, 4, 8)
    """

    def __init__(self, hidden_dim: int, approximate_gelu: bool = False, dropout_rate: float = 0.0,
                 kernel_initializer="glorot_uniform", quantization: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.approximate_gelu = approximate_gelu
        self.dropout_rate = dropout_rate
        self.kernel_initializer = kernel_initializer
        self.quantization = check_quantization(quantization)

    def build(self, input_shape):
        self.fc1 = dense(self.hidden_dim, self.quantization, name="fc1", dtype=self.dtype_policy,
                         kernel_initializer=initializer(self.kernel_initializer))
        self.fc1.build(input_shape)
        self.fc2 = dense(input_shape[-1], self.quantization, name="fc2", dtype=self.dtype_policy,
                         kernel_initializer=initializer(self.kernel_initializer))
        self.fc2.build((*input_shape[:-1], self.hidden_dim))
        self.drop = keras.layers.Dropout(self.dropout_rate, name="drop")
        self.quantizers = range_quantizers(self, self.quantization, "gelu")
        self.built = True

    def call(self, x, training=None):
        x = fq(self, "gelu", ops.gelu(self.fc1(x, training=training), approximate=self.approximate_gelu), training)
        x = self.drop(x, training=training)
        return self.drop(self.fc2(x, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "approximate_gelu": self.approximate_gelu,
                "dropout_rate": self.dropout_rate, "kernel_initializer": self.kernel_initializer, **quant_config(self)}


@serializable
class TokenMixing(keras.layers.Layer):
    """Mixes information across tokens: (B, N, C) → transpose → [LayerNorm over N] → MLP or Linear on N → back.

    One layer serves all four families: the Mixer token MLP (`hidden_dim`), the ResMLP cross-patch Linear
    and the gMLP spatial projection (`hidden_dim=None`: a single N→N Dense), and the feed-forward-only ViT
    token MLP (`norm=True`: LayerNorm over the token axis first).

    Args:
        hidden_dim: int or None. Hidden width of a token MLP; None for a single Linear. Defaults to None.
        norm: bool. LayerNorm over the token axis before the MLP. Defaults to False.
        layer_norm_epsilon: float. Epsilon of that LayerNorm. Defaults to 1e-6.
        approximate_gelu: bool. See `MlpBlock`. Defaults to False.
        kernel_initializer: str or dict. Defaults to "glorot_uniform".
        bias_initializer: str or dict. Bias of the single Linear (gMLP uses ones). Defaults to "zeros".
        quantization: dict or None. Fake quantisation (`keras_mlp.layers.quant`). Defaults to None.

    Example (a Mixer token MLP over 6 tokens; the width 8 is untouched):
    >>> import numpy as np
    >>> layer = TokenMixing(hidden_dim=16)
    >>> tuple(layer(np.zeros((2, 6, 8), "float32")).shape), tuple(layer.mix.fc1.kernel.shape)
    ((2, 6, 8), (6, 16))
    """

    def __init__(self, hidden_dim: int | None = None, norm: bool = False, layer_norm_epsilon: float = 1e-6,
                 approximate_gelu: bool = False, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 quantization: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.norm = norm
        self.layer_norm_epsilon = layer_norm_epsilon
        self.approximate_gelu = approximate_gelu
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.quantization = check_quantization(quantization)

    def build(self, input_shape):
        tokens = input_shape[1]
        if tokens is None:
            raise ValueError("TokenMixing needs a static token count: build the model with a fixed image size.")
        transposed = (input_shape[0], input_shape[2], tokens)
        quantization = self.quantization
        if self.norm:
            self.norm_layer = LayerNorm(epsilon=self.layer_norm_epsilon, name="norm", dtype=self.dtype_policy,
                                        quantization=quantization)
            self.norm_layer.build(transposed)
        if self.hidden_dim is None:
            self.mix = dense(tokens, quantization, kernel_initializer=initializer(self.kernel_initializer),
                             bias_initializer=initializer(self.bias_initializer), name="fc", dtype=self.dtype_policy)
        else:
            self.mix = MlpBlock(self.hidden_dim, approximate_gelu=self.approximate_gelu, quantization=quantization,
                                kernel_initializer=self.kernel_initializer, name="mlp", dtype=self.dtype_policy)
        self.mix.build(transposed)
        self.built = True

    def call(self, x, training=None):
        x = ops.transpose(x, (0, 2, 1))
        if self.norm:
            x = self.norm_layer(x, training=training)
        x = self.mix(x, training=training)
        return ops.transpose(x, (0, 2, 1))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "norm": self.norm,
                "layer_norm_epsilon": self.layer_norm_epsilon, "approximate_gelu": self.approximate_gelu,
                "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
                **quant_config(self)}
