"""Types and checks of `keras-uio`'s command-line values (argparse `type`s
raise `ArgumentTypeError`; checks raise the user errors of
`keras_uio.errors`)."""

import argparse
import math
import os

from keras_uio.errors import UserInputError


def int_in_range(minimum, maximum=None):
    """An argparse `type`: an int in `[minimum, maximum]`."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer, got {text!r}"
            ) from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def box(text):
    """An argparse `type`: `x1,y1,x2,y2`, four finite pixel coordinates."""
    parts = text.split(",")
    try:
        box = [float(v) for v in parts]
    except ValueError:
        box = []
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise argparse.ArgumentTypeError(
            f"must be x1,y1,x2,y2 (four numbers), got {text!r}"
        )
    if box[2] < box[0] or box[3] < box[1]:
        raise argparse.ArgumentTypeError(
            f"must have x1 <= x2 and y1 <= y2, got {text!r}"
        )
    return box


def options(text):
    """An argparse `type`: `a,b,c`, distinct non-empty answer options."""
    options = [o.strip() for o in text.split(",")]
    if not all(options):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated non-empty options, got {text!r}"
        )
    if len(set(options)) != len(options):
        raise argparse.ArgumentTypeError(f"must be distinct, got {text!r}")
    return options


def check_file(path, what):
    """Raises a user error unless `path` is an existing file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist.")
    if not os.path.isfile(path):
        raise UserInputError(f"{what} {path!r} is not a file.")
