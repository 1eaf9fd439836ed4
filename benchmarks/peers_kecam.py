"""Peer figures from keras_cv_attention_models (needs tf_keras: run with TF_USE_LEGACY_KERAS=1).

`python benchmarks/peers_kecam.py VARIANT [VARIANT ...] [--only latency|train]` prints one JSON object: per variant,
batch-1 and batch-32 Keras inference (tf.function) and training images/s (AdamW, batch 32, compiled train_on_batch).
"""
import json

import numpy as np
import tensorflow as tf
from keras_cv_attention_models import mlp_family

from benchmarks.measure import peer_parser, timed

MODELS = {"mixer_s16_224": "MLPMixerS16", "resmlp_12_224": "ResMLP12", "gmlp_s16_224": "GMLPS16"}


def latency(model, runs: int) -> dict:
    fn = tf.function(lambda images: model(images, training=False))
    res = {}
    for batch in (1, 32):
        x = tf.constant(np.random.default_rng(0).standard_normal((batch, 224, 224, 3), dtype=np.float32))
        res[f"batch{batch}"] = timed(lambda: fn(x).numpy(), runs if batch == 1 else max(3, runs // 4))
    return res


def train(model, steps: int) -> dict:
    import tf_keras as keras
    model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).standard_normal((32, 224, 224, 3), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 1000, 32)
    stats = timed(lambda: model.train_on_batch(x, y), steps, warmup=2, min_warmup_s=0.5)
    return {"train_batch32": {**stats, "images_per_s": 32 / (stats["median_ms"] / 1e3)}}


def main(argv=None):
    args = peer_parser(__doc__.splitlines()[0],
                       precision_help="tf_keras global dtype policy, set before the model is built").parse_args(argv)
    import tf_keras

    tf_keras.mixed_precision.set_global_policy(args.precision)
    out = {}
    for name in args.names:
        if name not in MODELS:
            out[name] = None
            continue
        model = getattr(mlp_family, MODELS[name])(pretrained=None, classifier_activation=None)
        res = {} if args.only == "train" else latency(model, args.runs)
        out[name] = res if args.only == "latency" else {**res, **train(model, args.train_steps)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
