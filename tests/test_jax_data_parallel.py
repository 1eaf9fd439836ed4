"""The README's JAX path for data-parallel training: `keras.distribution.DataParallel` over 2 devices (2 host-CPU
devices forced by XLA_FLAGS), a zoo model trained with the user's own `model.fit`, its variables replicated on both
devices, and the loss going down. `keras-mlp-train` stays on tf.distribute; this is how JAX users distribute."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import TINY, subprocess_env

pytest.importorskip("jax")

FIT = textwrap.dedent("""
    import json, sys
    import keras
    import numpy as np
    import keras_mlp

    devices = keras.distribution.list_devices("cpu")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    keras.utils.set_random_seed(0)
    model = keras_mlp.create_model("mixer_s16_224", num_classes=3, image_size=32, patch_size=8,
                                   **json.loads(sys.argv[1]))
    model.compile(keras.optimizers.AdamW(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 64)
    images = rng.normal(size=(64, 32, 32, 3)).astype("float32") + labels[:, None, None, None]
    history = model.fit(images, labels, batch_size=16, epochs=4, verbose=0)
    placed = {len(v.value.sharding.device_set) for v in model.trainable_variables}
    print(json.dumps({"devices": len(devices), "placed_on": sorted(placed), "loss": history.history["loss"]}))
""")


def test_data_parallel_fit_on_two_jax_devices():
    run = subprocess.run([sys.executable, "-c", FIT, json.dumps(TINY["mixer"])], capture_output=True, text=True,
                         timeout=600, env=subprocess_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
                                                         XLA_FLAGS="--xla_force_host_platform_device_count=2"))
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2 and result["placed_on"] == [2], result  # every variable on both devices
    assert result["loss"][-1] < 0.8 * result["loss"][0], result
