"""The issue's targets measured side by side: ours and each peer in alternating rounds of fresh processes.

A shared 2-core VM drifts by 20% and more over minutes, so figures taken one after the other (the main table) can
favour whoever ran in a quiet spell. Here every round times ours and the peer back to back, in alternating order,
and each ratio is formed within its round; the summary is the median of the per-round ratios with their range.
The fraction of the matmul peak uses the NumPy peak measured in the same process as the TFLite latencies.
"""
from __future__ import annotations

import statistics
import sys
import tempfile

from benchmarks import procs

TARGETS = {  # key: (what, comparison, bound)
    "f32_vs_timm_1t": ("TFLite float32 batch-1 latency / timm, 1 thread", "<=", 0.8),
    "f32_vs_timm_2t": ("TFLite float32 batch-1 latency / timm, 2 threads", "<=", 0.8),
    "f32_peak_1t": ("TFLite float32 fraction of the NumPy matmul peak, 1 thread", ">=", 0.75),
    "f32_peak_2t": ("TFLite float32 fraction of the NumPy matmul peak, 2 threads", ">=", 0.75),
    "int8_speedup_1t": ("int8 speed-up over float32 TFLite, 1 thread", ">=", 2.5),
    "int8_speedup_2t": ("int8 speed-up over float32 TFLite, 2 threads", ">=", 2.5),
    "int8_size": ("int8 file size / float32 file size", "<=", 0.27),
    "train_vs_kecam": ("training images/s / keras_cv_attention_models, float32", ">=", 1.2),
    "train_vs_timm": ("training images/s / timm, float32", ">=", 1.0),
    "train_vs_kecam_bf16": ("training images/s / keras_cv_attention_models, both mixed_bfloat16", ">=", 1.2),
    "train_vs_timm_bf16": ("training images/s / timm, both mixed bfloat16 (torch.autocast)", ">=", 1.0),
}
PRECISIONS = ("float32", "mixed_bfloat16")
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")


def default_precisions(isa: list[str]) -> tuple[str, ...]:
    """float32, plus mixed_bfloat16 where the CPU computes in bf16 natively (emulated bf16 is nobody's choice)."""
    return PRECISIONS if any(flag in isa for flag in NATIVE_BF16) else PRECISIONS[:1]


def summarize(values: list[float]) -> dict:
    """Median, min and max of per-round values, and the values."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": values}


def _alternate(round_index: int, ours, peers: list):
    """Run ours and the peers back to back; ours first in even rounds, last in odd ones."""
    order = [ours, *peers] if round_index % 2 == 0 else [*peers, ours]
    results = {id(fn): fn() for fn in order}
    return results[id(ours)], [results[id(fn)] for fn in peers]


def latency_rounds(name: str, rounds: int, runs: int, torch_python: str) -> dict:
    """float32/int8 TFLite latency and the NumPy peak (one process) against timm's eager latency, per round."""
    run_json, peers = procs.run_json, procs.peers
    with tempfile.TemporaryDirectory() as tmp:
        made = run_json([sys.executable, "-m", "benchmarks.ours", name, "--only", "tflite", "--modes", "float32",
                         "int8", "--out", tmp])
        files = made["files"]
        per_round = []
        for i in range(rounds):
            ours, (timm,) = _alternate(
                i, lambda: run_json([sys.executable, "-m", "benchmarks.tflite_time", files["float32"]["path"],
                                     files["int8"]["path"], "--runs", str(runs)]),
                [lambda: peers("peers_timm.py", torch_python, [name, "--only", "latency", "--runs", str(runs)])])
            per_round.append({"ours": ours, "timm": timm})
            print(f"latency round {i + 1}/{rounds} done", flush=True)
    out = {"flops": made["flops"], "bytes": {m: f["bytes"] for m, f in files.items()}, "per_round": per_round}
    targets = {"int8_size": {"value": files["int8"]["bytes"] / files["float32"]["bytes"]}}
    for t in ("1t", "2t"):
        f32 = [r["ours"][files["float32"]["path"]][t]["median_ms"] for r in per_round]
        i8 = [r["ours"][files["int8"]["path"]][t]["median_ms"] for r in per_round]
        peak = [r["ours"]["numpy_peak_gflops"][t] for r in per_round]
        targets[f"f32_peak_{t}"] = summarize([made["flops"] / (ms * 1e6) / p for ms, p in zip(f32, peak)])
        targets[f"int8_speedup_{t}"] = summarize([a / b for a, b in zip(f32, i8)])
        timm = [(r["timm"].get(name) or {}).get(f"batch1_{t}") for r in per_round]
        if all(timm):
            targets[f"f32_vs_timm_{t}"] = summarize([a / b["median_ms"] for a, b in zip(f32, timm)])
        out[f"f32_{t}_ms"], out[f"int8_{t}_ms"] = summarize(f32), summarize(i8)
    return {**out, "targets": targets}


