"""Fine-tune an ImageNet-1k ResMLP-S12 on CIFAR-10 with the DeiT transfer settings the ResMLP authors used
(Touvron et al. 2021, arXiv:2105.03404; settings from facebookresearch/deit issue #117, answered by the first
author): AdamW, lr 5e-6 x batch / 512 (DeiT's linear scaling) at global batch 768, weight decay 0.05, 1000
epochs with 5 warm-up epochs and cosine decay, RandAugment rand-m9-mstd0.5-inc1, mixup 0.8, CutMix 1.0, label
smoothing 0.1, stochastic depth 0.05 (0.1 for ResMLP-S24), float32 (mixed precision off); 224x224, CIFAR's
32x32 images upsampled. A fresh head.

    keras-mlp-train --recipe finetune_resmlp --data-dir /data/tfds --work-dir runs/resmlp_12_cifar10
    keras-mlp-train --recipe finetune_resmlp --model resmlp_24_224 --weights resmlp_24_224.fb_in1k \
        --set drop_path_rate=0.1 --data-dir /data/tfds

Expected: ResMLP-S12 98.1% top-1 on CIFAR-10 (87.0% on CIFAR-100), ResMLP-S24 98.7% (89.5%) (paper, transfer
table). Not run in this repository (no CIFAR-10 or published weights offline). Differences: repeated
augmentation is not implemented here; DeiT's cosine ends at its default min-lr 1e-5, above the scaled peak
(7.5e-6), so its lr rises slightly; here it decays to 1e-6.
"""
CONFIG = dict(
    model="resmlp_12_224", weights="resmlp_12_224.fb_in1k", dataset="cifar10", augment="natural",
    rand_augment=[2, 9], mixup=0.8, cutmix=1.0, label_smoothing=0.1, drop_path_rate=0.05, epochs=1000,
    batch_size=768, optimizer="adamw", lr=5e-6, lr_batch_size=512, min_lr=1e-6, warmup_epochs=5,
    weight_decay=0.05, clip_norm=None, checkpoint_every=2000, eval_batch_size=768,
)
