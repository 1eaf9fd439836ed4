"""tfmot QuantizeConfigs for keras_mlp's layers (tf_keras build; used by `export.qat_worker`).

tfmot (Krishnamoorthi 2018, arXiv:1806.08342; tensorflow_model_optimization 0.8 `default_8bit`) knows Dense
and Conv2D but not LayerNormalization, GELU or custom layers holding nested Dense layers. Weights get tfmot's
8-bit symmetric `LastValueQuantizer` (per channel for Conv2D, per tensor for Dense, as tfmot's defaults);
layer outputs its asymmetric `MovingAverageQuantizer`, so the fake-quant ranges the converter reads sit at
every block boundary:
- `NestedQuantizeConfig`: Dense/Conv2D and the custom blocks (stem, Mixer/ResMLP/gMLP/FF blocks, Affine, class
  token): every (nested) kernel is fake-quantised and the layer output too. Activations inside a block
  (LayerNorm, GELU, the token transposes) train without fake quant; the converter calibrates them from the
  representative dataset.
- `OutputQuantizeConfig`: LayerNormalization (the final norm): its output range; γ/β stay float in training
  (the converter folds them into int8 arithmetic).
- `NoOpQuantizeConfig`: pooling and dropout: ranges pass through unchanged.
"""
from __future__ import annotations

from keras_mlp.backend import LEGACY, keras

if not LEGACY:  # importing tfmot sets TF_USE_LEGACY_KERAS=1 for the whole process and every child it starts
    raise ImportError("export.qat_configs runs in tf_keras processes only (TF_USE_LEGACY_KERAS=1, as export.qat_worker "
                      "is started by export.qat); use export.qat.quantization_aware_training from Keras 3.")

import tensorflow_model_optimization as tfmot  # noqa: E402

from export.convert import nested_layers  # noqa: E402

quantizers = tfmot.quantization.keras.quantizers
QuantizeConfig = tfmot.quantization.keras.QuantizeConfig


def _weight_quantizer(layer):
    """tfmot's defaults: per output channel for Conv2D (the stem), per tensor for Dense (per-axis Dense kernels
    break the converter at the token-mixing transposes: "tfl.transpose op has mismatched quantized axes")."""
    per_axis = isinstance(layer, keras.layers.Conv2D)
    return quantizers.LastValueQuantizer(num_bits=8, symmetric=True, narrow_range=per_axis, per_axis=per_axis)


def _output_quantizer():
    return quantizers.MovingAverageQuantizer(num_bits=8, symmetric=False, narrow_range=False, per_axis=False)


def _kernel_owners(layer):
    """(sublayer, attribute) of every nested Dense/Conv kernel of `layer`, in a fixed order."""
    owners = []
    for sub in nested_layers(layer):
        if isinstance(sub, (keras.layers.Dense, keras.layers.Conv2D)):
            owners.append((sub, "kernel"))
    return owners


class NestedQuantizeConfig(QuantizeConfig):
    """Fake-quantise every nested Dense/Conv kernel and the output of a custom block."""

    def get_weights_and_quantizers(self, layer):
        return [(getattr(sub, attr), _weight_quantizer(sub)) for sub, attr in _kernel_owners(layer)]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        for (sub, attr), weight in zip(_kernel_owners(layer), quantize_weights):
            setattr(sub, attr, weight)

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_output_quantizer()]

    def get_config(self):
        return {}


class OutputQuantizeConfig(NestedQuantizeConfig):
    """Only the output range (LayerNormalization)."""

    def get_weights_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass


class NoOpQuantizeConfig(OutputQuantizeConfig):
    """Nothing quantised (pooling, dropout: ranges pass through)."""

    def get_output_quantizers(self, layer):
        return []


def custom_objects() -> dict:
    import keras_mlp
    objects = {cls.__name__: cls for cls in (NestedQuantizeConfig, OutputQuantizeConfig, NoOpQuantizeConfig)}
    for name in keras_mlp.layers.__all__:
        obj = getattr(keras_mlp.layers, name)
        if isinstance(obj, type):
            objects[name] = obj
    return objects


def annotate(model):
    """`model` (functional tf_keras) with every layer annotated for `quantize_apply`."""
    annotate_layer = tfmot.quantization.keras.quantize_annotate_layer
    passthrough = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalMaxPooling1D, keras.layers.Dropout)

    def apply(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        if isinstance(layer, keras.layers.LayerNormalization):
            return annotate_layer(layer, OutputQuantizeConfig())
        if isinstance(layer, passthrough):
            return annotate_layer(layer, NoOpQuantizeConfig())
        return annotate_layer(layer, NestedQuantizeConfig())
    return keras.models.clone_model(model, clone_function=apply)
