"""The main job: train, then export every TFLite mode with the parity gate (issue 4's `export.export_model`).

Used by `keras-mlp-train`; with no arguments it is the README's first command (small Mixer on `digits`).
"""
from __future__ import annotations

import os
import time

from training import data, workdir
from training.config import TrainConfig, UsageError
from training.trainer import Trainer


def run(config: TrainConfig, work_dir: str, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Train `config` in `work_dir`, then export (chief only, unless `config.export == "none"`); the report."""
    start = time.perf_counter()
    if config.export != "none":
        _check_modes(config.export)
    trainer = Trainer(config, work_dir, resume=resume, overwrite=overwrite)
    results = trainer.run()
    report = {"train": results}
    if config.export != "none" and trainer.chief:
        report["export"] = export(trainer, os.path.join(work_dir, "export"))
    report["total_seconds"] = time.perf_counter() - start
    return report


def _check_modes(modes: str) -> None:
    from export import ExportError
    from export.pipeline import resolve_modes

    try:
        resolve_modes(modes)
    except ExportError as err:
        raise UsageError(str(err)) from err


def export(trainer: Trainer, out_dir: str) -> dict:
    """Export the saved `model.keras` in `config.export` modes, gated on the held-out split; a summary."""
    import keras

    from export import ExportError, export_model

    config, pre = trainer.config, trainer.variant.preprocessing
    model = keras.saving.load_model(os.path.join(trainer.work_dir, workdir.MODEL))
    load = dict(image_size=model.image_size, mean=pre.mean, std=pre.std, batch_size=256, data_dir=config.data_dir,
                shuffle=False)
    train = data.load_dataset(config.dataset, "train", **load)
    test = data.load_dataset(config.dataset, "test", **load)
    try:
        summary = export_model(model, out_dir, config.export, train_data=train, eval_data=test,
                               class_names=trainer.info.class_names, mean=pre.mean, std=pre.std,
                               progress=bool(config.verbose))
    except ExportError as err:
        raise UsageError(f"Export failed: {err}") from err
    return {"passed": summary["passed"], "float_top1": summary["float_accuracy"], "files": summary["files"],
            "rejected": summary["rejected"], "report": summary["report"],
            "parity": {r["mode"]: r["parity"] for r in summary["results"]}}
