"""One command for every speed and memory figure: `python -m benchmarks.run` (see README "Benchmarks").

Measures, in one run on this machine: the float32 matmul peak; per variant at 224×224 Keras inference, TFLite
float32/float16/dynamic/int8 latency through ai_edge_litert (1 and 2 threads), training images/s; the same
figures from timm (PyTorch CPU) and keras_cv_attention_models when installed, with ours/theirs ratios; peak RSS of
training and export. Writes `benchmarks/results/latest.{json,md}` (machine and date recorded) and prints the table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.measure import machine, matmul_peak, peak_rss_mib
from benchmarks.ours import TFLITE_MODES, int8_gemm_ceiling
from benchmarks.procs import ROOT, peers, run_json
from benchmarks.report import markdown
from benchmarks.rounds import PRECISIONS, default_precisions, latency_rounds, train_rounds

VARIANTS = ("mixer_s16_224", "resmlp_12_224", "gmlp_s16_224", "ff_ti16_224")


MEMORY_TRAIN = """
import numpy as np, keras_mlp, keras
model = keras_mlp.create_model({name!r})
model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.zeros(({batch}, 224, 224, 3), np.float32); y = np.zeros({batch}, np.int64)
for _ in range(2):
    model.train_on_batch(x, y)
result = {{"what": "train {batch} images/step, AdamW", "variant": {name!r}, "params": model.count_params()}}
"""
MEMORY_EXPORT = """
import keras_mlp
from export.convert import to_tflite
model = keras_mlp.create_model({name!r})
result = {{"what": "export float32 TFLite", "variant": {name!r}, "bytes": len(to_tflite(model, "float32"))}}
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--modes", nargs="+", default=list(TFLITE_MODES), choices=TFLITE_MODES)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per latency figure (median, min-max)")
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--torch-python", default=sys.executable,
                        help="a Python with torch + timm for the timm peer (skipped if it has none)")
    parser.add_argument("--memory-variant", default="mixer_l16_224", help="variant of the peak-RSS probes")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the side-by-side target figures")
    parser.add_argument("--target-variant", default="mixer_s16_224", help="variant of the side-by-side targets")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=None,
                        help="training precisions of the side-by-side rounds (default: float32, plus mixed_bfloat16 "
                             "where the CPU has native bf16)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["peers", "memory", "targets"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)

    results = {"machine": machine(), "matmul": matmul_peak(), "variants": {}}
    print(f"matmul peak: {results['matmul']}", flush=True)
    results["int8_ceiling"] = int8_gemm_ceiling(runs=max(50, args.runs))  # ms-scale op: more runs
    print(f"int8 GEMM speed-up: {results['int8_ceiling']['speedup']}", flush=True)
    for name in args.variants:  # one fresh process per variant: converters and compiled graphs do not pile up
        results["variants"][name] = run_json([sys.executable, "-m", "benchmarks.ours", name, "--runs", str(args.runs),
                                              "--train-steps", str(args.train_steps), "--modes", *args.modes])
        print(f"{name}: done", flush=True)
    if "peers" not in args.skip:
        results["timm"] = peers("peers_timm.py", args.torch_python, args.variants)
        results["kecam"] = peers("peers_kecam.py", sys.executable, args.variants, env={"TF_USE_LEGACY_KERAS": "1"})
    if "targets" not in args.skip:
        results["targets"] = {
            "variant": args.target_variant,
            "latency": latency_rounds(args.target_variant, args.rounds, args.runs, args.torch_python),
            "train": train_rounds(args.target_variant, args.rounds, args.train_steps, args.torch_python,
                                  args.precisions or default_precisions(results["machine"]["isa"]))}
    if "memory" not in args.skip:
        results["memory"] = [peak_rss_mib(MEMORY_TRAIN.format(name=args.memory_variant, batch=8)),
                             peak_rss_mib(MEMORY_EXPORT.format(name=args.memory_variant))]
    table = markdown(results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from keras_mlp.io import write_atomic  # imports TensorFlow: only now, after the measuring children ran
    for suffix, text in ((".json", json.dumps(results, indent=1)), (".md", table)):
        write_atomic(out / f"latest{suffix}", text)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
