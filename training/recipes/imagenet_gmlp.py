"""gMLP on ImageNet-1k (Liu et al. 2021, arXiv:2105.08050, Appendix A.1, DeiT-style): AdamW, weight decay
0.05, 300 epochs with warm-up and cosine decay, RandAugment, mixup 0.8, CutMix 1.0, label smoothing 0.1,
stochastic depth growing with size (Ti 0.01, S 0.05, B 0.2), gradient clipping; 224x224.

    keras-mlp-train --recipe imagenet_gmlp --data-dir /data/tfds --work-dir runs/gmlp_s16

Expected: gMLP-S 79.6% top-1 (paper, Table 2); gMLP-Ti 72.3, gMLP-B 81.6. Time: ~2 days on 8 V100
(estimate). Not run in this repository.
"""
CONFIG = dict(
    model="gmlp_s16_224", dataset="imagenet2012", augment="natural", rand_augment=[2, 9], mixup=0.8,
    cutmix=1.0, label_smoothing=0.1, drop_path_rate=0.05, epochs=300, batch_size=1024, optimizer="adamw",
    lr=1e-3, lr_batch_size=1024, min_lr=1e-5, warmup_epochs=10, weight_decay=0.05, clip_norm=1.0,
    mixed_precision="mixed_bfloat16", checkpoint_every=2000, eval_batch_size=1024,
)
