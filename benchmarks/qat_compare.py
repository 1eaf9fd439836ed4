"""Test accuracy of post-training int8, tfmot QAT and Keras-3 QAT on digits: `python -m benchmarks.qat_compare`.

Trains the small digits Mixer (the main job's trunk, `training/recipes/digits_mixer.py`, without augmentation) in
float, then reports held-out top-1 of: the float model; the int8 file of post-training quantisation
(`export.convert.to_tflite`, 256 calibration images); the int8 file of tfmot QAT (`export.qat`); the int8 file of
Keras-3 QAT (`keras_mlp.quantization`, converted with no representative dataset). The harder settings are low-bit
weights (`--weight-bits`, default 4 and 2, activations 8-bit), where post-training rounding costs accuracy and QAT
should win it back; no int8 file holds such weights, so those rows are the fake-quantised Keras model (what QAT
trains and a low-bit kernel would compute), before (PTQ: ranges from the same 256 images, no training) and after
QAT. (4-bit activations too, W4A4, measured 10% = chance both before and after 2 QAT epochs: every LayerNorm
intermediate at 4 bits is too coarse.)

Prints a markdown table; `--epochs`, `--qat-epochs`, `--weight-bits` and `--seeds` set the budget.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

RECIPE = dict(image_size=16, patch_size=2, num_blocks=4, hidden_dim=48, tokens_mlp_dim=32, channels_mlp_dim=96)


def arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    images, labels = zip(*((np.asarray(x), np.asarray(y)) for x, y in dataset))
    return np.concatenate(images).astype(np.float32), np.concatenate(labels).astype(np.int64)


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(-1) == labels).mean())


def compile_for(model, lr: float):
    import keras
    model.compile(optimizer=keras.optimizers.Adam(lr), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def run(seed: int, epochs: int, qat_epochs: int, qat_lr: float,
        weight_bits=(4, 2)) -> list[tuple[str, str, float, float]]:
    """[(setting, what is evaluated, top-1, seconds)] of one seed."""
    import keras

    import keras_mlp
    from export.convert import to_tflite
    from export.datasets import load_splits
    from export.litert import run as run_tflite
    from export.qat import quantization_aware_training
    from keras_mlp.quantization import calibrate, int8_converter, quantize_aware

    keras.utils.set_random_seed(seed)
    model = keras_mlp.create_model("mixer_s16_224", num_classes=10, **RECIPE)
    train, test, _ = load_splits("digits", model.preprocessing, model.image_size)
    (x, y), (xt, yt) = arrays(train), arrays(test)
    calibration = x[:256]
    rows = []

    def timed(setting, what, fn):
        start = time.perf_counter()
        rows.append((setting, what, fn(), time.perf_counter() - start))

    def train_float():
        compile_for(model, 3e-3).fit(x, y, batch_size=64, epochs=epochs, shuffle=True, verbose=0)
        return top1(model.predict(xt, verbose=0), yt)
    timed("float32", "Keras model", train_float)
    timed("PTQ int8", "int8 file (256 calibration images)",
          lambda: top1(run_tflite(to_tflite(model, "int8", calibration, progress=False), xt), yt))
    timed("tfmot QAT int8", f"int8 file ({qat_epochs} QAT epochs)", lambda: top1(run_tflite(
        quantization_aware_training(model, x, y, calibration, epochs=qat_epochs, learning_rate=qat_lr,
                                    seed=seed, progress=False).files["qat"], xt), yt))

    def keras_qat(weight_bits=8, activation_bits=8, fit=True, convert=True):
        qat = quantize_aware(model, weight_bits=weight_bits, activation_bits=activation_bits)
        calibrate(qat, calibration)
        if fit:
            compile_for(qat, qat_lr).fit(x, y, batch_size=32, epochs=qat_epochs, shuffle=True, verbose=0)
        if convert:
            return top1(run_tflite(int8_converter(qat).convert(), xt), yt)
        return top1(qat.predict(xt, verbose=0), yt)
    timed("Keras-3 QAT int8", f"int8 file ({qat_epochs} QAT epochs, no representative data)", keras_qat)
    for bits in ((b, 8) for b in weight_bits):
        setting = f"W{bits[0]}A{bits[1]}"
        timed(f"PTQ {setting}", "fake-quant Keras model (256 calibration images)",
              lambda b=bits: keras_qat(*b, fit=False, convert=False))
        timed(f"Keras-3 QAT {setting}", f"fake-quant Keras model ({qat_epochs} QAT epochs)",
              lambda b=bits: keras_qat(*b, convert=False))
    return rows


def markdown(results: dict[int, list], seeds) -> str:
    lines = ["| setting | evaluated | test top-1 (%) | seconds |", "|---|---|---|---|"]
    for i, (setting, what, _, _) in enumerate(results[seeds[0]]):
        accs = [100 * results[s][i][2] for s in seeds]
        acc = f"{np.mean(accs):.2f}" + (f" ± {np.std(accs):.2f}" if len(seeds) > 1 else "")
        lines.append(f"| {setting} | {what} | {acc} | {np.mean([results[s][i][3] for s in seeds]):.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="float training epochs (default 15)")
    parser.add_argument("--qat-epochs", type=int, default=2, help="QAT fine-tuning epochs (default 2)")
    parser.add_argument("--qat-lr", type=float, default=1e-4, help="QAT learning rate (default 1e-4)")
    parser.add_argument("--weight-bits", type=int, nargs="*", default=[4, 2],
                        help="weight bits of the harder settings (8-bit activations; default 4 2)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (mean ± std over them)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = {seed: run(seed, args.epochs, args.qat_epochs, args.qat_lr, args.weight_bits) for seed in args.seeds}
    print(markdown(results, args.seeds))
    print(f"\ndigits, 1437 train / 360 test images, Mixer {RECIPE}; {args.epochs} float epochs, {args.qat_epochs} QAT "
          f"epochs at lr {args.qat_lr}, seeds {args.seeds}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
