"""MLP-Mixer on ImageNet-1k from scratch (Tolstikhin et al. 2021, arXiv:2105.01601, Appendix B):
Adam(W) β=(0.9, 0.999), batch 4096, 10k warm-up steps then decay, weight decay 0.1, gradient clipping at global
norm 1, RandAugment, mixup and stochastic depth; 300 epochs at 224x224.

    keras-mlp-train --recipe imagenet_mixer --data-dir /data/tfds --work-dir runs/mixer_b16

Expected: Mixer-B/16 76.4% top-1 (paper, Table 2; ImageNet-1k only). Time: ~3 days on a TPUv3-32
(paper). Not run in this repository (no ImageNet here).
"""
CONFIG = dict(
    model="mixer_b16_224", dataset="imagenet2012", augment="natural", rand_augment=[2, 15], mixup=0.5,
    label_smoothing=0.1, drop_path_rate=0.1, epochs=300, batch_size=4096, optimizer="adamw", lr=3e-3,
    lr_batch_size=4096, min_lr=1e-5, warmup_epochs=32, weight_decay=0.1, clip_norm=1.0,
    mixed_precision="mixed_bfloat16", checkpoint_every=2000, eval_batch_size=1024,
)
