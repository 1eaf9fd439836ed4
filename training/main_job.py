"""The main job: train, then export every TFLite mode with the parity gate (issue 4's `export.export_model`).

Used by `keras-mlp-train`; with no arguments it is the README's first command (small Mixer on `digits`).
"""
from __future__ import annotations

import os
import time

from training.config import TrainConfig
from training.trainer import Trainer


def run(config: TrainConfig, work_dir: str, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Train `config` in `work_dir`, then export (chief only, unless `config.export == "none"`); the report."""
    start = time.perf_counter()
    trainer = Trainer(config, work_dir, resume=resume, overwrite=overwrite)
    results = trainer.run()
    report = {"train": results}
    if config.export != "none" and trainer.chief:
        report["export"] = export(trainer, os.path.join(work_dir, "export"))
    report["total_seconds"] = time.perf_counter() - start
    return report


def export(trainer: Trainer, out_dir: str) -> dict:
    """Export the trained model with the export library; its report as a dict."""
    raise NotImplementedError
