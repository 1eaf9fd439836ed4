"""Fine-tune an ImageNet-21k MLP-Mixer on CIFAR-10 with the Mixer paper's transfer settings (Tolstikhin et al.
2021, arXiv:2105.01601), as the official code runs them (google-research/vision_transformer:
`vit_jax/train.py`, `vit_jax/configs/common.py`, `vit_jax/configs/mixer_base16_cifar10.py`): SGD with momentum
0.9, base lr 0.03 at batch 512, cosine decay to 0 after 500 linear warm-up steps, gradient clipping at global
norm 1, no weight decay, plain cross-entropy (no label smoothing, mixup or RandAugment), random crop and flip;
10,000 steps (here 103 epochs of 97 steps on the 50,000 training images; the official run holds 2% out);
224x224, or 384x384 with the token-mixing weights resized (`keras_mlp.resize`). A fresh zero-initialised head.

    keras-mlp-train --recipe finetune_mixer --data-dir /data/tfds --work-dir runs/mixer_b16_cifar10
    keras-mlp-train --recipe finetune_mixer --image-size 384 --data-dir /data/tfds --work-dir runs/mixer_b16_384
    keras-mlp-train --recipe finetune_mixer --dataset photos/ --set epochs=20   # your own image folder

Expected: Mixer-B/16 pre-trained on ImageNet-21k reaches 96.82% on CIFAR-10 in 9.6 h on four V100
(vision_transformer README, "Expected Mixer results"). Not run in this repository (no CIFAR-10 or published
weights offline); the weights are the `mixer_b16_224.goog_in21k` preset.
"""
CONFIG = dict(
    model="mixer_b16_224", weights="mixer_b16_224.goog_in21k", dataset="cifar10", augment="natural",
    label_smoothing=0.0, epochs=103, batch_size=512, optimizer="sgd", momentum=0.9, lr=0.03, lr_batch_size=512,
    min_lr=0.0, warmup_epochs=500 / 97, weight_decay=0.0, clip_norm=1.0, checkpoint_every=1000,
    eval_batch_size=512, eval_every=10,
)
