"""A run SIGKILLed mid-epoch and started again with the same command ends bit-identical (--deterministic),
with the same history.csv."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np

from tests.backends import tensorflow_only
from tests.helpers import TINY_RUN as TINY

pytestmark = tensorflow_only("The tf.distribute trainer")

# 2 epochs of 11 steps with a checkpoint every 4 steps; drop path and mixup make the resume exercise the
# seed-generator state and per-batch augmentation too.
ARGS = [*TINY, "--epochs", "2", "--deterministic", "--set", "drop_path_rate=0.1", "--set", "mixup=0.2"]


def _command(work) -> list[str]:
    return [sys.executable, "-m", "training.cli", "--work-dir", str(work), *ARGS]


def _env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _weights(work) -> list[np.ndarray]:
    import keras

    return [np.asarray(w) for w in keras.saving.load_model(work / "model.keras").get_weights()]


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_command(whole), env=_env(), check=True, timeout=300, capture_output=True)

    proc = subprocess.Popen(_command(killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = killed / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and "ckpt-12" in state.read_text():  # mid-epoch 2 (steps 12..22)
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (killed / "results.json").exists()

    resumed = subprocess.run(_command(killed), env=_env(), timeout=300, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert re.search(r"Resuming .* at step (1[2-9]|2[01])/22 \(epoch 2/2\)", resumed.stdout), resumed.stdout[:500]
    for a, b in zip(_weights(whole), _weights(killed), strict=True):
        np.testing.assert_array_equal(a, b)
    # The interrupted epoch's mean loss and accuracy come out as in the uninterrupted run (running sums are
    # checkpointed with the step).
    assert (killed / "history.csv").read_text() == (whole / "history.csv").read_text()
