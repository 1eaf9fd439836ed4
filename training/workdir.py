"""The work directory of a run: resolved config, checkpoints, TensorBoard logs, CSV history, model, results.

    work_dir/config.json      resolved TrainConfig (a different one is refused unless --resume/--overwrite)
    work_dir/checkpoints/     tf.train.CheckpointManager: model, optimizer (+ EMA), step, time, epoch sums
    work_dir/logs/            TensorBoard (tf.summary) scalars
    work_dir/history.csv      one row per epoch
    work_dir/model.keras      the final model;  work_dir/results.json  held-out metrics and timings
    work_dir/architecture.json  a fine-tuned model's Keras config (training.finetune), rebuilt when resuming
Files are written atomically (temporary file + os.replace).
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import io
import json
import os
import shutil

from keras_mlp.io import write_atomic
from training.config import TrainConfig, UsageError

CONFIG, HISTORY, RESULTS, MODEL = "config.json", "history.csv", "results.json", "model.keras"
ARCHITECTURE = "architecture.json"
OUTPUTS = (CONFIG, HISTORY, RESULTS, MODEL, ARCHITECTURE, "checkpoints", "logs", "export")


class CorruptCheckpointError(UsageError):
    """A checkpoint exists but cannot be restored; it is left in place."""


def check_work_dir(work_dir: str, config: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> bool:
    """Validate `work_dir` for `config` without writing; True when it holds a run to continue.

    The same config (runtime fields aside) continues; a different one is refused unless `resume`
    (continue with the new config, e.g. more epochs) or `overwrite` (start again). A folder with other
    files that is not a work directory (no config.json of ours) is refused, with `overwrite` too: it only
    ever clears the outputs of a run.
    """
    if resume and overwrite:
        raise UsageError("Pass either --resume or --overwrite, not both.")
    if os.path.exists(work_dir) and not os.path.isdir(work_dir):
        raise UsageError(f"Work directory {work_dir!r} is a file. Pass another --work-dir.")
    path = os.path.join(work_dir, CONFIG)
    if not os.path.exists(path):
        stray = [f for f in os.listdir(work_dir) if not f.startswith(".")] if os.path.isdir(work_dir) else []
        if stray:
            raise UsageError(f"{work_dir!r} is not a keras-mlp-train work directory: it is not empty and holds no "
                             f"{CONFIG} (found {', '.join(sorted(stray)[:5])}); nothing was deleted. Pass an empty "
                             "or new --work-dir.")
        return False
    saved = _read_config(path)
    if overwrite:
        return False
    try:
        saved = TrainConfig.from_dict(saved).identity()
    except (ValueError, TypeError) as err:
        raise UsageError(f"{path} is not a valid config ({err}). Pass --overwrite to start again.") from err
    current = config.identity()
    if saved != current and not resume:
        diff = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in sorted(set(saved) | set(current))
                         if saved.get(k) != current.get(k))
        raise UsageError(f"Work directory {work_dir!r} holds a different config ({diff}). Pass --resume to "
                         "continue it with the new config, --overwrite to start again, or another --work-dir.")
    return True


def _read_config(path: str) -> dict:
    """The JSON object of a work directory's config.json; a `UsageError` when the file is not ours (not a JSON
    object of `TrainConfig` fields), since then the folder is not a work directory."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    try:
        with open(path) as f:
            saved = json.load(f)
        ours = isinstance(saved, dict) and saved and set(saved) <= known
        problem = None if ours else "not a JSON object of TrainConfig fields"
    except (OSError, ValueError) as err:
        problem = f"unreadable: {err}"
    if problem:
        raise UsageError(f"{os.path.dirname(path) or '.'!r} is not a keras-mlp-train work directory: its {CONFIG} is "
                         f"not a training config ({problem}); nothing was deleted. Pass an empty or new --work-dir.")
    return saved


def prepare_work_dir(work_dir: str, config: TrainConfig, *, overwrite: bool = False, chief: bool = True) -> None:
    """Clear the outputs of the run before when overwriting (config.json is replaced last, atomically, so the
    folder stays recognisable as a work directory throughout), then write config.json (chief only)."""
    if not chief:
        return
    if overwrite:
        for name in (n for n in OUTPUTS if n != CONFIG):
            target = os.path.join(work_dir, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
    write_atomic(os.path.join(work_dir, CONFIG), config.to_json() + "\n")


def restore(checkpoint, manager, optional=None) -> int:
    """Restore the latest checkpoint of `manager` into `checkpoint` (every object must be found) and `optional`
    (what is found); the step restored (0 if none)."""
    latest = manager.latest_checkpoint
    if latest is None:
        return 0
    try:
        checkpoint.restore(latest).assert_existing_objects_matched().expect_partial()  # `optional`'s values aside
        if optional is not None:
            optional.restore(latest).expect_partial()
    except Exception as err:  # DataLossError, NotFoundError, AssertionError, ...: all mean "unusable"
        files = ", ".join(sorted(glob.glob(latest + ".*"))) or latest
        raise CorruptCheckpointError(
            f"Checkpoint {latest} cannot be restored ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
            f"Files kept: {files}. Move them away to resume from an older checkpoint, or pass --overwrite "
            "to start again.") from err
    return int(checkpoint.step.numpy())


def write_history(work_dir: str, rows: list[dict]) -> None:
    """Rewrite history.csv from `rows` (one dict per epoch)."""
    if not rows:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(os.path.join(work_dir, HISTORY), buffer.getvalue())


def read_history(work_dir: str, before_epoch: int) -> list[dict]:
    """Rows of history.csv for epochs < `before_epoch` (what a resumed run keeps)."""
    path = os.path.join(work_dir, HISTORY)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["epoch"]) < before_epoch]
