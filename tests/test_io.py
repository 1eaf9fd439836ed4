"""keras_mlp.io: atomic writes keep no partial file and give the umask's permissions (not mkstemp's 0600)."""
from __future__ import annotations

import os
import stat

import pytest

from keras_mlp.io import atomic_path, write_atomic


def test_write_atomic_permissions_and_overwrite(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "sub" / "a.json", "first")
        write_atomic(tmp_path / "sub" / "a.json", b"second")
    finally:
        os.umask(old)
    path = tmp_path / "sub" / "a.json"
    assert path.read_text() == "second" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path / "sub") == ["a.json"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.endswith("model.keras") and os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["model.keras"]
