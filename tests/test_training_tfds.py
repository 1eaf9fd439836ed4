"""A tfds dataset end to end: tfds' own Cifar10 builder prepares it offline (its download step handed small
files in CIFAR's binary format, as tfds' builder tests do), then `keras-mlp-train --dataset cifar10 --data-dir`
trains on it, and the main job exports from it."""
from __future__ import annotations

import json
from unittest import mock

import keras
import numpy as np
import tensorflow_datasets as tfds

from export.parity import MIN_GATE_IMAGES
from tests.helpers import TINY_RUN as TINY
from training import cli

NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_binary(folder, per_file: int = MIN_GATE_IMAGES) -> None:  # the test file: the gate's minimum
    """cifar-10-batches-bin/: 5 train files and a test file of records (label byte, 3x32x32 pixel bytes)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = np.arange(per_file, dtype=np.uint8) % 10
        pixels = rng.integers(0, 40, (per_file, 3 * 32 * 32), dtype=np.uint8) + 20 * labels[:, None]
        (folder / name).write_bytes(np.concatenate([labels[:, None], pixels], axis=1).astype(np.uint8).tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(NAMES) + "\n")


def test_train_and_export_on_a_prepared_tfds_dataset(tmp_path):
    downloads, data_dir = tmp_path / "downloads", tmp_path / "tfds"
    _cifar_binary(downloads / "cifar-10-batches-bin")
    with mock.patch.object(tfds.download.DownloadManager, "download_and_extract", return_value=str(downloads)):
        tfds.builder("cifar10", data_dir=str(data_dir)).download_and_prepare()
    assert list(data_dir.glob("cifar10/*/dataset_info.json"))  # written by tfds' writer, with its tfrecord shards

    work = tmp_path / "run"
    args = [a for a in TINY if a not in ("--export", "none")]
    assert cli.main(["--work-dir", str(work), *args, "--dataset", "cifar10", "--data-dir", str(data_dir),
                     "--batch-size", "8", "--export", "float32"]) == 0
    results = json.loads((work / "results.json").read_text())
    assert results["dataset"] == "cifar10" and results["test_examples"] == MIN_GATE_IMAGES
    assert results["steps"] == 5 * MIN_GATE_IMAGES // 8
    assert keras.saving.load_model(work / "model.keras").class_names == tuple(NAMES)
    assert results["export"]["passed"] and set(results["export"]["files"]) == {"float32"}
    labels = (work / "export" / "mixer_s16_224_labels.txt").read_text().split()
    assert labels == NAMES