def train_rounds(name: str, rounds: int, steps: int, torch_python: str, precisions=PRECISIONS) -> dict:
    """Training images/s (batch 32, AdamW) of ours, kecam and timm, back to back per round and precision.

    Ours is the faster of the plain graph and XLA (`jit_compile`, the trainer's default): which one wins depends on
    the CPU (XLA's own GEMMs against oneDNN's), and both are kept in `per_round`.
    """
    run_json, peers = procs.run_json, procs.peers

    def images_per_s(result: dict) -> float | None:
        return ((result.get(name) or {}).get("train_batch32") or {}).get("images_per_s")

    per_round = []
    for i in range(rounds):
        row = {}
        for precision in precisions:
            opts = ["--only", "train", "--train-steps", str(steps), "--precision", precision]
            ours, (kecam, timm) = _alternate(
                i, lambda: run_json([sys.executable, "-m", "benchmarks.ours", name, *opts]),
                [lambda: peers("peers_kecam.py", sys.executable, [name, *opts], env={"TF_USE_LEGACY_KERAS": "1"}),
                 lambda: peers("peers_timm.py", torch_python, [name, *opts])])
            plain, xla = (ours["train"][k]["images_per_s"] for k in ("batch32", "batch32_xla"))
            row[precision] = {"ours": max(plain, xla), "ours_plain": plain, "ours_xla": xla,
                              "kecam": images_per_s(kecam), "timm": images_per_s(timm)}
        per_round.append(row)
        print(f"training round {i + 1}/{rounds} done", flush=True)
    out = {"per_round": per_round, "precisions": list(precisions), "images_per_s": {}, "targets": {}}
    for precision in precisions:
        runs = [r[precision] for r in per_round]
        out["images_per_s"][precision] = {who: summarize([r[who] for r in runs]) for who in ("ours", "kecam", "timm")
                                          if all(r[who] for r in runs)}
        for peer in ("kecam", "timm"):
            if all(r[peer] for r in runs):
                suffix = "" if precision == "float32" else "_bf16"
                out["targets"][f"train_vs_{peer}{suffix}"] = summarize([r["ours"] / r[peer] for r in runs])
    return out


def markdown(name: str, latency: dict | None, train: dict | None) -> str:
    """The targets table: value (median of per-round figures, range), bound, met or not."""
    found = {**((latency or {}).get("targets") or {}), **((train or {}).get("targets") or {})}
    rounds = len((latency or train or {}).get("per_round", []))
    lines = [f"Targets for {name}, side by side ({rounds} alternating rounds; median of per-round values, range):", "",
             "| target | value | bound | met |", "|---|---|---|---|"]
    for key, (what, op, bound) in TARGETS.items():
        if key not in found:
            lines.append(f"| {what} | not measured (peer missing or skipped) | {op} {bound} | – |")
            continue
        v = found[key]
        value = v.get("value", v.get("median"))
        spread = f" ({v['min']:.2f}–{v['max']:.2f})" if "min" in v else ""
        met = value <= bound if op == "<=" else value >= bound
        lines.append(f"| {what} | {value:.2f}{spread} | {op} {bound} | {'yes' if met else 'no'} |")
    if train:
        lines += ["", "Ours in training: the faster of the plain graph and XLA in each round (both in the JSON)."]
    if train and "mixed_bfloat16" not in train.get("precisions", PRECISIONS):
        lines += ["", f"mixed_bfloat16 training not measured: this CPU has none of {', '.join(NATIVE_BF16)}."]
    return "\n".join(lines) + "\n"
