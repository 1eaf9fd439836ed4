"""A small MLP-Mixer on the bundled digits (8x8 scans upsampled to 16x16, 2x2 patches): the main job.

    keras-mlp-train                          # = keras-mlp-train --recipe digits_mixer (then export + parity)

4 Mixer blocks, width 48 (56k parameters), AdamW lr 3e-3 with 3 warm-up epochs and cosine decay, weight
decay 0.05, label smoothing 0.1, light translation/zoom jitter, 30 epochs of batch 64.
Measured (2 CPU cores): held-out top-1 99.44% on the fixed 360-image test split (358/360), 54-79 s of training
(XLA, 538-787 images/s, depending on the machine and its load); the whole main job with the export of all 9
TFLite modes (the two raw-pixel uint8 ones included; the tfmot QAT fine-tune runs in its subprocess beside the
other conversions), their runtime checks and the parity report took 2 min 21 s and 2 min 38 s wall time in two
idle runs (2026-12-02, `time keras-mlp-train` on a 2-core AMD EPYC), every mode passing its gate: float32,
float16, dynamic, int8_uint8 and int16x8 99.44%, int8, int8_float_io and QAT 99.17%, qat_uint8 98.89%.
"""
# The small trunk and the data/optimiser settings every digits_<family> recipe shares.
TRUNK = dict(image_size=16, patch_size=2, num_blocks=4, hidden_dim=48)
CONFIG = dict(
    model="mixer_s16_224", model_overrides=dict(TRUNK, tokens_mlp_dim=32, channels_mlp_dim=96),
    dataset="digits", augment="digits", jitter=0.1, label_smoothing=0.1, epochs=30, batch_size=64,
    optimizer="adamw", lr=3e-3, min_lr=1e-5, warmup_epochs=3, weight_decay=0.05, clip_norm=1.0,
    checkpoint_every=200, eval_batch_size=360, eval_every=5,
)
