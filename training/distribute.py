"""tf.distribute strategies by name, and which worker is the chief.

Keras 3 `Model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the trainer never
uses `fit`: it runs its own step with `strategy.run` / `strategy.reduce`, which works the same way under
every strategy here.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from training.config import STRATEGIES, UsageError

TF_CONFIG_FORM = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                  '"task": {"type": "worker", "index": 0}}\'')


def tf_config() -> dict | None:
    """TF_CONFIG parsed and checked (a cluster of jobs and this task in it); None when it is unset or empty."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    fix = f"Set it as {TF_CONFIG_FORM} (the same cluster on every worker, each its own task), or unset it to train " \
          "on this machine."
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"TF_CONFIG is not JSON ({err}; it starts {text[:60]!r}). {fix}") from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    if not (isinstance(cluster, dict) and cluster and all(isinstance(a, (list, dict)) and a for a in cluster.values())):
        raise UsageError(f'TF_CONFIG has no "cluster" mapping each job to its "host:port" addresses. {fix}')
    task = spec.get("task") if isinstance(spec.get("task"), dict) else {}
    kind, index = task.get("type"), task.get("index", 0)
    jobs = cluster.get(kind) if isinstance(kind, str) else None
    indices = range(len(jobs)) if isinstance(jobs, list) else {int(i) for i in jobs or () if str(i).isdigit()}
    if jobs is None or isinstance(index, bool) or index not in indices:
        given = json.dumps(spec["task"]) if "task" in spec else "missing"
        raise UsageError(f'TF_CONFIG\'s "task" ({given}) is not a task of its cluster (jobs: '
                         f'{", ".join(sorted(cluster))}): give {{"type": <job>, "index": <0-based position>}}. {fix}')
    return spec


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """`auto`: MultiWorkerMirrored when TF_CONFIG is set, Mirrored with several GPUs, else one device.

    `mirrored` uses every GPU, or every logical CPU device when there is no GPU (as in the tests).
    """
    if name not in STRATEGIES:
        raise UsageError(f"Unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}.")
    if name == "auto":
        if tf_config() is not None:
            name = "multiworker"
        else:
            name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one"
    if name == "multiworker":
        if tf_config() is None:
            raise UsageError(f"--strategy multiworker needs TF_CONFIG in the environment, e.g. {TF_CONFIG_FORM}.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as err:
            raise UsageError(f"--strategy tpu found no TPU ({type(err).__name__}: {str(err).splitlines()[0][:160]}). "
                             "Run on a TPU VM, or set TPU_NAME to your TPU's name; without one pass --strategy auto "
                             "(or one, mirrored).") from None
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def task() -> tuple[str, int]:
    """(task type, index) from TF_CONFIG, ("chief", 0) without one."""
    spec = (tf_config() or {}).get("task", {})
    return spec.get("type", "chief"), int(spec.get("index", 0))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the work directory (the chief, or worker 0 without a chief)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    kind, index = task()
    has_chief = "chief" in (tf_config() or {}).get("cluster", {})
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief)
