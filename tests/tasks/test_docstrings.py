"""The runnable examples in the task docstrings stay correct."""

import doctest
import importlib
import pkgutil

import pytest

import keras_uio.tasks

MODULES = ["keras_uio.tasks"] + [
    f"keras_uio.tasks.{m.name}"
    for m in pkgutil.iter_modules(keras_uio.tasks.__path__)
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
