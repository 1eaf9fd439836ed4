"""A small ResMLP (Affine norms, cross-patch Linear, LayerScale) on the bundled digits, with the same data and
optimiser settings as `digits_mixer` but 60 epochs: without normalisation layers it learns more slowly
(Touvron et al. 2021, arXiv:2105.03404).

    keras-mlp-train --recipe digits_resmlp --work-dir runs/digits_resmlp

Measured (one run each, 2 CPU cores shared with other jobs): held-out top-1 97.78% (352/360) in 103 s of
training at 60 epochs; 95.56% (344/360) in 53 s at 30 epochs.
"""
from training.recipes.digits_mixer import CONFIG as MIXER
from training.recipes.digits_mixer import TRUNK

CONFIG = dict(MIXER, model="resmlp_12_224", model_overrides=dict(TRUNK, mlp_ratio=2.0, init_values=0.1), epochs=60,
              export="none")
