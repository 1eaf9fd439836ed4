"""Export report: `report.json` (everything), `report.md` (one table row per mode), `report.png` (size vs
latency, marker colour = accuracy, one point per mode)."""
from __future__ import annotations

import json
import os

from export.convert import write_atomic


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown(summary: dict) -> str:
    """The Markdown table of `summary` (from `export_model`)."""
    threads = list(summary["results"][0]["latency_ms"]) if summary["results"] else []
    head = ["mode", "size (KiB)", *[f"latency {t}T (ms)" for t in threads], "max abs", "cosine", "agreement",
            "accuracy", "gate"]
    rows = [f"Model `{summary['model']}`, input {summary['input_shape']}, {summary['num_eval']} held-out images"
            f"; float Keras accuracy {_fmt(summary['float_accuracy'], '.2%')}.", "",
            "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["results"]:
        p = r["parity"]
        rows.append("| " + " | ".join([r["mode"], f"{r['size_bytes'] / 1024:.1f}",
                                       *[f"{r['latency_ms'][t]:.3f}" for t in threads], f"{p['max_abs']:.2e}",
                                       f"{p['cosine']:.5f}", f"{p['agreement']:.2%}",
                                       _fmt(p["tflite_accuracy"], ".2%"),
                                       "pass" if r["passed"] else "REJECTED: " + "; ".join(r["failures"])]) + " |")
    return "\n".join(rows) + "\n"


def plot(summary: dict, path: str) -> None:
    """Size (KiB) vs 1-thread latency per mode, colour = accuracy (agreement when no labels)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    results = summary["results"]
    if results:
        thread = next(iter(results[0]["latency_ms"]))
        xs = [r["size_bytes"] / 1024 for r in results]
        ys = [r["latency_ms"][thread] for r in results]
        cs = [r["parity"]["tflite_accuracy"] if r["parity"]["tflite_accuracy"] is not None
              else r["parity"]["agreement"] for r in results]
        points = ax.scatter(xs, ys, c=cs, cmap="viridis", s=60, edgecolors="k")
        fig.colorbar(points, ax=ax, label="accuracy" if results[0]["parity"]["tflite_accuracy"] is not None
                     else "top-1 agreement")
        for x, y, r in zip(xs, ys, results):
            ax.annotate(r["mode"] + ("" if r["passed"] else " (rejected)"), (x, y), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
        ax.set_ylabel(f"latency, {thread} thread(s) (ms, median)")
    ax.set_xlabel("file size (KiB)")
    ax.set_title(f"{summary['model']}: TFLite modes")
    fig.tight_layout()
    tmp = os.path.join(os.path.dirname(path), ".tmp_report.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def write_report(summary: dict, out_dir: str) -> str:
    """Write report.json, report.md and report.png into `out_dir`; returns the report.json path."""
    path = os.path.join(out_dir, "report.json")
    write_atomic(os.path.join(out_dir, "report.md"), markdown(summary))
    plot(summary, os.path.join(out_dir, "report.png"))
    write_atomic(path, json.dumps({**summary, "report": "report.json"}, indent=2, default=str))
    return path
