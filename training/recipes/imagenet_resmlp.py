"""ResMLP on ImageNet-1k with the DeiT training recipe (Touvron et al. 2021, arXiv:2105.03404, Sec. 4.1):
LAMB, lr 5e-3 at batch 1024, weight decay 0.2, 400 epochs with 5 warm-up epochs and cosine decay,
RandAugment(2, 9), mixup 0.8, CutMix 1.0, label smoothing 0.1, stochastic depth; 224x224.

    keras-mlp-train --recipe imagenet_resmlp --data-dir /data/tfds --work-dir runs/resmlp_12

Expected: ResMLP-S12 76.6% top-1 (paper, Table 4, no distillation). Time: ~1 day on 8 V100
(DeiT-S scale). Not run in this repository. Repeated augmentation and random erasing (DeiT) are not
implemented here.
"""
CONFIG = dict(
    model="resmlp_12_224", dataset="imagenet2012", augment="natural", rand_augment=[2, 9], mixup=0.8,
    cutmix=1.0, label_smoothing=0.1, drop_path_rate=0.05, epochs=400, batch_size=1024, optimizer="lamb",
    lr=5e-3, lr_batch_size=1024, min_lr=1e-5, warmup_epochs=5, weight_decay=0.2, clip_norm=None,
    mixed_precision="mixed_bfloat16", checkpoint_every=2000, eval_batch_size=1024,
)
