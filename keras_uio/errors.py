"""User-input errors, and the output-folder check the command line shares.

The library reports bad input with `ValueError` (and the `OSError` family
for files). `UserInputError` is a `ValueError` for checks made on behalf of
the user before any work starts (command-line options, output folders), so
`except ValueError` still catches it. `USER_ERRORS` are the types the
`keras-uio` command reports as `keras-uio: error: ...` (exit status 2)
instead of a traceback; anything else is a bug and keeps its traceback.
"""

import os


class UserInputError(ValueError):
    """Bad input from the user: a value, a file or a folder."""


# What `keras-uio` reports without a traceback: bad values (the library
# raises `ValueError` for them) and file-system problems (missing file,
# permission denied, a file where a folder belongs, a full disk).
USER_ERRORS = (ValueError, OSError)


def _nearest_existing(path):
    """`path` or its closest ancestor that exists."""
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_output_dir(path, name="output folder"):
    """Check that `path` can be a folder we write into, before any work.

    The folder itself need not exist; its closest existing ancestor must be
    a writable folder.

    Args:
        path: the output folder.
        name: how the message names it (e.g. the option, `"--out"`).

    Returns:
        the absolute path.

    Raises:
        UserInputError: `path` is an existing file, lies under a file, or
            its closest existing folder is not writable.

    Example:
    >>> check_output_dir(".") == os.path.abspath(".")
    True
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserInputError(
            f"{name} {path!r} is an existing file, not a folder. Choose "
            "another path or remove the file."
        )
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise UserInputError(
            f"{name} {path!r} cannot be created: {existing!r} is a file, not a folder."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserInputError(
            f"{name} {path!r} cannot be written: {existing!r} is not writable."
        )
    return path
