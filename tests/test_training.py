"""training/: data contract, recipe plumbing, a short run's outputs, and every bad input (CLI exit 2)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import keras_mlp
from keras_mlp.data import build_pipeline, dataset_info, load_dataset
from keras_mlp.data.augment import Augmenter
from keras_mlp.preprocessing import Preprocessing
from tests.conftest import fail_conversion
from tests.helpers import TINY_RUN as TINY
from training import cli
from training.config import UsageError
from training.recipes import default_work_dir, resolve


def test_digits_contract():
    info = dataset_info("digits")
    assert (info.num_classes, info.num_train, info.num_test) == (10, 1437, 360)
    images, labels = next(iter(load_dataset("digits", "test", image_size=(16, 16), preprocessing=Preprocessing(),
                                            batch_size=400)))
    assert images.shape == (360, 16, 16, 3) and labels.dtype.name == "int32"
    x = images.numpy()
    np.testing.assert_array_equal(x[..., 0], x[..., 2])  # grey replicated into RGB
    assert x.min() == -1.0 and x.max() == pytest.approx(1.0)  # 0..16 scaled to 0..255, then normalised
    assert np.bincount(labels.numpy(), minlength=10).min() >= 35  # stratified


def test_augmentation_is_a_function_of_seed_epoch_and_position():
    def epoch(skip, epoch=2, seed=1):
        ds = build_pipeline("digits", "train", image_size=(8, 8), preprocessing=Preprocessing(), batch_size=64,
                            augmenter=Augmenter("digits", mixup_alpha=0.2, cutmix_alpha=1.0), seed=seed,
                            epoch=epoch, skip_batches=skip, shuffle=True, drop_remainder=True, one_hot=10)
        return [x.numpy() for x, _ in ds]

    full, resumed = epoch(0), epoch(5)
    assert len(full) == 22 and len(resumed) == 17
    for a, b in zip(full[5:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0], epoch(0, epoch=3)[0])


def test_short_run_writes_work_dir(tmp_path, capsys):
    work = tmp_path / "run"
    assert cli.main(["--work-dir", str(work), *TINY]) == 0
    results = json.loads((work / "results.json").read_text())
    assert results["steps"] == 11 and results["replicas"] == 1 and 0 <= results["test_top1"] <= 1
    assert {"config.json", "history.csv", "model.keras", "checkpoints", "logs"} <= set(os.listdir(work))
    assert os.listdir(work / "logs" / "train")
    # The same command again continues the finished run instead of refusing it, and says that it is finished.
    assert cli.main(["--work-dir", str(work), *TINY]) == 0
    out = capsys.readouterr().out
    assert "has already trained all 11 steps (1 epoch)" in out and "Resuming" not in out
    again = json.loads((work / "results.json").read_text())
    assert again["train_seconds"] == results["train_seconds"] and again["session_train_seconds"] == 0
    assert again["images_per_second"] is None and f"training {results['train_seconds']:.1f} s in earlier runs" in out
    # A different config is refused and the work dir is left as it was.
    before = (work / "config.json").read_text()
    assert cli.main(["--work-dir", str(work), *TINY, "--lr", "0.1"]) == 2
    assert "holds a different config (lr: 0.003 -> 0.1)" in capsys.readouterr().err
    assert (work / "config.json").read_text() == before
    # A corrupt checkpoint is named and kept.
    data = sorted((work / "checkpoints").glob("ckpt-11.data*"))[0]
    data.write_bytes(b"garbage")
    assert cli.main(["--work-dir", str(work), *TINY]) == 2
    err = capsys.readouterr().err
    assert "ckpt-11 cannot be restored" in err and str(data) in err and data.read_bytes() == b"garbage"
    # --overwrite starts again from scratch.
    assert cli.main(["--work-dir", str(work), *TINY, "--overwrite"]) == 0
    assert data.read_bytes() != b"garbage" and json.loads((work / "results.json").read_text())["steps"] == 11


@pytest.mark.parametrize("args, message", [
    (["--model", "mixer_q16"], "Unknown model 'mixer_q16'.*Choose from.*mixer_b16_224"),
    (["--dataset", "no_such_set"], "Unknown dataset 'no_such_set'. Choose 'digits'.*cifar10"),
    (["--recipe", "digits_mixr"], "Unknown recipe 'digits_mixr'. Did you mean 'digits_mixer'"),
    (["--set", "model.image_size=9"], "Image size 9x9 is not divisible by `patch_size`=2"),
    (["--set", "nonsense=1"], r"Unknown config key\(s\) \['nonsense'\]"),
    (["--set", "lr=abc"], r"`lr` must be float, got 'abc'. Pass e.g. --set lr=0.001"),
    (["--set", 'label_smoothing="x"'], r"`label_smoothing` must be float, got 'x'"),
    (["--set", "epochs=true"], r"`epochs` must be int, got True"),
    (["--set", "rand_augment=5"], r"`rand_augment` must be list or null, got 5. Pass e.g. --set rand_augment=\[2,9\]"),
    (["--set", "rand_augment=[2,9]"], r"`rand_augment` applies to natural-image augmentation only.*'digits'"),
    (["--set", "label_smoothing=1.5"], r"`label_smoothing` must be in \[0, 1\), got 1.5"),
    (["--set", "optimizer=adam"], r"`optimizer` must be one of \"adamw\", \"lamb\", \"sgd\", got 'adam'"),
    (["--model", "gmlp_ti16_224"], r"Unknown argument\(s\) \['channels_mlp_dim', 'tokens_mlp_dim'\] for gmlp"),
    (["--strategy", "tpu"], r"--strategy tpu found no TPU \(ValueError: .*\)\. Run on a TPU VM, or set TPU_NAME"),
    (["--export", "float32", "--set", 'export_options={"qat_epochs":0}'], r"`qat_epochs` must be a positive integer"),
    (["--export", "float32", "--set", 'export_options={"modes":"int8"}'], r"Unknown export option\(s\) \['modes'\]"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    work = tmp_path / "run"
    assert cli.main(["--work-dir", str(work), *TINY, *args]) == 2
    import re
    assert re.search(message, capsys.readouterr().err)
    assert not work.exists()


def _resolve(*argv):
    args = cli.parser().parse_args(list(argv))
    return resolve(args.recipe, *cli.fields_of(args))


def test_recipe_model_overrides_apply_to_the_recipe_model_only():
    recipe = _resolve()
    assert recipe.model_overrides["tokens_mlp_dim"] == 32 and default_work_dir("digits_mixer", recipe) == \
        os.path.join("runs", "digits_mixer")
    assert _resolve("--model", "mixer_s16_224", "--set", "model.num_blocks=2").model_overrides == {
        **recipe.model_overrides, "num_blocks": 2}
    gmlp = _resolve("--model", "gmlp_ti16_224", "--dataset", "cifar10", "--image-size", "32", "--set",
                    "model.patch_size=4")
    assert gmlp.model_overrides == {"image_size": 32, "patch_size": 4} and gmlp.augment == "auto"
    assert gmlp.augmentation == "natural" and default_work_dir("digits_mixer", gmlp) == \
        os.path.join("runs", "gmlp_ti16_224")
    assert _resolve("--model", "mixer_b16_224").model_overrides == {}  # not a 48-wide 4-block Mixer
    assert _resolve("--recipe", "digits_gmlp", "--model", "gmlp_ti16_224").model_overrides["mlp_ratio"] == 2.0
    assert _resolve("--dataset", "cifar10", "--set", "augment=digits").augment == "digits"


def test_model_is_checked_before_a_download(tmp_path, capsys, monkeypatch):
    def no_download(*args):
        raise AssertionError("the dataset was fetched before the model config was checked")

    monkeypatch.setattr("keras_mlp.data.sources._tfds_builder", no_download)
    work = tmp_path / "run"
    assert cli.main(["--work-dir", str(work), "--model", "gmlp_ti16_224", "--dataset", "cifar10", "--download",
                     "--image-size", "32", "--set", "model.patch_size=5"]) == 2
    assert "32x32 is not divisible by `patch_size`=5" in capsys.readouterr().err and not work.exists()


def test_default_work_dir_names_the_model_when_it_replaces_the_recipes(tmp_path, monkeypatch):
    seen = []

    def run(config, work_dir, **kwargs):
        seen.append(work_dir)
        raise UsageError("stop")

    monkeypatch.setattr("training.main_job.run", run)
    for argv in ([], ["--model", "gmlp_ti16_224"], ["--recipe", "digits_gmlp"]):
        assert cli.main(argv) == 2
    assert seen == [os.path.join("runs", name) for name in ("digits_mixer", "gmlp_ti16_224", "digits_gmlp")]


def test_optimizer_names_agree():
    from training import config, optim

    assert set(config.OPTIMIZERS) == set(optim.OPTIMIZERS)


def test_every_optimizer_builds_without_weight_decay():
    from training import config, optim

    for name in config.OPTIMIZERS:  # AdamW wants a float: weight_decay=0 once crashed with a traceback
        optimizer = optim.make_optimizer(config.TrainConfig(optimizer=name, weight_decay=0.0), steps_per_epoch=10)
        assert not optimizer.weight_decay


def test_dataset_absent_offline_fails_fast(tmp_path, capsys):
    work = tmp_path / "run"
    assert cli.main(["--work-dir", str(work), *TINY, "--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'cifar10' is not prepared under" in err and "Pass --download" in err
    assert not work.exists()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, capsys):
    work = tmp_path / "run"
    code = cli.main(["--work-dir", str(work), *TINY, "--lr", "1e30", "--checkpoint-every", "1",
                     "--set", "clip_norm=null", "--set", "warmup_epochs=0"])
    err = capsys.readouterr().err
    assert code == 2 and "Loss became" in err and "last good checkpoint" in err
    assert (work / "checkpoints" / "checkpoint").exists() and not (work / "results.json").exists()


def test_every_recipe_resolves_and_documents_its_command():
    import keras_mlp
    from training.config import TrainConfig
    from training.recipes import describe, get_recipe, list_recipes

    names = list_recipes()
    assert {f"{d}_{f}" for d in ("digits", "imagenet") for f in ("mixer", "resmlp", "gmlp", "ff")} <= set(names)
    for name in names:
        config = TrainConfig.from_dict(get_recipe(name))
        keras_mlp.get_variant(config.model)
        doc = describe(name)
        assert "keras-mlp-train" in doc and ("%" in doc or "README" in doc), name


def test_main_job_trains_then_exports_with_parity(tmp_path, capsys, monkeypatch):
    import export.pipeline

    seen = {}

    def spy(model, out_dir, options, **kwargs):
        seen.update(kwargs)
        return real(model, out_dir, options, **kwargs)

    real = export.pipeline.export_model
    monkeypatch.setattr("training.main_job.export_model", spy)
    work = tmp_path / "run"
    args = [a for a in TINY if a not in ("--export", "none")]
    assert cli.main(["--work-dir", str(work), *args, "--export", "float32,float16"]) == 0
    # Calibration and QAT samples come from the front of a train split shuffled with a fixed seed.
    load = dict(image_size=(8, 8), preprocessing=Preprocessing(), batch_size=256)
    front = next(iter(seen["train_data"]))[1].numpy()
    np.testing.assert_array_equal(front, next(iter(load_dataset("digits", "train", **load)))[1].numpy())
    assert not np.array_equal(front, next(iter(load_dataset("digits", "train", shuffle=False, **load)))[1].numpy())
    out = capsys.readouterr().out
    results = json.loads((work / "results.json").read_text())
    assert set(results["export"]["files"]) == {"float32", "float16"} and results["export"]["passed"]
    assert results["export"]["parity"]["float32"]["agreement"] == 1.0
    assert "held-out top-1" in out and "export (all passed): float32" in out and results["total_seconds"] > 0


def test_main_job_reports_a_mode_whose_conversion_fails(tmp_path, capsys, monkeypatch):
    fail_conversion(monkeypatch, "float16")
    work = tmp_path / "run"
    args = [a for a in TINY if a not in ("--export", "none")]
    assert cli.main(["--work-dir", str(work), *args, "--export", "float32,float16"]) == 1
    out = capsys.readouterr().out
    assert "export (SOME REJECTED): float32 " in out and "float16 conversion failed REJECTED" in out
    exported = json.loads((work / "results.json").read_text())["export"]
    parity, results_files = exported["parity"], exported["files"]
    assert parity["float32"]["passed"] and parity["float16"]["tflite_accuracy"] is None
    assert parity["float16"]["failures"] == ["conversion failed: RuntimeError: converter crashed"]
    files = sorted(p.name for p in (work / "export").glob("*.tflite"))
    assert (work / "export" / "report.md").exists() and files == [Path(results_files["float32"]).name]


def _image_folder(root, classes=("cat", "dog"), per_class=10):
    import PIL.Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (12 + i, 10 + c, 3), dtype=np.uint8) + 180 * c
            PIL.Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_image_folder_with_natural_augmentation_lamb_ema_bfloat16(tmp_path):
    root = _image_folder(tmp_path / "pets")
    info = dataset_info(str(root))
    assert (info.class_names, info.num_train, info.num_test) == (("cat", "dog"), 16, 4)
    work = tmp_path / "run"
    code = cli.main(["--work-dir", str(work), *TINY, "--dataset", str(root), "--batch-size", "8", "--epochs", "2",
                     "--optimizer", "lamb", "--mixed-precision", "mixed_bfloat16", "--set", "use_ema=true",
                     "--set", "ema_momentum=0.5", "--set", "rand_augment=[2,9]", "--set", "cutmix=1.0",
                     "--set", "mixup=0.2", "--set", "augment=natural"])
    import keras

    keras.mixed_precision.set_dtype_policy("float32")
    assert code == 0
    results = json.loads((work / "results.json").read_text())
    assert results["test_examples"] == 4 and results["test_top1"] >= 0.5  # the two classes differ in brightness


def test_image_folder_split_missing_a_class_folder(tmp_path, capsys):
    root = tmp_path / "pets"
    _image_folder(root / "train", ("a", "b"))
    _image_folder(root / "test", ("a",))
    with pytest.raises(ValueError, match=r"test' must hold the class folders of .*train' \(a, b\); missing: b"):
        dataset_info(str(root))
    work = tmp_path / "run"
    assert cli.main(["--work-dir", str(work), *TINY, "--dataset", str(root), "--batch-size", "8"]) == 2
    assert f"add {root / 'test' / 'b'}/" in capsys.readouterr().err and not work.exists()


def test_image_folder_class_with_one_image(tmp_path):
    root = _image_folder(tmp_path / "pets", per_class=1)
    with pytest.raises(ValueError, match=r"pets/cat' holds 1 image; the 80/20 split .* at least 2 images per class"):
        dataset_info(str(root))


def test_rerun_without_export_removes_the_old_export(tmp_path):
    work = tmp_path / "run"
    args = [a for a in TINY if a not in ("--export", "none")]
    assert cli.main(["--work-dir", str(work), *args, "--export", "float32"]) == 0
    assert any((work / "export").glob("*.tflite"))
    assert cli.main(["--work-dir", str(work), *TINY, "--resume"]) == 0  # nothing new trained: the export stays
    assert any((work / "export").glob("*.tflite"))
    resumed = [a if a != "1" else "2" for a in TINY]  # --epochs 2, --export none
    assert cli.main(["--work-dir", str(work), *resumed, "--resume"]) == 0
    assert not (work / "export").exists()  # its files came from the weights before this run


def test_load_dataset_shuffles_with_a_fixed_seed_and_the_models_preprocessing(tmp_path):
    root = tmp_path / "pets"
    _image_folder(root / "train", per_class=40)  # class-sorted on disk: 40 cats, then 40 dogs
    _image_folder(root / "test")
    pre = keras_mlp.create_model("resmlp_12_224", image_size=32, num_blocks=1).preprocessing
    load = dict(image_size=(8, 8), batch_size=16, preprocessing=Preprocessing(crop_pct=pre.crop_pct,
                                                                             interpolation=pre.interpolation))
    first = [next(iter(load_dataset(str(root), "train", **load)))[1].numpy() for _ in range(2)]
    np.testing.assert_array_equal(*first)  # the same order on every call
    assert set(first[0]) == {0, 1}  # the front covers both classes
    ordered = next(iter(load_dataset(str(root), "train", shuffle=False, **load)))[1].numpy()
    assert set(ordered) == {0}
    # The evaluation preprocessing of the trainer (bicubic for ResMLP), not the bilinear default.
    images = next(iter(load_dataset(str(root), "test", **load)))[0].numpy()
    trainer_view = build_pipeline(str(root), "test", image_size=(8, 8), batch_size=16,
                                  preprocessing=load["preprocessing"])
    np.testing.assert_array_equal(images, next(iter(trainer_view))[0].numpy())
    bilinear = Preprocessing(crop_pct=pre.crop_pct, interpolation="bilinear")
    default = next(iter(load_dataset(str(root), "test", **{**load, "preprocessing": bilinear})))[0].numpy()
    assert not np.array_equal(images, default)


@pytest.mark.parametrize("value, message", [
    ("not json", r"TF_CONFIG is not JSON \(Expecting value.*it starts 'not json'\)\. Set it as TF_CONFIG='\{\"cluster"),
    ("{}", r'TF_CONFIG has no "cluster"'),
    ("[1]", r'TF_CONFIG has no "cluster"'),
    ('{"task": {"type": "worker", "index": 0}}', r'TF_CONFIG has no "cluster"'),
    ('{"cluster": {"worker": ["localhost:1"]}}', r'TF_CONFIG\'s "task" \(missing\) is not a task of its cluster'),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}', r'"index": 1\}\) is not a'),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "chief", "index": 0}}', r"cluster \(jobs: worker\)"),
])
def test_bad_tf_config_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch, value, message):
    import re

    monkeypatch.setenv("TF_CONFIG", value)
    work = tmp_path / "run"
    for strategy in ("auto", "multiworker"):
        assert cli.main(["--work-dir", str(work), *TINY, "--strategy", strategy]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err) and "unset it" in err and "Traceback" not in err
    assert not work.exists()


def test_image_folder_bad_files_are_named_before_anything_is_written(tmp_path, capsys):
    root = _image_folder(tmp_path / "pets")
    (root / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # hidden: skipped
    (root / "dog" / "notes.txt").write_text("not an image, not listed")
    assert dataset_info(str(root)).num_train == 16
    (root / "dog" / "x.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")  # a format decode_image reads
    assert dataset_info(str(root)).num_train + dataset_info(str(root)).num_test == 21
    (root / "cat" / "corrupt.jpg").write_text("notanimage")
    with pytest.raises(ValueError, match=r"corrupt.jpg is not a JPEG, PNG, GIF, BMP or WebP image \(it starts with "
                                         r"b'notanima'\)\. Replace it"):
        dataset_info(str(root))
    work = tmp_path / "run"
    assert cli.main(["--work-dir", str(work), *TINY, "--dataset", str(root), "--batch-size", "8"]) == 2
    assert str(root / "cat" / "corrupt.jpg") in capsys.readouterr().err and not work.exists()
    (root / "cat" / "corrupt.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"corrupt.jpg is not a JPEG.*\(it is empty\)"):
        dataset_info(str(root))
    (root / "cat" / "corrupt.jpg").unlink()
    (root / "cat" / "scan.TIFF").write_bytes(b"II*\x00")
    with pytest.raises(ValueError, match=r"scan.TIFF are in a format tf.io.decode_image cannot read. Convert them"):
        dataset_info(str(root))
    (root / "cat" / "scan.TIFF").unlink()
    for f in (root / "cat").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match=r"Class folder '.*cat' holds no images \(empty\)"):
        dataset_info(str(root))


def test_image_folder_with_one_class_is_refused(tmp_path, capsys):
    root = _image_folder(tmp_path / "pets", ("cat",))
    work = tmp_path / "run"
    assert cli.main(["--work-dir", str(work), *TINY, "--dataset", str(root), "--batch-size", "8"]) == 2
    err = capsys.readouterr().err
    assert f"has one class folder, {root / 'cat'}/; a classifier needs at least 2 classes" in err
    assert not work.exists()


def test_tfds_import_and_download_failures_are_clear(tmp_path, capsys, monkeypatch):
    import importlib
    import sys

    import tensorflow_datasets as tfds

    from keras_mlp.data.sources import DataUnavailableError, _tfds_builder

    importlib.import_module("importlib_resources")  # tfds imports it lazily when preparing; setup.cfg installs it

    class Builder:
        def __init__(self, error):
            self.error = error

        def download_and_prepare(self):
            raise self.error

    for error, message in [(ModuleNotFoundError("No module named 'etils_x'", name="etils_x"),
                            r"tensorflow_datasets cannot run here.*etils_x.*\(pip install etils_x, or reinstall"),
                           (ConnectionError("Name or service not known"),
                            r"Downloading 'cifar10' into .* failed \(ConnectionError: Name or service not known\)")]:
        monkeypatch.setattr(tfds, "builder", lambda name, data_dir, error=error: Builder(error))
        with pytest.raises(DataUnavailableError, match=message):
            _tfds_builder("cifar10", str(tmp_path), download=True)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    work = tmp_path / "run"
    assert cli.main(["--work-dir", str(work), *TINY, "--dataset", "cifar10", "--download"]) == 2
    err = capsys.readouterr().err
    assert "tensorflow_datasets cannot run here" in err and "Traceback" not in err and not work.exists()
