"""--overwrite starts again only a folder that keras-mlp-train wrote (its config.json); any other folder is
refused with exit 2 and nothing in it is deleted."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import TINY_RUN as TINY
from tests.helpers import subprocess_env
from training import cli

# What a user's folder (a home directory, a project) may hold under the names a work directory uses.
USER_FILES = {"logs/today.log": "mine", "checkpoints/weights.h5": "mine", "export/slides.pdf": "mine",
              "model.keras": "mine", "history.csv": "mine", "results.json": "mine", "notes.txt": "mine"}


def _tree(root) -> dict:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("config", [None, '{"name": "my-app", "version": 2}', "[1, 2]", "not json"])
def test_overwrite_refuses_a_folder_that_is_not_a_work_dir(tmp_path, capsys, config):
    for name, text in {**USER_FILES, **({"config.json": config} if config else {})}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    before = _tree(tmp_path)
    assert cli.main(["--work-dir", str(tmp_path), *TINY, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is not a keras-mlp-train work directory" in err and "nothing was deleted" in err
    assert _tree(tmp_path) == before


def test_overwrite_keeps_files_that_are_not_outputs_of_a_run(tmp_path, capsys):
    work = tmp_path / "run"
    work.mkdir()
    (work / "config.json").write_text(json.dumps({"model": "mixer_s16_224", "epochs": 1}))  # ours, another run
    (work / "notes.txt").write_text("mine")
    assert cli.main(["--work-dir", str(work), *TINY, "--overwrite"]) == 0
    assert (work / "notes.txt").read_text() == "mine" and (work / "results.json").exists()
    assert json.loads((work / "config.json").read_text())["batch_size"] == 128


def test_legacy_keras_environment_is_refused(tmp_path):
    """Under TF_USE_LEGACY_KERAS=1 keras_mlp builds tf_keras models, which the Keras 3 trainer cannot train: exit 2
    with the fix, nothing written (before, a leaked variable made a resumed run silently differ)."""
    work = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "training.cli", "--work-dir", str(work), *TINY], capture_output=True,
                          text=True, timeout=300, env=subprocess_env(TF_USE_LEGACY_KERAS="1"))
    assert done.returncode == 2 and "env -u TF_USE_LEGACY_KERAS" in done.stderr, done.stderr[-2000:]
    assert not work.exists()
