"""A 2-block, 32-wide MLP-Mixer on the digits at their native 8x8 (2x2 patches, 16 tokens), no augmentation,
8 epochs: the whole path (train, export every TFLite mode, parity gate) in about a minute, to check an
installation; the fast tier's training test runs it.

    keras-mlp-train --recipe digits_tiny --work-dir runs/digits_tiny

Measured (2 CPU cores shared with other jobs, load ~7): held-out top-1 95.28% (343/360) with seed 0 and
96.11% (346/360) with seed 1, 35-45 s of training (8 epochs of 22 steps, XLA).
"""
from training.recipes.digits_mixer import CONFIG as MIXER

CONFIG = dict(
    MIXER, model_overrides=dict(image_size=8, patch_size=2, num_blocks=2, hidden_dim=32, tokens_mlp_dim=16,
                                channels_mlp_dim=64),
    augment="none", epochs=8, lr=5e-3, warmup_epochs=1, eval_every=8,
    # Export: few calibration images, one short QAT epoch and few latency runs (the gate still sees all 360).
    export_options=dict(num_calibration=64, qat_epochs=1, qat_samples=512, latency_runs=5, threads=[1]),
)
