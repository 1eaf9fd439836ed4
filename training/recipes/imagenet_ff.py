"""Feed-forward-only ViT on ImageNet-1k (Melas-Kyriazi 2021, arXiv:2105.02723), trained with the DeiT code
and recipe (Touvron et al. 2021, arXiv:2012.12877): AdamW, lr 5e-4 x batch / 512, weight decay 0.05,
300 epochs with 5 warm-up epochs and cosine decay, RandAugment(2, 9), mixup 0.8, CutMix 1.0, label
smoothing 0.1, stochastic depth 0.1; 224x224.

    keras-mlp-train --recipe imagenet_ff --data-dir /data/tfds --work-dir runs/ff_ti16

Expected: FF-only tiny 61.4% top-1, base 74.9% (paper, Table 1). Time: ~1 day on 8 V100 (estimate).
Not run in this repository.
"""
CONFIG = dict(
    model="ff_ti16_224", dataset="imagenet2012", augment="natural", rand_augment=[2, 9], mixup=0.8,
    cutmix=1.0, label_smoothing=0.1, drop_path_rate=0.1, epochs=300, batch_size=1024, optimizer="adamw",
    lr=5e-4, lr_batch_size=512, min_lr=1e-5, warmup_epochs=5, weight_decay=0.05, clip_norm=None,
    mixed_precision="mixed_bfloat16", checkpoint_every=2000, eval_batch_size=1024,
)
