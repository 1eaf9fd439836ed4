"""Fine-tune a feed-forward-only ViT (Melas-Kyriazi 2021, arXiv:2105.02723) on CIFAR-10. The paper publishes no
transfer recipe, so this one is derived: the model was trained with the DeiT code and recipe (as `imagenet_ff`),
and the DeiT transfer settings are the ones the ResMLP authors used for the same kind of model
(`finetune_resmlp`, from facebookresearch/deit issue #117): AdamW, lr 5e-6 x batch / 512 at global batch 768,
weight decay 0.05, 1000 epochs with 5 warm-up epochs and cosine decay, RandAugment(2, 9), mixup 0.8, CutMix 1.0,
label smoothing 0.1; stochastic depth 0.1, DeiT's (and `imagenet_ff`'s) rate; 224x224, CIFAR's 32x32 images
upsampled. A fresh head. The weights are the paper's release, `ff_b16_224.lukemelas_in1k` (74.9% top-1);
`--weights ff_ti16_224.lukemelas_in1k` takes the tiny one.

    keras-mlp-train --recipe finetune_ff --data-dir /data/tfds --work-dir runs/ff_b16_cifar10
    keras-mlp-train --recipe finetune_ff --dataset photos/ --epochs 30 --batch-size 32   # your own folder

Expected: no published figure. Not run at full scale here (no CIFAR-10 or published weights offline); the
derived settings were checked only to train end to end (tests/test_training_finetune.py runs every finetune_*
recipe on a tiny model).
"""
from training.recipes.finetune_resmlp import CONFIG as DEIT_TRANSFER

CONFIG = dict(DEIT_TRANSFER, model="ff_b16_224", weights="ff_b16_224.lukemelas_in1k", drop_path_rate=0.1)
