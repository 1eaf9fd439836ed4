"""Peer figures from keras_cv_attention_models (needs tf_keras: run with TF_USE_LEGACY_KERAS=1).

`python benchmarks/peers_kecam.py VARIANT [VARIANT ...]` prints one JSON object: per variant, batch-1 and batch-32
Keras inference (tf.function) and training images/s (AdamW, batch 32, compiled train_on_batch).
"""
import json
import sys

import numpy as np
import tensorflow as tf
from keras_cv_attention_models import mlp_family

from benchmarks.measure import timed

MODELS = {"mixer_s16_224": "MLPMixerS16", "resmlp_12_224": "ResMLP12", "gmlp_s16_224": "GMLPS16"}


def main(names, runs=20, train_steps=5):
    import tf_keras as keras
    out = {}
    for name in names:
        if name not in MODELS:
            out[name] = None
            continue
        model = getattr(mlp_family, MODELS[name])(pretrained=None, classifier_activation=None)
        fn = tf.function(lambda images: model(images, training=False))
        res = {}
        for batch in (1, 32):
            x = tf.constant(np.random.default_rng(0).standard_normal((batch, 224, 224, 3), dtype=np.float32))
            res[f"batch{batch}"] = timed(lambda: fn(x).numpy(), runs if batch == 1 else max(3, runs // 4))
        model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x = np.random.default_rng(0).standard_normal((32, 224, 224, 3), dtype=np.float32)
        y = np.random.default_rng(1).integers(0, 1000, 32)
        stats = timed(lambda: model.train_on_batch(x, y), train_steps, warmup=2, min_warmup_s=0.5)
        res["train_batch32"] = {**stats, "images_per_s": 32 / (stats["median_ms"] / 1e3)}
        out[name] = res
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
