"""Every example in a `keras_uio` docstring runs.

Two kinds of example are collected from every module under `keras_uio`
(found with `pkgutil.walk_packages`):

- doctests (`>>>` lines), one test per module, run by `doctest.testmod`
  with `ELLIPSIS`;
- fenced ```` ```python ```` blocks in any docstring (module, class,
  function, method), one test per block, named `module:qualname:index`.
  A block runs with `np`, `keras`, `keras_uio` and the module's globals
  (private names too) in its namespace.

Both run in a fresh temporary working directory, so examples that write
files neither collide nor litter the checkout. A block that cannot run on
one CPU machine without data says so on its first line,
`# not run: <reason>`, and is skipped; there must stay few of those
(`MAX_NOT_RUN`). Examples that only make sense in a shell belong in
```` ```shell ```` blocks, which are not collected; other python-like fence
tags (```` ```py ````, ```` ```python3 ````, ...) are refused, so no
example escapes collection by its tag.
"""

import ast
import doctest
import importlib
import importlib.util
import pkgutil
import re
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_uio

# At most this many blocks may be marked `# not run:`.
MAX_NOT_RUN = 5
NOT_RUN = "# not run:"

# A fenced python block; the fences may be indented (inside an Args: list).
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<body>.*?)^[ \t]*```[ \t]*$",
    re.S | re.M,
)
# Opening fences whose tag looks like python but is not `python`.
OTHER_PYTHON_FENCE = re.compile(r"^[ \t]*```(py(?!thon[ \t]*$)\S*)[ \t]*$", re.M)


def _walk_modules():
    """Names of all modules under `keras_uio`, and import errors met."""
    errors = {}

    def onerror(name):
        error = sys.exc_info()[1]
        errors[name] = f"{type(error).__name__}: {error}"

    names = ["keras_uio"] + [
        info.name
        for info in pkgutil.walk_packages(
            keras_uio.__path__, "keras_uio.", onerror=onerror
        )
        if info.name.rsplit(".", 1)[-1] != "__main__"
    ]
    return names, errors


MODULES, WALK_ERRORS = _walk_modules()


def _docstrings(tree):
    """`(qualname, docstring)` of the module and every class/function."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = f"{prefix}{child.name}"
                doc = ast.get_docstring(child, clean=True)
                if doc:
                    found.append((qualname, doc))
                visit(child, qualname + ".")
            else:
                # Definitions under `if`/`try` at any level.
                visit(child, prefix)

    doc = ast.get_docstring(tree, clean=True)
    if doc:
        found.append(("<module>", doc))
    visit(tree, "")
    return found


def _blocks(name):
    """`(qualname, index, source)` of every ```python block of a module."""
    try:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return []
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read(), spec.origin)
    except Exception as error:  # reported by `test_every_module_imports`
        WALK_ERRORS[name] = f"{type(error).__name__}: {error}"
        return []
    blocks = []
    for qualname, doc in _docstrings(tree):
        for tag in OTHER_PYTHON_FENCE.findall(doc):
            OTHER_FENCES.append(f"{name}:{qualname}: ```{tag}")
        for index, match in enumerate(FENCE.finditer(doc)):
            blocks.append((qualname, index, textwrap.dedent(match["body"])))
    return blocks


OTHER_FENCES = []
BLOCKS = {
    f"{name}:{qualname}:{index}": (name, source)
    for name in MODULES
    for qualname, index, source in _blocks(name)
}


def _not_run_reason(source):
    first = source.lstrip("\n").split("\n", 1)[0].strip()
    if first.startswith(NOT_RUN):
        return first[len(NOT_RUN) :].strip()
    return None


NOT_RUN_BLOCKS = {
    key: _not_run_reason(source)
    for key, (_, source) in BLOCKS.items()
    if _not_run_reason(source) is not None
}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A fresh working directory; Keras' global settings restored after."""
    monkeypatch.chdir(tmp_path)
    distribution = keras.distribution.distribution()
    policy = keras.config.dtype_policy()
    floatx = keras.config.floatx()
    yield tmp_path
    keras.distribution.set_distribution(distribution)
    keras.config.set_dtype_policy(policy)
    keras.config.set_floatx(floatx)


def test_every_module_imports():
    assert not WALK_ERRORS, WALK_ERRORS
    assert len(MODULES) > 50
    assert len(BLOCKS) > 40


def test_python_examples_use_the_python_fence():
    assert not OTHER_FENCES, f"use ```python (collected): {OTHER_FENCES}"


def test_few_blocks_are_not_run():
    for key, reason in NOT_RUN_BLOCKS.items():
        print(f"not run: {key}: {reason}")
        assert reason, f"{key}: `{NOT_RUN}` needs a reason"
    print(f"{len(BLOCKS)} ```python blocks, {len(NOT_RUN_BLOCKS)} marked `{NOT_RUN}`")
    assert len(NOT_RUN_BLOCKS) <= MAX_NOT_RUN, sorted(NOT_RUN_BLOCKS)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, isolated):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


@pytest.mark.parametrize("key", sorted(BLOCKS))
def test_python_block(key, isolated):
    name, source = BLOCKS[key]
    reason = NOT_RUN_BLOCKS.get(key)
    if reason is not None:
        pytest.skip(f"{key}: not run: {reason}")
    module = importlib.import_module(name)
    namespace = {
        "np": np,
        "keras": keras,
        "keras_uio": keras_uio,
        **{k: v for k, v in vars(module).items() if not k.startswith("__")},
        "__name__": "__docstring_example__",
    }
    exec(compile(source, key, "exec"), namespace)
