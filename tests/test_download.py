"""Preset downloads through a loopback HTTP server (127.0.0.1, files the tests write): cached once and reused,
refused and never cached when corrupt, of another class count or hash, clear errors when missing or offline."""
from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import keras_mlp
from keras_mlp.weights import DownloadError, Preset, WeightFile, fetch_preset, get_preset
from keras_mlp.weights.presets import TIMM_MIXER
from tests.helpers import GRID_IMAGE_SIZE, TINY

GOLDEN = Path(__file__).parent / "golden"
# the golden Mixer's tiny configuration and its non-square grid (the checkpoint's token count alone cannot tell it)
TINY_MIXER = {"patch_size": 8, "image_size": GRID_IMAGE_SIZE, **TINY["mixer"]}
PRESET = "mixer_b16_224.goog_in21k_ft_in1k"
HUB_PATH = f"/huggingface.co/timm/{PRESET}/resolve/main/model.safetensors"  # its first file under the mirror
MIRRORED = f" (mirror of https:/{HUB_PATH})"


def _checkpoint(tmp_path: Path, classes: int = 1000) -> tuple[bytes, dict]:
    """A tiny timm-layout Mixer with a random `classes`-class head, as safetensors bytes."""
    state = load_file(GOLDEN / "mixer.safetensors")
    rng = np.random.default_rng(0)
    state["head.weight"] = rng.normal(size=(classes, 32)).astype("float32")
    state["head.bias"] = rng.normal(size=(classes,)).astype("float32")
    save_file(state, tmp_path / "model.safetensors")
    return (tmp_path / "model.safetensors").read_bytes(), state


def test_preset_downloads_once_then_comes_from_the_cache(tmp_path, server, home):
    server.files[HUB_PATH], state = _checkpoint(tmp_path)
    model = keras_mlp.create_model(PRESET, **TINY_MIXER)
    assert model.num_classes == 1000 and tuple(model.image_size) == GRID_IMAGE_SIZE
    np.testing.assert_array_equal(model.get_layer("head").kernel.numpy(), state["head.weight"].T)
    assert model.preprocessing == get_preset(PRESET).preprocessing  # the preset's own, carried by the model
    assert len(model.class_names) == 1000 and model.class_names[0] == "tench, Tinca tinca"
    again = keras_mlp.create_model("mixer_b16_224", weights="goog_in21k_ft_in1k", num_classes=3, **TINY_MIXER)
    np.testing.assert_array_equal(again.get_layer("stem").proj.kernel.numpy(), model.get_layer("stem").proj.kernel)
    assert again.num_classes == 3 and again.class_names is None  # a fresh head: the preset's names do not apply
    assert server.requests == [HUB_PATH]
    assert [p.name for p in home.iterdir()] == [f"{PRESET}.model.safetensors"]  # no temporary leftovers


def test_corrupt_download_refused_and_not_cached(tmp_path, server, home):
    good, _ = _checkpoint(tmp_path)
    server.files[HUB_PATH] = good[: len(good) // 2]
    with pytest.raises(DownloadError) as err:
        keras_mlp.create_model(PRESET, **TINY_MIXER)
    message = str(err.value)
    assert f"{server.url}{HUB_PATH}{MIRRORED}: refused, not cached" in message and "corrupt or truncated" in message
    assert "jx_mixer_b16_224-76587d61.pth): a PyTorch .pth file; reading it needs torch" in message
    assert not home.exists() or not any(home.iterdir())
    server.files[HUB_PATH] = good  # the next call downloads again and succeeds
    assert keras_mlp.create_model(PRESET, **TINY_MIXER).num_classes == 1000
    assert server.requests == [HUB_PATH, HUB_PATH]


def test_other_class_count_refused(tmp_path, server, home):
    server.files[HUB_PATH], _ = _checkpoint(tmp_path, classes=5)
    with pytest.raises(DownloadError, match=r"refused, not cached: the file has a 5-class head, not 1000"):
        keras_mlp.create_model(PRESET, **TINY_MIXER)
    assert not any(home.iterdir())


def test_404_names_the_url_and_the_local_file_fix(server, home):
    with pytest.raises(DownloadError) as err:
        keras_mlp.create_model(PRESET, **TINY_MIXER)
    message = str(err.value)
    assert f"{server.url}{HUB_PATH}{MIRRORED}: download failed" in message and "404" in message
    assert "pass its path: create_model('mixer_b16_224', weights='/path/to/the/file')" in message
    assert "KERAS_MLP_WEIGHTS_MIRROR" in message and not any(home.iterdir())


def test_offline_names_the_url(monkeypatch, home):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("KERAS_MLP_WEIGHTS_MIRROR", closed)
    with pytest.raises(DownloadError, match=rf"(?s){closed}{HUB_PATH} \(mirror of .*\): download failed.*refused.*"
                                            "pass its path"):
        keras_mlp.create_model(PRESET, **TINY_MIXER)


def test_sha256_checked(tmp_path, server, home):
    served = "/example.org/w/tiny.safetensors"  # https://example.org/w/tiny.safetensors under the mirror
    server.files[served], _ = _checkpoint(tmp_path)
    digest = hashlib.sha256(server.files[served]).hexdigest()

    def preset(sha256: str) -> Preset:
        return Preset("mixer_s16_224", f"test_{sha256[:4]}", (WeightFile("https://example.org/w/tiny.safetensors",
                      TIMM_MIXER, sha256),), 1000, "imagenet-1k", keras_mlp.Preprocessing(), None, "-", "-", "-")

    with pytest.raises(DownloadError, match=rf"sha256 mismatch: expected 0bad1234…, got {digest[:16]}"):
        fetch_preset(preset("0bad1234"))
    assert not any(home.iterdir())
    assert Path(fetch_preset(preset(digest[:8]))).read_bytes() == server.files[served]


def test_pth_only_preset_without_torch_says_so(server, home):
    with pytest.raises(DownloadError, match=r"linear-tiny-checkpoint.pth\): a PyTorch .pth file; reading it needs "
                                            r"torch, which is not installed \(pip install torch\)"):
        keras_mlp.create_model("ff_ti16_224.lukemelas_in1k")
    assert server.requests == []


def test_url_and_file_mirror(tmp_path, server, home, monkeypatch):
    data, _ = _checkpoint(tmp_path, classes=7)
    monkeypatch.delenv("KERAS_MLP_WEIGHTS_MIRROR")
    server.files["/any/name.safetensors"] = data
    model = keras_mlp.create_model("mixer_s16_224", weights=f"{server.url}/any/name.safetensors", **TINY_MIXER)
    assert model.num_classes == 7 and server.requests == ["/any/name.safetensors"]
    site = tmp_path / "site" / "huggingface.co" / "timm" / PRESET / "resolve" / "main"  # a `wget -x` tree
    site.mkdir(parents=True)
    (site / "model.safetensors").write_bytes(_checkpoint(tmp_path)[0])
    monkeypatch.setenv("KERAS_MLP_WEIGHTS_MIRROR", (tmp_path / "site").as_uri())
    assert keras_mlp.create_model(PRESET, **TINY_MIXER).num_classes == 1000
