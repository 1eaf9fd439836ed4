"""One trainer for every tf.distribute strategy: a custom distributed step, step checkpoints, exact resume.

Keras 3 `Model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the step is our own:
`strategy.run` computes each replica's loss (scaled by the global batch, `tf.nn.compute_average_loss`) and
gradients, the gradients are summed across replicas, clipped by global norm once, and applied by the Keras
optimizer; `strategy.reduce` gives the step's loss. The same code runs on one device, Mirrored, MultiWorker
and TPU strategies. Data order and augmentation depend only on (seed, epoch, position) and the checkpoint
holds model, optimizer (with EMA), step, training time and the epoch's running loss/accuracy sums, so a
killed run resumes where its last checkpoint was taken, with the same history.csv; with `deterministic` (op
determinism) the result is bit-identical to an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

import keras_mlp
from keras_mlp import data as data_lib
from keras_mlp.backend import LEGACY
from keras_mlp.data.augment import Augmenter
from keras_mlp.io import atomic_path, write_atomic
from training import finetune, workdir
from training.config import TrainConfig, UsageError
from training.distribute import is_chief, make_strategy, task
from training.optim import make_optimizer

_SCALARS = tf.compat.v1.SummaryMetadata(plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))


def scalar(tag: str, value: float) -> None:
    """A TensorBoard scalar via `tf.summary.write` (what `tf.summary.scalar` does, without needing the
    tensorboard package installed; TensorBoard reads it the same way)."""
    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=_SCALARS)


class NaNLossError(UsageError):
    """The loss stopped being finite; training stopped and the last good checkpoint was kept."""


def _check(config: TrainConfig) -> tuple[keras_mlp.Variant, data_lib.DatasetInfo]:
    """Validate model and dataset before anything is built for training, downloaded or written.

    The model is built once with a placeholder class count (the dataset's is not known yet), so a bad model
    argument fails before a `--download`.
    """
    if LEGACY:
        raise UsageError("TF_USE_LEGACY_KERAS is set, so keras_mlp builds tf_keras models, and the trainer runs on "
                         "Keras 3. Unset it: env -u TF_USE_LEGACY_KERAS keras-mlp-train ...")
    try:
        variant = keras_mlp.get_variant(config.model)
    except ValueError as err:
        raise UsageError(str(err)) from err
    with tf.device("CPU:0"):
        build_model(config, num_classes=2)
    try:
        info = data_lib.dataset_info(config.dataset, data_dir=config.data_dir, download=config.download)
    except ValueError as err:
        raise UsageError(str(err)) from err
    if config.batch_size > info.num_train:
        raise UsageError(f"batch_size {config.batch_size} exceeds the {info.num_train} training images of "
                         f"{info.name!r}. Pass a smaller --batch-size.")
    return variant, info


def build_model(config: TrainConfig, num_classes: int, class_names=None) -> keras.Model:
    """The registry model with `num_classes` (named `class_names`), the recipe's stochastic depth and the
    overrides."""
    overrides = {"num_classes": num_classes, "class_names": class_names, "drop_path_rate": config.drop_path_rate,
                 **config.model_overrides}
    try:
        return keras_mlp.create_model(config.model, **overrides)
    except (TypeError, ValueError) as err:
        raise UsageError(f"Cannot build {config.model!r} with {config.model_overrides}: {err}") from err


def _augmenter(config: TrainConfig) -> Augmenter:
    return Augmenter(config.augmentation, rand_augment=config.rand_augment, mixup_alpha=config.mixup,
                     cutmix_alpha=config.cutmix, jitter=config.jitter)


def evaluate(model: keras.Model, dataset: tf.data.Dataset, predict=None) -> dict[str, float]:
    """Top-1, top-5 and cross-entropy of `model` (logits) over a dataset of (images, int labels)."""
    predict = predict or tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), reduce_retracing=True)
    top1 = top5 = total = 0
    loss = 0.0
    for images, labels in dataset:
        logits = predict(images)
        labels = tf.cast(labels, tf.int32)
        loss += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)))
        top1 += int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, 1), tf.int32)))
        top5 += int(tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, min(5, logits.shape[-1])), tf.int32)))
        total += int(labels.shape[0])
    return {"top1": top1 / total, "top5": top5 / total, "loss": loss / total, "examples": total}


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """Public class name (MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    return type(strategy).__name__


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of every weight's bytes, in order: equal digests mean bit-identical models."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


class Trainer:
    """Builds strategy, model, optimizer, data and checkpoints for `config` in `work_dir`; `run()` trains."""

    def __init__(self, config: TrainConfig, work_dir: str, *, resume: bool = False, overwrite: bool = False):
        self.config, self.work_dir = config, work_dir
        self.strategy = make_strategy(config.strategy)  # first: MultiWorkerMirrored must start before other ops
        self.variant, self.info = _check(config)
        replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise UsageError(f"batch_size {config.batch_size} is not divisible by the {replicas} replicas of the "
                             f"{type(self.strategy).__name__}. Pass a multiple of {replicas}, e.g. "
                             f"--batch-size {max(replicas, config.batch_size // replicas * replicas)}.")
        self.chief = is_chief(self.strategy)
        continuing = workdir.check_work_dir(work_dir, config, resume=resume, overwrite=overwrite)
        keras.utils.set_random_seed(config.seed)
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.mixed_precision.set_dtype_policy(config.mixed_precision or "float32")
        self.steps_per_epoch = self.info.num_train // config.batch_size
        self.total_steps = config.epochs * self.steps_per_epoch
        with self.strategy.scope():
            self.model = self._build_model(continuing)
            finetune.freeze(self.model, linear_probe=config.linear_probe, freeze_blocks=config.freeze_blocks)
            scales = finetune.layer_scales(self.model, config.layer_decay) if config.layer_decay else None
            self.optimizer = make_optimizer(config, self.steps_per_epoch, scales)
            self.optimizer.build(self.model.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="train_seconds")
        # Loss sum, accuracy sum and step count of the checkpoint's epoch so far: a resumed epoch's history row is
        # the uninterrupted one. Optional on restore (checkpoints written before it lack it: count 0).
        self.epoch_sums = tf.Variable([0.0, 0.0, 0.0], dtype=tf.float64, trainable=False, name="epoch_sums")
        core = dict(model=self.model, optimizer=self.optimizer, step=self.step, train_seconds=self.seconds)
        # The drop-path (Dropout) seed-generator states: `Checkpoint(model=...)` does not track them, and a resumed
        # run must draw the masks an uninterrupted one would. Optional on restore, like `epoch_sums`.
        seeds = {f"seed_{i}": v.value for i, v in enumerate(self.model.non_trainable_variables)
                 if v.path.endswith("seed_generator_state")}
        optional = dict(epoch_sums=self.epoch_sums, **seeds)
        self.checkpoint = tf.train.Checkpoint(**core, **optional)
        ckpt_dir = os.path.join(work_dir, "checkpoints")
        self.reader = tf.train.CheckpointManager(self.checkpoint, ckpt_dir, max_to_keep=config.keep_checkpoints)
        self.scratch = None if self.chief else os.path.join(work_dir, f".worker-{task()[1]}")
        self.writer = self.reader if self.chief else tf.train.CheckpointManager(
            self.checkpoint, os.path.join(self.scratch, "checkpoints"), max_to_keep=1)
        workdir.prepare_work_dir(work_dir, config, overwrite=overwrite and not continuing, chief=self.chief)
        if config.weights and self.chief:
            finetune.save_architecture(self.model, work_dir)
        self.start_step = workdir.restore(tf.train.Checkpoint(**core), self.reader,
                                          optional=tf.train.Checkpoint(**optional)) if continuing else 0
        self._train_step = self._make_train_step()
        self._predict = tf.function(lambda x: tf.cast(self.model(x, training=False), tf.float32),
                                    reduce_retracing=True)

    def _build_model(self, continuing: bool) -> keras.Model:
        """From scratch, from `config.weights`, or, when continuing a fine-tuning run that has a checkpoint, from
        its saved architecture: the checkpoint then restores the run's progress, never the weights it started
        from (which are not read again)."""
        config, names = self.config, list(self.info.class_names)
        if not config.weights:
            return build_model(config, self.info.num_classes, names)
        if continuing and tf.train.latest_checkpoint(os.path.join(self.work_dir, "checkpoints")):
            saved = finetune.load_architecture(self.work_dir)
            if saved is not None:
                return saved
        return finetune.build_pretrained(config, names)

    # === Data ===
    def _train_data(self, epoch: int, skip_steps: int, num_epochs: int):
        """One distributed iterator over the remaining epochs, starting `skip_steps` into `epoch`."""
        config, strategy = self.config, self.strategy

        def dataset_fn(ctx: tf.distribute.InputContext):
            per_pipeline = strategy.num_replicas_in_sync // ctx.num_input_pipelines
            return data_lib.build_pipeline(
                config.dataset, "train", preprocessing=self.model.preprocessing, image_size=self.model.image_size,
                batch_size=ctx.get_per_replica_batch_size(config.batch_size), augmenter=_augmenter(config),
                seed=config.seed, epoch=epoch, num_epochs=num_epochs, skip_batches=skip_steps * per_pipeline,
                shuffle=True,
                drop_remainder=True, one_hot=self.info.num_classes, num_shards=ctx.num_input_pipelines,
                shard_index=ctx.input_pipeline_id, data_dir=config.data_dir)

        return iter(strategy.distribute_datasets_from_function(dataset_fn))

    def test_data(self) -> tf.data.Dataset:
        return data_lib.build_pipeline(self.config.dataset, "test", preprocessing=self.model.preprocessing,
                                       image_size=self.model.image_size, batch_size=self.config.eval_batch_size,
                                       data_dir=self.config.data_dir)

    # === Step ===
    def _make_train_step(self):
        model, optimizer, strategy = self.model, self.optimizer, self.strategy
        global_batch, clip = self.config.batch_size, self.config.clip_norm
        loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=self.config.label_smoothing,
                                                       reduction=None)
        scaling = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

        @tf.function(jit_compile=self.config.jit_compile)
        def loss_and_grads(images, labels):  # XLA-compiled when jit_compile; no cross-replica ops inside
            variables = model.trainable_variables
            with tf.GradientTape() as tape:
                logits = tf.cast(model(images, training=True), tf.float32)
                loss = tf.nn.compute_average_loss(loss_fn(labels, logits), global_batch_size=global_batch)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
                scaled = optimizer.scale_loss(loss) if scaling else loss
            return loss, logits, tape.gradient(scaled, variables)

        def replica_step(images, labels):
            variables = model.trainable_variables
            loss, logits, grads = loss_and_grads(images, labels)
            ctx = tf.distribute.get_replica_context()
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            scale = tf.cast(optimizer.dynamic_scale, tf.float32) if scaling else None
            if clip:
                grads = [g / scale for g in grads] if scaling else grads
                grads, _ = tf.clip_by_global_norm(grads, clip)
                grads = [g * scale for g in grads] if scaling else grads
            # The Keras optimizer sums gradients over replicas again: hand it 1/R of the reduced sum.
            replicas = ctx.num_replicas_in_sync
            if replicas > 1:
                grads = [g / replicas for g in grads]
            optimizer.apply(grads, variables)
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), tf.argmax(labels, -1)), tf.float32))
            return loss, correct

        @tf.function
        def train_step(iterator):
            loss, correct = strategy.run(replica_step, args=next(iterator))
            return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                    strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None) / global_batch)

        return train_step

    def _save(self, step: int) -> None:
        self.step.assign(step)
        self.writer.save(checkpoint_number=step)

    # === Loop ===
    def run(self) -> dict:
        """Train from the restored step to the end, evaluate, save model and results; the results dict."""
        config, spe = self.config, self.steps_per_epoch
        logs = os.path.join(self.work_dir, "logs", "train")
        summary = tf.summary.create_file_writer(logs) if self.chief else tf.summary.create_noop_writer()
        step = self.start_step
        history = workdir.read_history(self.work_dir, step // spe) if self.chief else []
        images_seen, seconds_before = 0, float(self.seconds.numpy())
        test_ds = self.test_data()
        if self.chief and step >= self.total_steps:
            print(f"{self.work_dir} has already trained all {self.total_steps} steps ({config.epochs} epoch"
                  f"{'s' * (config.epochs != 1)}): evaluating the saved weights again.")
        elif self.chief and step:
            print(f"Resuming {self.work_dir} at step {step}/{self.total_steps} (epoch {step // spe + 1}/"
                  f"{config.epochs}).")
        iterator = None
        while step < self.total_steps:
            epoch, first = divmod(step, spe)
            if iterator is None:  # one input pipeline for every remaining epoch (batches depend on epoch and position)
                iterator = self._train_data(epoch, first, config.epochs - epoch)
            bar = keras.utils.Progbar(spe, verbose=config.verbose if self.chief else 0,
                                      stateful_metrics=["lr", "test_top1"])
            if self.chief and config.verbose:
                print(f"Epoch {epoch + 1}/{config.epochs}")
            # Sums of this epoch's step loss and accuracy, restored with the step when resuming mid-epoch.
            sums = [float(v) for v in self.epoch_sums.numpy()] if first else [0.0, 0.0, 0.0]
            start = time.perf_counter()  # `seconds` counts training steps only
            for index in range(first, spe):
                loss, acc = (float(v) for v in self._train_step(iterator))
                if not np.isfinite(loss):
                    raise NaNLossError(self._nan_message(step, loss))
                step += 1
                images_seen += config.batch_size
                sums = [sums[0] + loss, sums[1] + acc, sums[2] + 1]
                lr = float(self.optimizer.learning_rate)
                with summary.as_default(step=step):
                    scalar("loss", loss)
                    scalar("accuracy", acc)
                    scalar("learning_rate", lr)
                if step % config.checkpoint_every == 0 or step == self.total_steps:
                    self.seconds.assign_add(time.perf_counter() - start)
                    self.epoch_sums.assign(sums)
                    self._save(step)
                    start = time.perf_counter()
                bar.update(index + 1, [("loss", loss), ("acc", acc), ("lr", lr)])
            if step != self.total_steps:
                self.seconds.assign_add(time.perf_counter() - start)
            row = {"epoch": epoch, "step": step, "loss": sums[0] / sums[2], "accuracy": sums[1] / sums[2],
                   "test_loss": "", "test_top1": "", "test_top5": "", "lr": lr}
            if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
                metrics = evaluate(self.model, test_ds, self._predict)
                row.update(test_loss=metrics["loss"], test_top1=metrics["top1"], test_top5=metrics["top5"])
                if self.chief and config.verbose:
                    print(f"  test top-1 {metrics['top1']:.4f}  top-5 {metrics['top5']:.4f}  "
                          f"loss {metrics['loss']:.4f}")
                if self.chief:
                    with summary.as_default(step=step):
                        scalar("test_top1", metrics["top1"])
                        scalar("test_loss", metrics["loss"])
            history.append(row)
            if self.chief:
                workdir.write_history(self.work_dir, history)
        summary.flush()
        return self._finish(images_seen, float(self.seconds.numpy()) - seconds_before)

    def _nan_message(self, step: int, loss: float) -> str:
        latest = self.reader.latest_checkpoint
        kept = (f"the last good checkpoint {latest} is kept" if latest else "no checkpoint was written yet")
        return (f"Loss became {loss} at step {step + 1} (epoch {step // self.steps_per_epoch + 1}). Training "
                f"stopped; {kept}. Lower the learning rate (e.g. --set lr={self.config.lr / 10:g}) or set "
                "--set clip_norm=1.0, and rerun with --resume (or --overwrite to start again).")

    def _finish(self, images_seen: int, session_seconds: float) -> dict:
        """Evaluate, save model and results; `session_seconds` is this run's share of the training time."""
        config = self.config
        if config.use_ema:
            self.optimizer.finalize_variable_values(self.model.trainable_variables)
        metrics = evaluate(self.model, self.test_data(), self._predict)
        results = {
            "model": config.model, "weights": config.weights, "dataset": self.info.name, "test_top1": metrics["top1"],
            "test_top5": metrics["top5"], "test_loss": metrics["loss"], "test_examples": metrics["examples"],
            "epochs": config.epochs, "steps": self.total_steps, "global_batch_size": config.batch_size,
            "train_seconds": float(self.seconds.numpy()),  # training steps of every run of this work dir
            "resumed_at_step": self.start_step, "session_train_seconds": session_seconds,
            "images_per_second": images_seen / session_seconds if images_seen else None,  # this run's
            "strategy": strategy_name(self.strategy), "replicas": self.strategy.num_replicas_in_sync,
            "params": int(self.model.count_params()), "deterministic": config.deterministic,
            "weights_sha256": weights_digest(self.model),
            "model_path": os.path.join(self.work_dir, workdir.MODEL),
        }
        if self.chief:
            with atomic_path(os.path.join(self.work_dir, workdir.MODEL)) as tmp:
                self.model.save(tmp)
            write_atomic(os.path.join(self.work_dir, workdir.RESULTS), json.dumps(results, indent=2) + "\n")
        elif self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return results

