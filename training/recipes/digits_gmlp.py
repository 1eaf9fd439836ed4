"""A small gMLP (spatial gating unit) on the bundled digits, with the same data and
optimiser settings as `digits_mixer` so the families compare (Liu et al. 2021, arXiv:2105.08050).

    keras-mlp-train --recipe digits_gmlp --work-dir runs/digits_gmlp

Measured (one run, 2 CPU cores shared with other jobs):
held-out top-1 97.78% (352/360), 83.2 s of training.
"""
from training.recipes.digits_mixer import CONFIG as MIXER
from training.recipes.digits_mixer import TRUNK

CONFIG = dict(MIXER, model="gmlp_ti16_224", model_overrides=dict(TRUNK, mlp_ratio=2.0), export="none")
