"""The files of an export folder: where a mode's file lands (deployable or under rejected/), which files an earlier
export wrote (told by its report and its sidecars, so nothing else is ever touched), and quarantine.

    OUT/<name>_<mode>.tflite + <name>_<mode>.json (sidecar)       passed its gate
    OUT/rejected/<name>_<mode>.REJECTED.tflite + .REJECTED.json   failed it (the .json is its gate result)
    OUT/<name>_labels.txt, report.json, report.md, report.png
"""
from __future__ import annotations

import json
import os

from export.modes import MODES
from keras_mlp.io import write_atomic

REPORTS = ("report.json", "report.md", "report.png")
SIDECAR_KEYS = {"model", "mode", "input", "output", "labels", "labels_file"}  # what `export.metadata.sidecar` writes
RESULT_KEYS = {"mode", "passed", "failures"}  # what a rejected result holds


def accepted(out_dir: str, stem: str) -> tuple[str, str]:
    """(.tflite, sidecar .json) of a file that passed its gate."""
    return os.path.join(out_dir, f"{stem}.tflite"), os.path.join(out_dir, f"{stem}.json")


def rejected(out_dir: str, stem: str) -> tuple[str, str]:
    """(.tflite, gate result .json) of a file that failed its gate, under rejected/."""
    return tuple(os.path.join(out_dir, "rejected", f"{stem}.REJECTED{ext}") for ext in (".tflite", ".json"))


def _json(path: str) -> dict | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_sidecar(data: dict | None) -> bool:
    """Whether a parsed .json is a sidecar that export wrote."""
    return bool(data) and set(data) >= SIDECAR_KEYS and data.get("mode") in MODES


def sidecar_of(tflite: str) -> tuple[str, dict | None]:
    """(path, contents if export wrote it) of the sidecar .json beside a .tflite."""
    path = (tflite[: -len(".tflite")] if tflite.endswith(".tflite") else tflite) + ".json"
    data = _json(path)
    return path, data if is_sidecar(data) else None


def written_before(out_dir: str) -> set[str]:
    """Paths (relative to `out_dir`) of the files an earlier export wrote there: those its report.json lists, every
    deployable .tflite with an export sidecar, every rejected/ file with its gate result, and the labels files the
    sidecars name. Files export did not write are never among them."""
    found: set[str] = set()
    report = _json(os.path.join(out_dir, "report.json"))
    if report and isinstance(report.get("results"), list):
        found |= {name for name in REPORTS if os.path.exists(os.path.join(out_dir, name))}
        for result in report["results"]:
            if isinstance(result, dict) and isinstance(result.get("file"), str):  # its .tflite or .json
                found |= {result["file"], result["file"].rsplit(".", 1)[0] + ".json"}
        if isinstance(report.get("model"), str):
            found.add(f"{report['model']}_labels.txt")
    for entry in os.scandir(out_dir) if os.path.isdir(out_dir) else []:
        if entry.name.endswith(".json") and is_sidecar(data := _json(entry.path)):
            found |= {entry.name, entry.name[: -len(".json")] + ".tflite", os.path.basename(data["labels_file"])}
    folder = os.path.join(out_dir, "rejected")
    for entry in os.scandir(folder) if os.path.isdir(folder) else []:
        data = _json(entry.path) if entry.name.endswith(".REJECTED.json") else None
        if data and set(data) >= RESULT_KEYS and data["mode"] in MODES:
            found |= {f"rejected/{entry.name}", f"rejected/{entry.name[: -len('.json')]}.tflite"}
    return {path for path in found if os.path.isfile(os.path.join(out_dir, path))}


def remove(out_dir: str, paths) -> list[str]:
    """Remove these files (relative to `out_dir`, written by export); returns the ones removed."""
    removed = []
    for path in sorted(paths):
        full = os.path.join(out_dir, path)
        if os.path.isfile(full):
            os.remove(full)
            removed.append(path)
    return removed


def quarantine(tflite: str, result: dict) -> str:
    """Move a .tflite that failed its gate to rejected/<stem>.REJECTED.tflite beside `result` (its gate result, as
    export writes it) and remove its export sidecar: nothing calls it deployable any more. Returns the new path."""
    folder, name = os.path.split(os.path.abspath(tflite))
    stem = name[: -len(".tflite")] if name.endswith(".tflite") else name
    target, report = rejected(folder, stem)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    write_atomic(report, json.dumps({**result, "file": os.path.relpath(target, folder)}, indent=2, default=str))
    os.replace(tflite, target)
    sidecar, data = sidecar_of(tflite)
    if data is not None:
        os.remove(sidecar)
    return target
