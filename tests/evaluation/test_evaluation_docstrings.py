"""The runnable examples in the `keras_uio.evaluation` docstrings."""

import doctest
import importlib
import pkgutil

import pytest

import keras_uio.evaluation

MODULES = ["keras_uio.evaluation"] + [
    f"keras_uio.evaluation.{m.name}"
    for m in pkgutil.iter_modules(keras_uio.evaluation.__path__)
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
