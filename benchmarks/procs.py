"""Run one measuring process (ours or a peer's) from the repo root and read the JSON object it prints last."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_json(argv: list[str], env=None, timeout: int = 3600) -> dict:
    """Run `argv` from the repo root and parse the JSON object its last stdout line holds."""
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **(env or {})})
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peers(script: str, python: str, args, env=None, timeout: int = 3600) -> dict:
    """Run a peer script (variants and options in `args`) in its own process; {'skipped': reason} when its libraries
    are not installed."""
    try:
        return run_json([python, str(ROOT / "benchmarks" / script), *args], env, timeout)
    except RuntimeError as err:
        return {"skipped": str(err)}
