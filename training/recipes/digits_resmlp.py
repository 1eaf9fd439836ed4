"""A small ResMLP (Affine norms, cross-patch Linear, LayerScale) on the bundled digits, with the same data and
optimiser settings as `digits_mixer` but 60 epochs: without normalisation layers it learns more slowly
(Touvron et al. 2021, arXiv:2105.03404).

    keras-mlp-train --recipe digits_resmlp --work-dir runs/digits_resmlp

Measured (one run each, 2 CPU cores shared with other jobs): held-out top-1 97.78% (352/360) in 103 s of
training at 60 epochs; 95.56% (344/360) in 53 s at 30 epochs.
"""
CONFIG = dict(
    model="resmlp_12_224",
    model_overrides=dict(image_size=16, patch_size=2, num_blocks=4, hidden_dim=48, mlp_ratio=2.0, init_values=0.1),
    dataset="digits", augment="digits", jitter=0.1, label_smoothing=0.1, epochs=60, batch_size=64,
    optimizer="adamw", lr=3e-3, min_lr=1e-5, warmup_epochs=3, weight_decay=0.05, clip_norm=1.0,
    checkpoint_every=200, eval_batch_size=360, eval_every=5, export="none",
)
