"""The measurements behind the parity gate's default thresholds (`export.parity.DEFAULT_THRESHOLDS`).

    python -m benchmarks.gate_calibration --out /tmp/gate     # ~40 min on 2 CPU cores

For each family representative, two models: the test suite's tiny one (32×32, 2 blocks, 5 classes, every weight
drawn at random as the tests do, gated on 64 random images with random labels) and a small one trained on digits
(16×16, patch 4, 4 blocks, width 64; gated on the 360 held-out digits). Each is exported in every mode with
`export.pipeline.export_model` and every gate figure is recorded, pass or fail. `--kinds full` adds the family at
its registered size (224×224, 1000 classes, random weights at the init scale, 32 random images; float32, float16,
dynamic and int8): float error grows with depth and width. Last, the defect the gate must catch: a float16 file
of a digits model whose head is zeroed (the same scores for every image), gated against the model. Writes
OUT/figures.json and prints the per-mode worst cases (export/README.md quotes them).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

import keras_mlp
from export.convert import to_tflite
from export.modes import MODES
from export.options import ExportOptions
from export.parity import DEFAULT_THRESHOLDS, check_parity
from export.pipeline import export_model
from keras_mlp.backend import keras
from keras_mlp.data import load_dataset
from keras_mlp.io import write_atomic

FAMILIES = ("mixer_s16_224", "resmlp_12_224", "gmlp_s16_224", "ff_ti16_224")
FIGURES = ("scale", "max_rel", "mean_rel", "typical_rel", "cosine", "spread", "agreement", "flips", "forgiven",
           "flip_margins", "float_accuracy", "tflite_accuracy")
WORST = {"max_rel": max, "mean_rel": max, "typical_rel": max, "cosine": min, "spread": min, "agreement": min,
         "accuracy_drop": max}


def family_args(name: str, **sizes) -> dict:
    """Constructor overrides of a small `name` model; Mixer gets its token/channel MLP widths."""
    args = dict(sizes)
    if keras_mlp.get_variant(name).family is keras_mlp.MLPMixer:
        args.update(tokens_mlp_dim=sizes["hidden_dim"] // 2, channels_mlp_dim=sizes["hidden_dim"] * 2)
    return args


def tiny_random(name: str, seed: int = 0):
    """The tests' tiny model with every weight drawn at random (head included); 64 random images, random labels."""
    patch = {32: 16, 16: 8, 14: 8, 8: 4}[keras_mlp.get_variant(name).kwargs["patch_size"]]
    model = keras_mlp.create_model(name, **family_args(name, image_size=32, patch_size=patch, num_blocks=2,
                                                       hidden_dim=32, num_classes=5))
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0.0, 0.1, v.shape).astype("float32") + (1.0 if "gamma" in v.path else 0.0))
    data = np.random.default_rng(1)
    images = data.normal(size=(64, 32, 32, 3)).astype("float32")
    labels = data.integers(0, 5, 64)
    return model, (images, labels), (images, labels)


def full_size(name: str, seed: int = 0):
    """The registered variant at 224×224 with every weight random (N(0, 0.02), LayerNorm gammas around 1)."""
    model = keras_mlp.create_model(name)
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(0.0, 0.02, v.shape).astype("float32") + (1.0 if "gamma" in v.path else 0.0))
    images = np.random.default_rng(1).normal(size=(32, *model.input_shape[1:])).astype("float32")
    return model, images, images


def digits_arrays(model, split: str):
    ds = load_dataset("digits", split, preprocessing=model.preprocessing, image_size=(16, 16), batch_size=2048,
                      shuffle=False)
    images, labels = next(iter(ds))
    return images.numpy(), labels.numpy()


