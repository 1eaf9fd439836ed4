"""keras-mlp-eval: a .keras file and its exported .tflite evaluated on digits agree with the model's own
predictions; image files get their top-5 with class names; mismatches and unreadable files exit 2."""
from __future__ import annotations

import json

import numpy as np
import pytest

import keras_mlp
from keras_mlp.data import load_dataset
from tests.backends import tensorflow_only
from tests.helpers import tiny_model
from training import eval_cli

pytestmark = tensorflow_only("keras-mlp-eval (tf.data, TFLite)")

DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny digits Mixer trained for a few epochs (so accuracy is neither chance nor perfect), saved, and its
    float32 export."""
    import keras

    from export.options import ExportOptions
    from export.pipeline import export_model
    folder = tmp_path_factory.mktemp("eval")
    keras.utils.set_random_seed(0)
    # not the default crop and resize: the .tflite file must get them from its sidecar
    preprocessing = keras_mlp.Preprocessing((0.5,) * 3, (0.5,) * 3, crop_pct=1.0, interpolation="bilinear")
    model = tiny_model("mixer_s16_224", image_size=8, patch_size=2, num_classes=10, class_names=DIGITS,
                       preprocessing=preprocessing)
    load = dict(preprocessing=model.preprocessing, image_size=(8, 8))
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(load_dataset("digits", "train", batch_size=64, **load), epochs=2, verbose=0)
    model.save(folder / "model.keras")
    test = load_dataset("digits", "test", batch_size=360, **load)
    export_model(model, folder / "export", ExportOptions(modes="float32", latency_runs=1, threads=(1,), progress=False),
                 eval_data=test)
    images, labels = next(iter(test))
    logits = model.predict(images, verbose=0)
    return folder, model, float(np.mean(logits.argmax(1) == labels.numpy()))


def test_keras_and_tflite_files_give_the_models_own_accuracy(saved, tmp_path, capsys):
    folder, _, expected = saved
    assert 0.3 < expected < 1.0  # learnt something, and not every image right: the comparison can fail
    out = tmp_path / "eval.json"
    assert eval_cli.main([str(folder / "model.keras"), "--data", "digits", "--out", str(out), "--quiet"]) == 0
    keras_result = json.loads(out.read_text())
    assert keras_result["top1"] == pytest.approx(expected) and keras_result["examples"] == 360
    assert set(keras_result["per_class"]) == set(DIGITS) and keras_result["images_per_second"] > 0
    assert keras_result["top1"] <= keras_result["top5"] <= 1.0
    tflite = folder / "export" / "mixer_s16_224_float32.tflite"
    assert eval_cli.main([str(tflite), "--data", "digits", "--out", str(out), "--quiet"]) == 0
    tflite_result = json.loads(out.read_text())
    assert tflite_result["top1"] == pytest.approx(expected) and tflite_result["kind"] == "tflite"
    assert tflite_result["preprocessing"] == keras_result["preprocessing"]  # the model's own, from the sidecar
    assert (keras_result["preprocessing"]["crop_pct"], keras_result["preprocessing"]["interpolation"]) == (1.0,
                                                                                                          "bilinear")
    assert "top-1" in capsys.readouterr().out


def test_image_files_get_their_top5_with_class_names(saved, tmp_path, capsys):
    import tensorflow as tf
    folder, model, _ = saved
    pixels = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "digit.png"
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    assert eval_cli.main([str(folder / "model.keras"), "--images", str(path)]) == 0
    printed = capsys.readouterr().out
    expected = model.predict(model.preprocessing(pixels, (8, 8)).numpy()[None], verbose=0)[0]
    best = DIGITS[int(expected.argmax())]
    assert printed.startswith(f"{path}: {best} ") and printed.count("%") == 5


@pytest.mark.parametrize("case, message", [
    ("classes", "has 10 classes but the dataset has 2"),
    ("labels", "class 0 is 'zero' but the dataset's is '0'"),
    ("unreadable", "is not a readable image"),
    ("no_sidecar", "has no readable sidecar"),
    ("missing", "does not exist"),
])
def test_bad_input_exits_2(saved, tmp_path, capsys, case, message):
    folder, model, _ = saved
    argv = [str(folder / "model.keras"), "--data", "digits"]
    if case == "classes":
        for name in ("a", "b"):
            (tmp_path / "folder" / name).mkdir(parents=True)
            for i in range(3):
                import tensorflow as tf
                (tmp_path / "folder" / name / f"{i}.png").write_bytes(
                    tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy())
        argv = [str(folder / "model.keras"), "--data", str(tmp_path / "folder")]
    elif case == "labels":
        renamed = keras_mlp.MLPMixer.from_config({**model.get_config(), "class_names": ["zero", *DIGITS[1:]]})
        renamed.save(tmp_path / "renamed.keras")
        argv = [str(tmp_path / "renamed.keras"), "--data", "digits"]
    elif case == "unreadable":
        (tmp_path / "bad.jpg").write_bytes(b"not an image")
        argv = [str(folder / "model.keras"), "--images", str(tmp_path / "bad.jpg")]
    elif case == "no_sidecar":
        (tmp_path / "lonely.tflite").write_bytes((folder / "export" / "mixer_s16_224_float32.tflite").read_bytes())
        argv = [str(tmp_path / "lonely.tflite"), "--data", "digits"]
    elif case == "missing":
        argv = [str(tmp_path / "nothing.keras"), "--data", "digits"]
    assert eval_cli.main(argv) == 2
    assert message in capsys.readouterr().err
