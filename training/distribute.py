"""tf.distribute strategies by name, and which worker is the chief.

Keras 3 `Model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the trainer never
uses `fit`: it runs its own step with `strategy.run` / `strategy.reduce`, which works the same way under
every strategy here.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from training.config import UsageError

STRATEGIES = ("auto", "one", "mirrored", "multiworker", "tpu")


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """`auto`: MultiWorkerMirrored when TF_CONFIG is set, Mirrored with several GPUs, else one device.

    `mirrored` uses every GPU, or every logical CPU device when there is no GPU (as in the tests).
    """
    if name not in STRATEGIES:
        raise UsageError(f"Unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}.")
    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multiworker"
        else:
            name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one"
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise UsageError("--strategy multiworker needs TF_CONFIG (cluster and task) in the environment.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def task() -> tuple[str, int]:
    """(task type, index) from TF_CONFIG, ("chief", 0) without one."""
    spec = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return spec.get("type", "chief"), int(spec.get("index", 0))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the work directory (the chief, or worker 0 without a chief)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    kind, index = task()
    has_chief = "chief" in json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief)
