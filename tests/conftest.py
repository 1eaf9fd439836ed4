"""Shared fixtures; the tiny configurations, the randomiser and the battery live in tests/helpers.py."""
from __future__ import annotations

import http.server
import os
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from tests.helpers import random_images


@pytest.fixture(autouse=True)
def keras_3_stays_keras_3():
    """Fail the test that leaves TF_USE_LEGACY_KERAS changed in this process (tfmot's import sets it to 1), and put
    it back: every later subprocess would otherwise build tf_keras models."""
    before = os.environ.get("TF_USE_LEGACY_KERAS")
    yield
    after = os.environ.get("TF_USE_LEGACY_KERAS")
    if after != before:
        if before is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = before
        pytest.fail(f"TF_USE_LEGACY_KERAS went from {before!r} to {after!r} in the test process (tfmot imported?)")


@pytest.fixture
def images() -> np.ndarray:
    return random_images()


@pytest.fixture
def server():
    """Serves `server.files` ({path: bytes}) on 127.0.0.1, 404 otherwise; `server.requests` lists the paths asked."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            httpd.requests.append(self.path)
            body = httpd.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.requests = {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch, server):
    """A fresh Keras home; every weight URL goes to the loopback server (the mirror override)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("KERAS_MLP_WEIGHTS_MIRROR", server.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setitem(sys.modules, "torch", None)  # the .pth fallbacks need torch: as if it were not installed
    return tmp_path / "keras" / "models" / "keras_mlp"


def fail_conversion(monkeypatch, mode: str, message: str = "converter crashed") -> None:
    """Make export's conversion of `mode` raise RuntimeError(message); the other modes convert as usual."""
    import export.pipeline

    real = export.pipeline.to_tflite

    def failing(model, mode_, *args, **kwargs):
        if mode_ == mode:
            raise RuntimeError(message)
        return real(model, mode_, *args, **kwargs)
    monkeypatch.setattr(export.pipeline, "to_tflite", failing)
