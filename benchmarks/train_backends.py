"""Training images/s of one model with `model.fit` on each Keras 3 backend, beside timm, side by side in one run.

    python -m benchmarks.train_backends --torch-python /path/to/python-with-timm   # → results/train_backends.{json,md}

Per round and precision (float32; mixed bfloat16 where the CPU computes bf16 natively), every runner trains the
same variant at batch 32 (AdamW, cross-entropy, random images) in a fresh process, back to back, the order
reversed every other round: Keras on TensorFlow (plain graph and XLA), on JAX (jitted) and on PyTorch (eager, and
`jit_compile=True`: the whole step under `torch.compile`), and timm with the same step in PyTorch, eager and under
`torch.compile` (`torch.autocast` for bf16, `benchmarks/peers_timm.py`). Keras on PyTorch runs in the Python of
`--torch-python` (keras installed beside torch and timm), so that both use the same torch build. A figure is the
median step time after the warm-up steps (compilation included there), timed by a callback. Ratios to timm are
formed within each round; the summary is their median (range). The targets: on the fastest backend, float32 >= 1.0x
timm and mixed bf16 >= 0.8x timm's autocast (both eager timm, as `benchmarks.run` measures it).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import keras_mlp
from benchmarks import procs
from benchmarks.measure import machine
from benchmarks.rounds import PRECISIONS, default_precisions, summarize
from keras_mlp.backend import keras
from keras_mlp.io import write_atomic

RUNNERS = {  # name: (KERAS_BACKEND, compile's jit_compile)
    "tensorflow": ("tensorflow", False),
    "tensorflow_xla": ("tensorflow", True),
    "jax": ("jax", True),
    "torch": ("torch", False),
    "torch_compile": ("torch", True),
}
PEERS = {"timm": [], "timm_compile": ["--compile"]}  # name: peers_timm.py options
TARGETS = {"float32": 1.0, "mixed_bfloat16": 0.8}  # fastest backend / timm, per precision


def fit_throughput(name: str, precision: str, steps: int, warmup: int, jit_compile: bool, batch: int = 32) -> dict:
    """Images/s of `model.fit` on this process's backend (`KERAS_BACKEND`): median step time after `warmup` steps."""
    keras.config.set_dtype_policy(precision)
    model = keras_mlp.create_model(name)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), jit_compile=jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * (warmup + steps), *model.input_shape[1:]), dtype=np.float32)
    y = rng.integers(0, model.output_shape[-1], len(x))
    ends = []

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch_index, logs=None):
            ends.append(time.perf_counter())

    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[StepClock()])
    times = [b - a for a, b in zip([start, *ends], ends)][warmup:]
    median = statistics.median(times)
    return {"backend": keras.backend.backend(), "precision": precision, "jit_compile": jit_compile,
            "images_per_s": batch / median, "median_ms": median * 1e3, "min_ms": min(times) * 1e3,
            "max_ms": max(times) * 1e3, "steps": len(times), "warmup_s": ends[warmup - 1] - start}


def run_one(runner: str, name: str, precision: str, steps: int, warmup: int, torch_python: str) -> dict:
    """One runner's figure in a fresh process; {'skipped': reason} when it fails (e.g. timm not installed)."""
    if runner in PEERS:
        out = procs.peers("peers_timm.py", torch_python, [name, "--only", "train", "--train-steps", str(steps),
                                                          "--precision", precision, *PEERS[runner]])
        figure = ((out.get(name) or {}).get("train_batch32") or {}).get("images_per_s")
        return {"images_per_s": figure, "versions": {k: out.get(k) for k in ("torch", "timm")}} if figure else out
    backend, jit = RUNNERS[runner]
    python = torch_python if backend == "torch" else sys.executable
    argv = [python, "-m", "benchmarks.train_backends", "--worker", name, "--precisions", precision,
            "--steps", str(steps), "--warmup", str(warmup), *(["--jit"] if jit else [])]
    try:
        return procs.run_json(argv, env={"KERAS_BACKEND": backend})
    except RuntimeError as err:
        return {"skipped": str(err)}