def digits_trained(name: str, epochs: int, seed: int = 0):
    """A small `name` model trained on digits (AdamW), and its (train, test) arrays."""
    keras.utils.set_random_seed(seed)
    model = keras_mlp.create_model(name, **family_args(name, image_size=16, patch_size=4, num_blocks=4,
                                                       hidden_dim=64, num_classes=10))
    train, test = digits_arrays(model, "train"), digits_arrays(model, "test")
    model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(*train, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    return model, train, test


def figures(report: dict) -> dict:
    """The gate figures of one file; `accuracy_drop` as gated: below float, one image per forgiven flip deducted."""
    out = {k: report[k] for k in FIGURES}
    if report["float_accuracy"] is not None:  # labelled gate images
        drop = report["float_accuracy"] - report["tflite_accuracy"]
        out["accuracy_drop"] = drop - report["forgiven"] / report["num_images"]
    return out


def zero_head_defect(model, test) -> dict:
    """Gate figures of a float16 file whose head is zeroed (constant logits) against the intact model."""
    broken = type(model).from_config(model.get_config())
    broken.set_weights(model.get_weights())
    for v in broken.weights:
        if v.path.startswith("head"):
            v.assign(np.zeros(v.shape, "float32"))
    report = check_parity(model, to_tflite(broken, "float16", progress=False), *test, mode="float16")
    return {**figures(report.to_dict()), "failures": report.failures}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=30, help="digits training epochs")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--kinds", nargs="+", default=["tiny", "digits"], choices=["tiny", "digits", "full"])
    parser.add_argument("--modes", default=None,
                        help="modes to export (e.g. int8,int8_uint8); default every mode, float32..int8 at full size")
    parser.add_argument("--also", nargs="*", default=[], help="figures.json of other runs to include in the table")
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = json.loads((out / "figures.json").read_text()) if (out / "figures.json").exists() else {}
    options = ExportOptions(latency_runs=1, threads=(1,), progress=False)
    makers = {"tiny": tiny_random, "digits": lambda name: digits_trained(name, args.epochs), "full": full_size}
    for name in args.families:
        for kind in args.kinds:
            key = f"{name}/{kind}"
            if key in results:
                continue
            model, train, test = makers[kind](name)
            modes = args.modes or ("float32,float16,dynamic,int8" if kind == "full" else "all")
            summary = export_model(model, out / key.replace("/", "_"), dataclasses.replace(options, modes=modes),
                                   train_data=train, eval_data=test)
            results[key] = {r["mode"]: {**figures(r["parity"]), "passed": r["passed"], "failures": r["failures"]}
                            for r in summary["results"] if r["parity"]}
            results[key]["float_accuracy"] = summary["float_accuracy"]
            results[key]["num_images"] = summary["num_eval"]
            if kind == "digits":
                results[key]["zero_head_float16"] = zero_head_defect(model, test)
            write_atomic(out / "figures.json", json.dumps(results, indent=1))
            print(key, "done", flush=True)
    merged = dict(results)
    for path in args.also:
        other = json.loads(Path(path).read_text())
        merged.update({f"{key} ({Path(path).parent.name})": value for key, value in other.items()})
    print(table(merged))
    return results


def table(results: dict) -> str:
    """Per mode and figure: the default threshold, the worst value over the calibration models (tiny and digits;
    which one) and the margin between them (threshold / worst for bounds, (1 - threshold) / (1 - worst) for
    floors), then the worst of the full-size check models, which must pass too."""
    lines = ["| mode | figure | threshold | worst measured (model) | margin | full size, worst |",
             "|---|---|---|---|---|---|"]
    for mode in MODES:
        limits = DEFAULT_THRESHOLDS[mode]
        for key, pick in WORST.items():
            found = {group: [(r[mode][key], model) for model, r in results.items() if ("/full" in model) == group
                             and isinstance(r.get(mode), dict) and r[mode].get(key) is not None]
                     for group in (False, True)}
            if not found[False]:
                continue
            (value, model), check = pick(found[False]), pick(found[True])[0] if found[True] else None
            bound = limits.get({"typical_rel": "flip_margin"}.get(key, key))
            if key == "typical_rel":  # the band that file forgives with: 2 × typical_rel, capped by flip_margin
                value, check, key = 2 * value, None if check is None else 2 * check, "2 × typical_rel"
            if bound is None:
                margin = "–"
            elif pick is max:
                margin = f"{bound / value:.3g}×" if value > 0 else "∞"
            else:  # a floor: how many times further from 1 the threshold is than the worst value
                margin = (f"{(1 - bound) / (1 - value):.3g}×" if value < 1 else "∞") if bound < 1 else "–"
            digits = ".3g" if pick is max else ".7g"  # floors sit close to 1
            lines.append(f"| {mode} | {key} | {'–' if bound is None else f'{bound:.10g}'} | {value:{digits}} ({model}) "
                         f"| {margin} | {'–' if check is None else f'{check:{digits}}'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
