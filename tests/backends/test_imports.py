"""`keras_uio` imports no backend framework at import time, unguarded.

JAX, TensorFlow and PyTorch code lives in functions behind a backend check
(`keras.config.backend() == ...`), so that importing `keras_uio` works with
any one of them installed. The only import-time exception is TensorFlow for
`tf.data` and `tf.strings` graph support, and only inside
`try: ... except ImportError:`.
"""

import ast
import pathlib

# Read as source, not imported: importing would load the frameworks anyway.
PACKAGE = pathlib.Path(__file__).parents[2] / "keras_uio"
FRAMEWORKS = {"jax", "jaxlib", "tensorflow", "torch", "flax"}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def _imported_frameworks(node):
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [node.module]
    else:
        return []
    return [n for n in names if n.split(".")[0] in FRAMEWORKS]


def _catches_import_error(node):
    for handler in node.handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(n, ast.Name) and n.id in IMPORT_ERRORS for n in names):
            return True
    return False


def _unguarded_imports(node, guarded=False):
    """`(line, module)` of framework imports that run at import time.

    Function bodies run later and are skipped; an import is guarded inside
    a `try` that catches `ImportError` or under an `if` on the backend.
    """
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        names = _imported_frameworks(child)
        if names and not guarded:
            found += [(child.lineno, name) for name in names]
        inner = guarded
        if isinstance(child, ast.Try) and _catches_import_error(child):
            inner = True
        if isinstance(child, ast.If) and "backend" in ast.unparse(child.test):
            inner = True
        found += _unguarded_imports(child, inner)
    return found


def test_no_backend_framework_is_imported_unguarded_at_import_time():
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        offending += [
            f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
            for line, name in _unguarded_imports(tree)
        ]
    assert not offending, "\n".join(offending)


def test_the_scan_finds_unguarded_imports():
    source = (
        "import numpy\nimport jax\n"
        "try:\n    import tensorflow as tf\nexcept ImportError:\n    tf = None\n"
        "try:\n    import torch\nexcept ValueError:\n    pass\n"
        "if keras.config.backend() == 'jax':\n    import jax.numpy\n"
        "def f():\n    import torch\n"
        "class A:\n    from tensorflow import io\n"
    )
    found = _unguarded_imports(ast.parse(source))
    assert found == [(2, "jax"), (8, "torch"), (16, "tensorflow")]