def rounds(name: str, runners: list[str], precisions, rounds_: int, steps: int, warmup: int,
           torch_python: str) -> dict:
    """Every runner per round and precision, order reversed every other round; ratios to timm within a round."""
    per_round = []
    for i in range(rounds_):
        row = {}
        for precision in precisions:
            order = runners if i % 2 == 0 else runners[::-1]
            row[precision] = {r: run_one(r, name, precision, steps, warmup, torch_python) for r in order}
        per_round.append(row)
        print(f"round {i + 1}/{rounds_} done: " + json.dumps({p: {r: v.get("images_per_s") for r, v in row[p].items()}
                                                              for p in row}), flush=True)
    summary = {}
    for precision in precisions:
        figures = {r: [row[precision][r].get("images_per_s") for row in per_round] for r in runners}
        measured = {r: v for r, v in figures.items() if all(v)}
        entry = {r: summarize(v) for r, v in measured.items()}
        for peer in PEERS:
            if peer in measured:
                for r in measured:
                    if r not in PEERS:
                        entry[r][f"vs_{peer}"] = summarize([a / b for a, b in zip(measured[r], measured[peer])])
        ours = {r: entry[r]["median"] for r in measured if r not in PEERS}
        if ours:
            fastest = max(ours, key=ours.get)
            entry["fastest"] = fastest
            if "vs_timm" in entry[fastest]:
                entry["target"] = {"bound": TARGETS[precision], "value": entry[fastest]["vs_timm"]["median"],
                                   "met": entry[fastest]["vs_timm"]["median"] >= TARGETS[precision]}
        summary[precision] = entry
    return {"per_round": per_round, "summary": summary}


def _ratio(ratio: dict | None) -> str:
    return f"{ratio['median']:.2f} ({ratio['min']:.2f}–{ratio['max']:.2f})" if ratio else ""


def markdown(result: dict) -> str:
    """Images/s per runner and precision (median of rounds, range), ratios to timm eager and compiled, targets."""
    m, args = result["machine"], result["args"]
    lines = [f"Training images/s of {args['variant']} with `model.fit` per Keras backend beside timm, batch 32, AdamW "
             f"({args['rounds']} alternating rounds, {args['steps']} timed steps each after {args['warmup']} warm-up "
             f"steps; median of rounds, range). Machine: {m['cpu']} ({', '.join(m['isa'])}), {m['cores']} cores; "
             f"{m['date']}.", "", "| runner | precision | images/s | / timm | / timm compiled |",
             "|---|---|---|---|---|"]
    for precision, entry in result["summary"].items():
        for runner in result["args"]["runners"]:
            if runner not in entry:
                lines.append(f"| {runner} | {precision} | not measured | | |")
                continue
            e = entry[runner]
            lines.append(f"| {runner} | {precision} | {e['median']:.1f} ({e['min']:.1f}–{e['max']:.1f}) | "
                         f"{_ratio(e.get('vs_timm'))} | {_ratio(e.get('vs_timm_compile'))} |")
    lines.append("")
    for precision, entry in result["summary"].items():
        t = entry.get("target")
        lines.append(f"- {precision}: fastest Keras backend {entry.get('fastest', '–')}" + (
            f", {t['value']:.2f}× timm (target >= {t['bound']}: {'met' if t['met'] else 'not met'})" if t else
            " (timm not measured)"))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="mixer_s16_224")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per figure")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (compilation) per figure")
    parser.add_argument("--runners", nargs="+", default=[*RUNNERS, *PEERS], choices=[*RUNNERS, *PEERS])
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=None,
                        help="default: float32, plus mixed_bfloat16 where the CPU has native bf16")
    parser.add_argument("--torch-python", default=sys.executable, help="a Python with torch + timm for the timm peer")
    parser.add_argument("--out", default=str(procs.ROOT / "benchmarks" / "results"))
    parser.add_argument("--worker", metavar="VARIANT", help=argparse.SUPPRESS)  # one figure, this process's backend
    parser.add_argument("--jit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(fit_throughput(args.worker, args.precisions[0], args.steps, args.warmup, args.jit)))
        return 0
    result = {"machine": machine(), "args": {"variant": args.variant, "rounds": args.rounds, "steps": args.steps,
                                             "warmup": args.warmup, "runners": args.runners}}
    precisions = args.precisions or default_precisions(result["machine"]["isa"])
    result.update(rounds(args.variant, args.runners, precisions, args.rounds, args.steps, args.warmup,
                         args.torch_python))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "train_backends.json", json.dumps(result, indent=2) + "\n")
    write_atomic(out / "train_backends.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
