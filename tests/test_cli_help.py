"""`--help` answers at once: the CLI modules parse their arguments before importing TensorFlow."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import contextlib, io, json, runpy, sys
sys.argv = [sys.argv[1], "--help"]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        runpy.run_module(sys.argv[0], run_name="__main__")
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "usage": out.getvalue().startswith("usage:"),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


@pytest.mark.parametrize("module", ["training.cli", "training.convert_cli", "training.eval_cli", "export.cli"])
def test_help_leaves_tensorflow_unimported(module):
    proc = subprocess.run([sys.executable, "-c", PROBE, module], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {"code": 0, "usage": True, "tensorflow": False}
