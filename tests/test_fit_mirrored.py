"""The README's user-code path: a checkpoint with a fresh head, `model.fit` under `tf.distribute.MirroredStrategy`
(2 logical CPUs) on `keras.utils.image_dataset_from_directory`, the saved `.keras` reloading (after
`import keras_mlp`) and exporting through the parity gate."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np

from export.cli import main as export_main
from export.parity import MIN_GATE_IMAGES
from tests.helpers import TINY, flax_mixer_checkpoint, subprocess_env, write_photos

FIT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import keras_mlp

    weights, photos, out = sys.argv[1:4]
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        model = keras_mlp.create_model("mixer_s16_224", weights=weights, num_classes=3, patch_size=8,
                                       **json.loads(sys.argv[4]))
        model.compile(keras.optimizers.AdamW(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    data = keras.utils.image_dataset_from_directory(photos + "/train", image_size=model.image_size, batch_size=8,
                                                    seed=0)
    history = model.fit(data.map(lambda x, y: (model.preprocessing.normalize(x), y)), epochs=2, verbose=0)
    model.save(out)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "loss": history.history["loss"]}))
""")


def test_fit_under_mirrored_strategy_then_reload_and_export(tmp_path):
    weights = tmp_path / "Mixer-tiny.npz"
    np.savez(weights, **flax_mixer_checkpoint(tokens=16))  # a 32x32 checkpoint with a 5-class head
    write_photos(tmp_path / "photos", per_class={"train": 8, "test": -(-MIN_GATE_IMAGES // 3)})  # the gate's minimum
    run = subprocess.run([sys.executable, "-c", FIT, str(weights), str(tmp_path / "photos"),
                          str(tmp_path / "model.keras"), json.dumps(TINY["mixer"])],
                         capture_output=True, text=True, timeout=600,
                         env=subprocess_env(TF_USE_LEGACY_KERAS="0"))  # Keras 3 whatever an earlier test left set
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["loss"][-1] < result["loss"][0]
    code = export_main([str(tmp_path / "model.keras"), "--modes", "float32,int8", "--data", str(tmp_path / "photos"),
                        "--out", str(tmp_path / "out"), "--quiet", "--latency-runs", "1", "--threads", "1"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0, [r["failures"] for r in report["results"]]
    assert report["model"] == "mixer_s16_224" and {r["mode"] for r in report["results"]} == {"float32", "int8"}
