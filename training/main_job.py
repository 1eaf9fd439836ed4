"""The main job: train, then export every TFLite mode with the parity gate (`export.pipeline.export_model`).

Used by `keras-mlp-train`; with no arguments it is the README's first command (small Mixer on `digits`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time

import keras

from export.datasets import load_splits
from export.errors import ExportError
from export.options import ExportOptions
from export.pipeline import export_model
from keras_mlp.io import write_atomic
from training import workdir
from training.config import TrainConfig, UsageError
from training.trainer import Trainer

# What `config.export_options` may set: the `ExportOptions` fields but those the main job sets itself (the modes
# from `config.export`, progress from `config.verbose`, the model's own preprocessing and class names).
EXPORT_OPTIONS = tuple(sorted({f.name for f in dataclasses.fields(ExportOptions)}
                              - {"modes", "progress", "preprocessing", "class_names"}))


def run(config: TrainConfig, work_dir: str, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Train `config` in `work_dir`, then export (chief only, unless `config.export == "none"`); the report."""
    start = time.perf_counter()
    if config.export != "none":
        export_options(config)
    trainer = Trainer(config, work_dir, resume=resume, overwrite=overwrite)
    exported_weights = _previous_weights(work_dir)
    results = trainer.run()
    out_dir = os.path.join(work_dir, "export")
    if trainer.chief and os.path.isdir(out_dir) and results["weights_sha256"] != exported_weights:
        shutil.rmtree(out_dir)  # files of the weights before this run: never left beside the new model.keras
    if config.export != "none" and trainer.chief:
        results["export"] = export(trainer, out_dir)
    results["total_seconds"] = time.perf_counter() - start
    if trainer.chief:
        write_atomic(os.path.join(work_dir, workdir.RESULTS), json.dumps(results, indent=2) + "\n")
    return results


def _previous_weights(work_dir: str) -> str | None:
    """The weights digest of the run that wrote `work_dir`'s results.json (and export/), if any."""
    try:
        with open(os.path.join(work_dir, workdir.RESULTS)) as f:
            return json.load(f).get("weights_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def summary(results: dict) -> str:
    """The figures printed at the end of a run."""
    n = results["test_examples"]
    lines = [f"{results['model']} on {results['dataset']}: held-out top-1 {results['test_top1']:.2%} "
             f"({round(results['test_top1'] * n)}/{n}), top-5 {results['test_top5']:.2%}, "
             f"loss {results['test_loss']:.4f}",
             _timing(results)]
    exported = results.get("export")
    if exported:
        lines.append("export (" + ("all passed" if exported["passed"] else "SOME REJECTED") + "): " + ", ".join(
            f"{mode} " + ("conversion failed" if p["tflite_accuracy"] is None else f"{p['tflite_accuracy']:.2%}")
            + ("" if p["passed"] else " REJECTED")
            for mode, p in exported["parity"].items()) + f"; report {exported['report_md']}")
    lines.append(f"work dir: {os.path.dirname(results['model_path']) or '.'}")
    return "\n".join(lines)


def _timing(results: dict) -> str:
    """Training time of the work dir (all runs) apart from this run's share and its wall time."""
    trained, this_run = results["train_seconds"], results["session_train_seconds"]
    wall = f"this run {results['total_seconds']:.1f} s wall"
    if not results["images_per_second"]:
        return f"training {trained:.1f} s in earlier runs (all {results['steps']} steps were done); {wall}"
    speed = f"{results['images_per_second']:.0f} images/s, {results['strategy']} x{results['replicas']}"
    if results.get("resumed_at_step"):
        return (f"training {trained:.1f} s in all runs, {this_run:.1f} s of it in this one from step "
                f"{results['resumed_at_step']} ({speed}); {wall}")
    return f"training {trained:.1f} s ({speed}); {wall}"


def export_options(config: TrainConfig) -> ExportOptions:
    """The export's `ExportOptions` from `config.export` and `config.export_options`, checked (names and values)
    before anything is trained, else `UsageError`."""
    unknown = sorted(set(config.export_options) - set(EXPORT_OPTIONS))
    if unknown:
        raise UsageError(f"Unknown export option(s) {unknown} in `export_options`. Known: {', '.join(EXPORT_OPTIONS)}; "
                         "e.g. --set export_options='{\"qat_epochs\":1}'.")
    try:
        return ExportOptions(modes=config.export, progress=bool(config.verbose), **config.export_options)
    except ExportError as err:
        raise UsageError(str(err)) from err


def export(trainer: Trainer, out_dir: str) -> dict:
    """Export the saved `model.keras` in `config.export` modes, gated on the held-out split; a summary."""
    config = trainer.config
    model = keras.saving.load_model(os.path.join(trainer.work_dir, workdir.MODEL))
    pre = model.preprocessing
    try:
        train, test, _ = load_splits(config.dataset, pre, model.image_size, data_dir=config.data_dir)
        summary = export_model(model, out_dir, export_options(config), train_data=train, eval_data=test)
    except ExportError as err:
        raise UsageError(f"Export failed: {err}") from err
    return {"passed": summary["passed"], "float_top1": summary["float_accuracy"], "files": summary["files"],
            "rejected": summary["rejected"], "report_md": os.path.join(out_dir, "report.md"),
            "parity": {r["mode"]: {k: (r["parity"] or {}).get(k)  # None: the conversion failed, see "failures"
                                   for k in ("tflite_accuracy", "agreement", "max_abs", "cosine")}
                       | {"passed": r["passed"], "size_bytes": r.get("size_bytes"), "failures": r["failures"]}
                       for r in summary["results"]}}
