"""Tokens as text: a detokenizer's output as a string, `<extra_id_n>` names.

Both helpers are re-exported by `keras_uio.vocab`.
"""

import re

import numpy as np

_EXTRA_ID_RE = re.compile(r"<extra_id_(\d+)>")


def as_str(x):
    """A detokenizer's output (str, bytes, 0-d or one-element array or
    tensor, one-element list) as a Python string."""
    if hasattr(x, "numpy"):
        x = x.numpy()
    if isinstance(x, np.ndarray):
        x = x.item() if x.ndim == 0 else x.tolist()
    if isinstance(x, list) and len(x) == 1:
        x = x[0]
    if isinstance(x, bytes):
        x = x.decode("utf-8")
    return str(x)


def parse_extra_id(text):
    """`'<extra_id_12>'` -> 12, else `None`."""
    m = _EXTRA_ID_RE.fullmatch(text.strip())
    return int(m.group(1)) if m else None
