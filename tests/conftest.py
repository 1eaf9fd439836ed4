"""Shared fixtures: tiny overrides of every registered variant, so the registry is the test matrix."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

import keras_mlp

FAMILY_REPRESENTATIVES = ["mixer_s16_224", "resmlp_12_224", "gmlp_s16_224", "ff_ti16_224"]


def tiny_overrides(name: str) -> dict:
    """Shrink a variant to a 32x32 input and 2 narrow blocks, keeping its family-specific arguments."""
    variant = keras_mlp.get_variant(name)
    patch = {32: 16, 16: 8, 14: 8, 8: 4}[variant.kwargs["patch_size"]]
    overrides = dict(image_size=32, patch_size=patch, num_blocks=2, hidden_dim=32, num_classes=5)
    if variant.family is keras_mlp.MLPMixer:
        overrides.update(tokens_mlp_dim=16, channels_mlp_dim=64)
    return overrides


def tiny_model(name: str, **extra):
    return keras_mlp.create_model(name, **{**tiny_overrides(name), **extra})


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")


def randomised(name: str, seed: int = 0, **extra):
    """Tiny model with every weight drawn at random, the head included (it starts at zero, which would make every
    output, and so every comparison, trivially equal); LayerNorm gammas around 1."""
    model = tiny_model(name, **extra)
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0.0, 0.1, v.shape).astype("float32") + (1.0 if "gamma" in v.path else 0.0))
    return model


def fail_conversion(monkeypatch, mode: str, message: str = "converter crashed") -> None:
    """Make export's conversion of `mode` raise RuntimeError(message); the other modes convert as usual."""
    import export.pipeline

    real = export.pipeline.to_tflite

    def failing(model, mode_, *args, **kwargs):
        if mode_ == mode:
            raise RuntimeError(message)
        return real(model, mode_, *args, **kwargs)
    monkeypatch.setattr(export.pipeline, "to_tflite", failing)
