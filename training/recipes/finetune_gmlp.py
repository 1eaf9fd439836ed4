"""Fine-tune an ImageNet-1k gMLP-S on CIFAR-10. Neither the gMLP paper (Liu et al. 2021, arXiv:2105.08050) nor
timm publishes a transfer recipe, so this one is derived: gMLP was trained with the DeiT recipe (its Appendix A.1,
as `imagenet_gmlp`), and the DeiT transfer settings are the ones the ResMLP authors used for the same kind of
model (`finetune_resmlp`, from facebookresearch/deit issue #117): AdamW, lr 5e-6 x batch / 512 at global batch
768, weight decay 0.05, 1000 epochs with 5 warm-up epochs and cosine decay, RandAugment(2, 9), mixup 0.8, CutMix
1.0, label smoothing 0.1; stochastic depth 0.05, gMLP-S's own ImageNet rate (Ti 0.01, B 0.2); 224x224, CIFAR's
32x32 images upsampled. A fresh head. The weights are timm's `gmlp_s16_224.ra3_in1k` (trained by timm with its
RA3 recipe, 79.6% top-1).

    keras-mlp-train --recipe finetune_gmlp --data-dir /data/tfds --work-dir runs/gmlp_s16_cifar10
    keras-mlp-train --recipe finetune_gmlp --dataset photos/ --epochs 30 --batch-size 32   # your own folder

Expected: no published figure. Not run at full scale here (no CIFAR-10 or published weights offline); the
derived settings were checked only to train end to end (tests/test_training_finetune.py runs every finetune_*
recipe on a tiny model).
"""
from training.recipes.finetune_resmlp import CONFIG as DEIT_TRANSFER

CONFIG = dict(DEIT_TRANSFER, model="gmlp_s16_224", weights="gmlp_s16_224.ra3_in1k", drop_path_rate=0.05)
