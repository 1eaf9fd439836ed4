"""Shared fixtures; the tiny configurations, the randomiser and the battery live in tests/helpers.py."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from tests.helpers import random_images


@pytest.fixture
def images() -> np.ndarray:
    return random_images()
