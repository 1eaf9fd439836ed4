"""`keras-mlp-train`: train a zoo model with a named recipe; with no arguments, the main job.

    keras-mlp-train                                   # small Mixer on the bundled digits, then export + parity
    keras-mlp-train --recipe digits_resmlp --work-dir runs/resmlp
    keras-mlp-train --recipe imagenet_resmlp --data-dir /data/tfds --strategy mirrored
    keras-mlp-train --model gmlp_ti16_224 --dataset cifar10 --download --image-size 32 --set model.patch_size=4
    keras-mlp-train --recipe finetune_mixer --weights mixer_b16_224.goog_in21k --dataset photos/  # fine-tune

Bad input (unknown model, dataset or recipe, a config value of the wrong type or one that does not apply, data
absent offline, an image folder with fewer than 2 classes or a file that is not an image, a malformed TF_CONFIG,
no TPU for --strategy tpu, batch not divisible by the replicas, image size not a multiple of the patch, a work
directory holding another config or a folder that is not a work directory, a corrupt checkpoint, a NaN loss)
prints one message and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from training.config import MIXED_PRECISION, OPTIMIZERS, STRATEGIES, UsageError

DEFAULT_RECIPE = "digits_mixer"
# Flags that set the config field of the same name (dashes as underscores).
FLAGS = ("model", "weights", "dataset", "data_dir", "epochs", "batch_size", "lr", "strategy", "seed",
         "mixed_precision", "optimizer", "export", "checkpoint_every")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="keras-mlp-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"named recipe (default {DEFAULT_RECIPE}); "
                   "--list-recipes shows them")
    p.add_argument("--work-dir", help="run directory (default runs/<recipe>, or runs/<model> when --model "
                   "replaces the recipe's model)")
    p.add_argument("--resume", action="store_true", help="continue a work dir even if its config differs")
    p.add_argument("--overwrite", action="store_true", help="start a work dir (a folder with our config.json) "
                   "again from scratch")
    p.add_argument("--model", help="registry name (keras_mlp.list_models()); the recipe's model overrides "
                   "apply only to the recipe's model")
    p.add_argument("--weights", metavar="PRESET|PATH|URL", help="fine-tune from this checkpoint (its architecture; "
                   "a fresh head unless the dataset's class names are its own: --set head=fresh|keep forces it)")
    p.add_argument("--dataset", help="'digits', an image folder (root/<class>/*.jpg), or a tfds name; the "
                   "recipe's augment applies only to the recipe's dataset (else auto)")
    p.add_argument("--data-dir", help="tensorflow_datasets directory")
    p.add_argument("--download", action="store_true", default=None, help="let tfds download and prepare data")
    p.add_argument("--image-size", type=int, help="input size (sets model.image_size)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size (split over replicas)")
    p.add_argument("--lr", type=float, help="learning rate (scaled by batch / lr_batch_size when that is set)")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--strategy", choices=STRATEGIES)
    p.add_argument("--mixed-precision", choices=MIXED_PRECISION[1:])
    p.add_argument("--seed", type=int)
    p.add_argument("--deterministic", action="store_true", default=None,
                   help="op determinism: a resumed run ends bit-identical to an uninterrupted one")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--export", help="export modes after training ('all', 'none', or comma-separated)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field (JSON values); model.ARG=V overrides a model argument")
    p.add_argument("--list-recipes", action="store_true", help="print the recipes and exit")
    p.add_argument("--show-recipe", action="store_true", help="print the recipe's documentation and config")
    return p


def fields_of(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The config fields the flags set, and the `--set` assignments (`--image-size` first, so --set wins)."""
    fields = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    fields.update({name: True for name in ("download", "deterministic") if getattr(args, name)})
    sizes = [] if args.image_size is None else [f"model.image_size={args.image_size}"]
    return fields, sizes + args.set


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from training import main_job, recipes  # TensorFlow: only once --help has been answered

    try:
        if args.list_recipes:
            print("\n".join(recipes.list_recipes()))
            return 0
        config = recipes.resolve(args.recipe, *fields_of(args))
        if args.show_recipe:
            print(recipes.describe(args.recipe), "\n", config.to_json(), sep="\n")
            return 0
        work_dir = args.work_dir or recipes.default_work_dir(args.recipe, config)
        results = main_job.run(config, work_dir, resume=args.resume, overwrite=args.overwrite)
    except UsageError as err:
        print(f"keras-mlp-train: error: {err}", file=sys.stderr)
        return 2
    if results.get("export"):
        with open(results["export"]["report_md"]) as f:
            print(f.read())
    print(main_job.summary(results))
    print("RESULTS " + json.dumps(results))
    return 0 if not results.get("export") or results["export"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
