"""A small feed-forward-only ViT (class token, position embedding) on the bundled digits, with the same data and
optimiser settings as `digits_mixer` so the families compare (Melas-Kyriazi 2021, arXiv:2105.02723).

    keras-mlp-train --recipe digits_ff --work-dir runs/digits_ff

Measured (one run, 2 CPU cores shared with other jobs):
held-out top-1 99.72% (359/360), 88.6 s of training.
"""
from training.recipes.digits_mixer import CONFIG as MIXER
from training.recipes.digits_mixer import TRUNK

CONFIG = dict(MIXER, model="ff_ti16_224", model_overrides=dict(TRUNK, mlp_ratio=2.0), export="none")
