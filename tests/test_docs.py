"""The docstring examples of the package run (doctest)."""
import doctest
import importlib
import pkgutil

import pytest

import keras_mlp

MODULES = [m.name for m in pkgutil.walk_packages(keras_mlp.__path__, "keras_mlp.") if not m.name.endswith("__main__")]


@pytest.mark.parametrize("name", ["keras_mlp", *MODULES])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
