"""tf.distribute: Mirrored over 2 logical CPUs matches one device; 2-worker MultiWorkerMirrored on 127.0.0.1."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.backends import tensorflow_only
from tests.helpers import TINY_RUN as TINY

pytestmark = tensorflow_only("The tf.distribute trainer")

MIRRORED = r"""
import glob, json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from training import cli
out, args = sys.argv[1], sys.argv[2:]
codes = [cli.main(["--work-dir", f"{out}/odd", *args, "--strategy", "mirrored", "--batch-size", "63"])]
for name in ("one", "mirrored"):
    codes.append(cli.main(["--work-dir", f"{out}/{name}", *args, "--strategy", name]))
def losses(name):
    event = glob.glob(f"{out}/{name}/logs/train/events*")[0]
    return [float(tf.make_ndarray(v.tensor)) for e in tf.compat.v1.train.summary_iterator(event)
            for v in e.summary.value if v.tag == "loss"]
print("RESULT", json.dumps({"codes": codes, "one": losses("one"), "mirrored": losses("mirrored"),
      "replicas": json.load(open(f"{out}/mirrored/results.json"))["replicas"]}))
"""


def _env(**extra) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **extra}
    env.pop("TF_CONFIG", None)
    return {**env, **extra}


def test_mirrored_two_logical_cpus_matches_one_device(tmp_path):
    args = [*TINY, "--epochs", "2"]
    proc = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path), *args], env=_env(), timeout=300,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["codes"] == [2, 0, 0] and result["replicas"] == 2
    assert "not divisible by the 2 replicas" in proc.stderr
    assert len(result["one"]) == 22
    assert result["mirrored"] == pytest.approx(result["one"], rel=1e-4, abs=1e-5)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_worker_multiworker_mirrored_trains_identical_weights(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    command = [sys.executable, "-m", "training.cli", "--work-dir", str(tmp_path / "run"), *TINY, "--epochs", "2",
               "--strategy", "multiworker"]
    procs = [subprocess.Popen(command, env=_env(TF_CONFIG=json.dumps({"cluster": cluster,
                                                                      "task": {"type": "worker", "index": i}})),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        outputs = [p.communicate(timeout=400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    reports = [json.loads(out.split("RESULTS ", 1)[1]) for out, _ in outputs]
    assert [r["replicas"] for r in reports] == [2, 2]
    assert reports[0]["strategy"] == "MultiWorkerMirroredStrategy"
    assert reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    assert os.path.exists(tmp_path / "run" / "results.json") and not os.path.exists(tmp_path / "run" / ".worker-1")
