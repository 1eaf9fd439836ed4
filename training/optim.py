"""Optimiser and learning-rate schedule of the recipes.

AdamW (Loshchilov & Hutter 2019), LAMB (You et al. 2020) or SGD with momentum (the Mixer paper's fine-tuning)
from `keras.optimizers`, linear warm-up then cosine decay (`keras.optimizers.schedules.CosineDecay` with
`warmup_steps`), decoupled weight decay that skips norms, biases, Affine, LayerScale, the class token and
position embeddings (as DeiT/timm's `param_groups_weight_decay`: no decay on 1-D parameters and embeddings),
optional layer-wise learning-rate scales (`training.finetune.layer_scales`), optional EMA of the weights, and
loss scaling for `mixed_float16`. Gradient clipping is done by the trainer after the cross-replica all-reduce.
"""
from __future__ import annotations

import keras

from training.config import TrainConfig

# Keras variable names (not paths) that get no weight decay: LayerNorm gamma/beta, Affine alpha/beta,
# LayerScale gamma, biases, class token, position embedding.
NO_DECAY_NAMES = ("bias", "gamma", "beta", "alpha", "cls_token", "pos_embed")
OPTIMIZERS = {"adamw": keras.optimizers.AdamW, "lamb": keras.optimizers.Lamb, "sgd": keras.optimizers.SGD}


class ScaledLearningRates:
    """Mixin for a Keras optimizer: each variable's learning rate times its scale in `lr_scales` ({variable
    path: scale}, 1 when absent), as timm's parameter groups with `lr_scale`. Weight decay keeps the unscaled
    rate."""

    def __init__(self, *args, lr_scales: dict[str, float], **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_scales = dict(lr_scales)

    def build(self, variables):
        super().build(variables)
        self._scales = [self.lr_scales.get(variable.path, 1.0) for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        return super().update_step(gradient, variable, learning_rate * self._scales[self._get_variable_index(variable)])


SCALED = {name: type(f"Scaled{cls.__name__}", (ScaledLearningRates, cls), {}) for name, cls in OPTIMIZERS.items()}


def schedule(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from 0 to the peak lr over `warmup_epochs`, then cosine decay to `min_lr`."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(int(round(config.warmup_epochs * steps_per_epoch)), total - 1)
    peak = config.peak_lr
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else peak, decay_steps=max(1, total - warmup),
        alpha=min(1.0, config.min_lr / peak) if peak else 0.0, warmup_target=peak if warmup else None,
        warmup_steps=warmup)


def make_optimizer(config: TrainConfig, steps_per_epoch: int,
                   lr_scales: dict[str, float] | None = None) -> keras.optimizers.Optimizer:
    """The recipe's optimizer (build it under the strategy scope); `TrainConfig` has checked its name."""
    # AdamW takes a float only (0: Adam); the others take None for no decay.
    decay = config.weight_decay if config.optimizer == "adamw" else config.weight_decay or None
    kwargs = dict(learning_rate=schedule(config, steps_per_epoch), weight_decay=decay, use_ema=config.use_ema,
                  ema_momentum=config.ema_momentum)
    if config.optimizer == "sgd":
        kwargs.update(momentum=config.momentum)
    else:
        kwargs.update(beta_1=config.beta_1, beta_2=config.beta_2)
    if lr_scales:
        optimizer = SCALED[config.optimizer](lr_scales=lr_scales, **kwargs)
    else:
        optimizer = OPTIMIZERS[config.optimizer](**kwargs)
    if config.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    if config.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
