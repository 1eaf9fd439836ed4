"""`keras-mlp-eval`: evaluate a model on a dataset split, or classify image files (timm's `validate.py`).

    keras-mlp-eval runs/digits_mixer/model.keras --data digits
    keras-mlp-eval runs/digits_mixer/export/mixer_s16_224_int8.tflite --data digits --out eval.json
    keras-mlp-eval model.keras --images cat.jpg dog.png          # top-5 classes of each image
    keras-mlp-eval resmlp_12_224.fb_in1k --data imagenet2012 --data-dir /data/tfds

A `.keras` file loads after `import keras_mlp` (done here); a `.tflite` file needs its sidecar `.json` (written by
keras-mlp-export) for its preprocessing and labels. Exit codes: 0 done; 2 bad input (unreadable file, class count
or label mismatch, wrong input size, unknown dataset).
"""
from __future__ import annotations

import argparse
import json
import sys

EXIT_BAD_INPUT = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="keras-mlp-eval", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a .keras file, a .tflite file (with its sidecar .json), or a registry name/preset")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="'digits', an image folder (root/<class>/*.jpg) or a prepared tfds name")
    source.add_argument("--images", nargs="+", metavar="FILE", help="classify these image files instead")
    p.add_argument("--split", default="test", choices=("train", "test"), help="dataset split (test: test/validation)")
    p.add_argument("--data-dir", help="tensorflow_datasets directory")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, help="evaluate at this input size (a Keras model is resized)")
    p.add_argument("--crop-pct", type=float, help="override the model's centre-crop fraction")
    p.add_argument("--interpolation", help="override the model's resize interpolation (e.g. bilinear)")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> dict:
    """The evaluation (or classification) `args` ask for; `EvaluationError`/`ValueError` on bad input."""
    from tqdm.auto import tqdm

    from keras_mlp.data import dataset_info, load_dataset
    from training.evaluate import EvaluationError, check_labels, classify_files, evaluate, load_classifier
    if args.batch_size <= 0:
        raise EvaluationError(f"--batch-size must be a positive integer, got {args.batch_size}.")
    classifier = load_classifier(args.model, image_size=args.image_size, crop_pct=args.crop_pct,
                                 interpolation=args.interpolation)
    if args.images:
        return {"model": classifier.name, "images": classify_files(classifier, args.images)}
    info = dataset_info(args.data, data_dir=args.data_dir)
    check_labels(classifier, info.class_names)
    data = load_dataset(args.data, args.split, preprocessing=classifier.preprocessing,
                        image_size=classifier.image_size, batch_size=args.batch_size, shuffle=False,
                        data_dir=args.data_dir)
    total = info.num_test if args.split == "test" else info.num_train
    with tqdm(total=total, unit="img", desc=f"{classifier.name} on {info.name}", disable=args.quiet) as bar:
        results = evaluate(classifier, data, info.class_names, progress=bar.update)
    return {**results, "dataset": info.name, "split": args.split, "image_size": list(classifier.image_size),
            "preprocessing": classifier.preprocessing.get_config()}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # before TensorFlow is imported: --help is instant
    try:
        results = run(args)
    except (ValueError, OSError) as err:  # EvaluationError, CheckpointError and DataUnavailableError included
        print(f"keras-mlp-eval: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if "images" in results:
        for item in results["images"]:
            print(item["file"] + ": " + ", ".join(f"{t['class']} {t['probability']:.1%}" for t in item["top"]))
    else:
        top_k = next(k for k in results if k.startswith("top") and k != "top1")
        print(f"{results['model']} on {results['dataset']} ({results['split']}, {results['examples']} images): "
              f"top-1 {results['top1']:.2%}, {top_k} {results[top_k]:.2%}, loss {results['loss']:.4f}, "
              f"{results['images_per_second']:.0f} images/s")
    if args.out:
        from keras_mlp.io import write_atomic
        write_atomic(args.out, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
