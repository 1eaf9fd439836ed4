"""The README's "Fine-tune a published model and ship it" commands run as written: the preset comes from a loopback
HTTP server (the weights mirror; the file is a randomised model in the preset's published layout), `photos/` is a
folder of 224-px JPEGs of three classes made here, and every command must succeed with the files it names."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import keras

import keras_mlp
from export.parity import MIN_GATE_IMAGES
from keras_mlp.weights import get_preset
from tests.backends import tensorflow_only
from tests.helpers import randomize_weights, subprocess_env, write_photos

pytestmark = tensorflow_only("The tf.distribute trainer and the TFLite export")

README = Path(__file__).parents[1] / "README.md"
SECTION = "## Fine-tune a published model and ship it"
CLASSES = ("daisy", "rose", "tulip")


def readme_commands() -> list[list[str]]:
    """The command lines of the section's first ```bash block."""
    text = README.read_text().split(SECTION, 1)[1]
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_fine_tune_commands_run_as_written(tmp_path, server):
    commands = readme_commands()
    assert [c[0] for c in commands] == ["keras-mlp-train", "keras-mlp-export", "keras-mlp-eval"]
    preset = get_preset(commands[0][commands[0].index("--weights") + 1])
    model = randomize_weights(keras_mlp.create_model(preset.model, num_classes=preset.num_classes), seed=1)
    file = tmp_path / "published" / Path(preset.files[0].url).name
    file.parent.mkdir()
    keras_mlp.save_checkpoint(model, file)
    path = "/" + preset.files[0].url.split("://", 1)[1]  # where KERAS_MLP_WEIGHTS_MIRROR puts it
    server.files[path] = file.read_bytes()
    # photos/{train,test}/<class>/: one batch of the command's to train on, the gate's minimum to test on
    batch = int(commands[0][commands[0].index("--batch-size") + 1])
    write_photos(tmp_path / "photos", CLASSES, size=(224, 224), per_class={
        "train": -(-batch // len(CLASSES)), "test": -(-MIN_GATE_IMAGES // len(CLASSES))})

    env = subprocess_env(KERAS_HOME=str(tmp_path / "keras"), KERAS_MLP_WEIGHTS_MIRROR=server.url,
                         NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the console scripts of this environment
    outputs = []
    for argv in commands:
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)

    assert server.requests == [path]  # downloaded once, by the training command
    work = tmp_path / commands[0][commands[0].index("--work-dir") + 1]
    assert json.loads((work / "results.json").read_text())["model"] == preset.model
    assert list(keras.saving.load_model(work / "model.keras").class_names) == sorted(CLASSES)
    shipped = tmp_path / commands[2][1]
    assert shipped.exists() and shipped.with_suffix(".json").exists()
    assert re.search(r"on photos.* top-1 \d+\.\d+%", outputs[2]), outputs[2]
