"""Export report: `report.json` (everything), `report.md` (one table row per mode), `report.png` (size vs
latency, and accuracy, per mode)."""
from __future__ import annotations

import json
import os

from keras_mlp.io import atomic_path, write_atomic


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def runs_on(verified_on: dict | None) -> str:
    """'ai_edge_litert yes, mediapipe NO, gpu_delegate yes' from a result's `verified_on` (? when unknown)."""
    if not verified_on:
        return "–"
    return ", ".join(f"{name} {'?' if e['runs'] is None else 'yes' if e['runs'] else 'NO'}"
                     for name, e in verified_on.items())


def qat_line(summary: dict) -> str:
    """' QAT engine: keras (keras 3.15.1).' when a QAT mode ran, else ''."""
    info = next((r["qat"] for r in summary["results"] if r.get("qat")), None)
    if info is None:
        return ""
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return f" QAT engine: {info['qat_engine']} ({versions})."


def markdown(summary: dict) -> str:
    """The Markdown table of `summary` (from `export_model`)."""
    threads = next((list(r["latency_ms"]) for r in summary["results"] if r["latency_ms"]), [])
    head = ["mode", "size (KiB)", *[f"latency {t}T (ms)" for t in threads], "max abs", "cosine", "agreement",
            "accuracy", "runs on", "gate"]
    rows = [f"Model `{summary['model']}`, input {summary['input_shape']}, {summary['num_eval']} held-out images"
            f"; float Keras accuracy {_fmt(summary['float_accuracy'], '.2%')}." + qat_line(summary), "",
            "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["results"]:
        p = r["parity"] or {}  # None: the conversion failed
        size = None if r["size_bytes"] is None else r["size_bytes"] / 1024
        rows.append("| " + " | ".join([r["mode"], _fmt(size, ".1f"),
                                       *[_fmt(r["latency_ms"].get(t), ".3f") for t in threads],
                                       _fmt(p.get("max_abs"), ".2e"), _fmt(p.get("cosine"), ".5f"),
                                       _fmt(p.get("agreement"), ".2%"), _fmt(p.get("tflite_accuracy"), ".2%"),
                                       runs_on(r.get("verified_on")),
                                       "pass" if r["passed"] else "REJECTED: " + "; ".join(r["failures"])]) + " |")
    return "\n".join(rows) + "\n"


def plot(summary: dict, path: str) -> None:
    """Left: file size vs median 1-thread latency per mode (log scale). Right: accuracy (or top-1 agreement
    without labels) per mode, float Keras accuracy as a line; rejected modes in red (failed conversions are in
    the table only)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in summary["results"] if r["parity"] is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    if results:
        thread = next(iter(results[0]["latency_ms"]))
        labelled = results[0]["parity"]["tflite_accuracy"] is not None
        colors = ["tab:blue" if r["passed"] else "tab:red" for r in results]
        for i, r in enumerate(results):
            left.scatter(r["size_bytes"] / 1024, r["latency_ms"][thread], color=colors[i], edgecolors="k", s=50)
            left.annotate(r["mode"], (r["size_bytes"] / 1024, r["latency_ms"][thread]), fontsize=8,
                          textcoords="offset points", xytext=(5, 2 + 7 * (i % 3 - 1)))
        left.set_yscale("log")
        left.set_ylabel(f"latency, {thread} thread(s), median (ms)")
        scores = [100 * (r["parity"]["tflite_accuracy"] if labelled else r["parity"]["agreement"]) for r in results]
        right.barh([r["mode"] for r in results], scores, color=colors)
        if labelled and summary.get("float_accuracy") is not None:
            right.axvline(100 * summary["float_accuracy"], color="k", ls="--", label="float Keras")
            right.legend(loc="lower left", fontsize=8)
        right.set_xlim(max(0.0, min(scores) - 2), 100)
        right.invert_yaxis()
        right.set_xlabel("accuracy (%)" if labelled else "top-1 agreement with float (%)")
    left.set_xlabel("file size (KiB)")
    fig.suptitle(f"{summary['model']}: TFLite modes (red: rejected by the parity gate)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def write_report(summary: dict, out_dir: str) -> str:
    """Write report.json, report.md and report.png into `out_dir`; returns the report.json path."""
    path = os.path.join(out_dir, "report.json")
    write_atomic(os.path.join(out_dir, "report.md"), markdown(summary))
    plot(summary, os.path.join(out_dir, "report.png"))
    write_atomic(path, json.dumps({**summary, "report": "report.json"}, indent=2, default=str))
    return path
