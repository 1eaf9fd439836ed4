"""A small gMLP (spatial gating unit) on the bundled digits, with the same data and
optimiser settings as `digits_mixer` so the families compare (Liu et al. 2021, arXiv:2105.08050).

    keras-mlp-train --recipe digits_gmlp --work-dir runs/digits_gmlp

Measured (one run, 2 CPU cores shared with other jobs):
held-out top-1 97.78% (352/360), 83.2 s of training.
"""
CONFIG = dict(
    model="gmlp_ti16_224",
    model_overrides=dict(image_size=16, patch_size=2, num_blocks=4, hidden_dim=48, mlp_ratio=2.0),
    dataset="digits", augment="digits", jitter=0.1, label_smoothing=0.1, epochs=30, batch_size=64,
    optimizer="adamw", lr=3e-3, min_lr=1e-5, warmup_epochs=3, weight_decay=0.05, clip_norm=1.0,
    checkpoint_every=200, eval_batch_size=360, eval_every=5, export="none",
)
