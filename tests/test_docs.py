"""The docstring examples of keras_mlp, training and export run (doctest)."""
import doctest
import importlib
import inspect
import pkgutil

import pytest

import export
import keras_mlp
import training

PACKAGES = (keras_mlp, training, export)
TF_KERAS_ONLY = {"export.qat_configs"}  # imports tfmot, which only a TF_USE_LEGACY_KERAS=1 process may do
MODULES = [name for package in PACKAGES for name in
           [package.__name__, *(m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}."))]
           if not name.endswith("__main__") and name not in TF_KERAS_ONLY]


def test_modules_with_examples_are_found():
    assert {"keras_mlp.registry", "keras_mlp.io", "keras_mlp.data.pipeline"} <= {
        name for name in MODULES if ">>>" in inspect.getsource(importlib.import_module(name))}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    # A module whose source shows an example must have run it (not e.g. lost it to a non-docstring comment).
    assert result.attempted > 0 or ">>>" not in inspect.getsource(module)
