"""`keras-mlp-convert`: a thin CLI over `keras_mlp.create_model(name, weights=SRC)` that saves a `.keras` model.

    keras-mlp-convert Mixer-B_16.npz --model mixer_b16_224 --out mixer_b16.keras
    keras-mlp-convert resmlp_12_no_dist.pth --model resmlp_12_224 --out resmlp.keras --image-size 448
    keras-mlp-convert linear-tiny.safetensors --model ff_ti16_224 --out ff.keras --num-classes 10

Exit codes: 0 written; 2 bad input (unreadable or mismatched checkpoint, bad arguments, unwritable --out);
nothing is written then.
"""
from __future__ import annotations

import argparse
import sys

from training.overrides import parse_overrides

EXIT_BAD_INPUT = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="keras-mlp-convert", description=__doc__.split("\n")[0])
    p.add_argument("src", help="checkpoint: .npz (official Mixer), .safetensors, or .pth/.bin (needs torch)")
    p.add_argument("--model", required=True, help="registered variant, e.g. mixer_b16_224 (keras_mlp.list_models())")
    p.add_argument("--out", required=True, help="output .keras file")
    p.add_argument("--image-size", type=int, default=None, help="resize to this input size (keras_mlp.resize)")
    p.add_argument("--num-classes", type=int, default=None, help="fresh head with this many classes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="other constructor argument (JSON value), e.g. --set num_blocks=2")
    return p


def overrides_from(args) -> dict:
    overrides = dict(parse_overrides(args.set))
    if args.image_size is not None:
        overrides["image_size"] = args.image_size
    if args.num_classes is not None:
        overrides["num_classes"] = args.num_classes
    return overrides


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if not args.out.endswith(".keras"):
        print(f"keras-mlp-convert: error: --out must end with .keras, got {args.out!r}.", file=sys.stderr)
        return EXIT_BAD_INPUT
    import keras_mlp
    from keras_mlp.io import atomic_path
    try:
        model = keras_mlp.create_model(args.model, weights=args.src, **overrides_from(args))
    except (ValueError, TypeError, OSError, ImportError) as err:  # CheckpointError is a ValueError
        print(f"keras-mlp-convert: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with atomic_path(args.out) as tmp:
            model.save(tmp)
    except OSError as err:
        where = err.filename2 or err.filename  # os.replace names the temp file first, the target second
        detail = f"{err.strerror}: {where}" if err.strerror and where else str(err)
        print(f"keras-mlp-convert: error: cannot write {args.out} ({detail}). Choose an --out file path in a "
              "writable folder.", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{args.out}: {model.name} ({type(model).__name__}), input {model.image_size[0]}x{model.image_size[1]}, "
          f"{model.num_classes} classes, {model.count_params():,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
