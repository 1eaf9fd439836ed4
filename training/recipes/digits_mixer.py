"""A small MLP-Mixer on the bundled digits (8x8 scans upsampled to 16x16): the main job, `keras-mlp-train`.

    keras-mlp-train                          # = keras-mlp-train --recipe digits_mixer

Expected: held-out top-1 >= 99.0% on the fixed 360-image test split; TBD s of training on 2 CPU cores.
"""
CONFIG = dict(
    model="mixer_s16_224",
    model_overrides=dict(image_size=16, patch_size=2, num_blocks=4, hidden_dim=64, tokens_mlp_dim=32,
                         channels_mlp_dim=128),
    dataset="digits", augment="digits", jitter=0.1, label_smoothing=0.1, epochs=40, batch_size=64,
    optimizer="adamw", lr=3e-3, min_lr=1e-5, warmup_epochs=3, weight_decay=0.05, clip_norm=1.0,
    checkpoint_every=200, eval_batch_size=360,
)
