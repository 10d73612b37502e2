"""`BoxTask`: the base of tasks whose output is boxes with labels."""

import numpy as np

from keras_uio.tasks import original_parsers
from keras_uio.tasks.task import Task
from keras_uio.token_text import as_str

PARSERS = ("original", "lenient")


def check_parser(parser):
    if parser not in PARSERS:
        raise ValueError(f"`parser` must be one of {PARSERS}. Received: {parser!r}")
    return parser


class BoxTask(Task):
    """A task whose output is `[4 location tokens][label text]...`.

    Result fields: `"boxes"` float64 `[n, 4]` `(x1, y1, x2, y2)` in input
    pixels, `"labels"` (list of `n` strings; `None` when ids were given
    without a tokenizer), `"label_ids"` (the ids after each box).

    Args:
        parser: `"original"` (default) reads the output as the original's
            `tokens_to_regions` (see `original_parsers`): an output it
            would reject gives no boxes and an entry in `"errors"`.
            `"lenient"` keeps every well-formed region and skips malformed
            ones (odd location counts, text where a location belongs,
            corners out of order), each described in `"errors"`.
        **kwargs: see `Task`.
    """

    def __init__(self, parser="original", **kwargs):
        super().__init__(**kwargs)
        self.parser = check_parser(parser)

    def _decode(self, raw, result, meta):
        size = self._need_image_size(meta)
        if self.parser == "original":
            self._decode_original(raw, result, size)
            return
        parsed = self._parse_regions(raw, size, per_region=4)
        result["boxes"] = parsed.boxes
        result["labels"] = parsed.labels
        result["label_ids"] = parsed.label_ids if raw["token_ids"] is not None else None
        result["errors"].extend(parsed.errors)

    def _decode_original(self, raw, result, image_size):
        try:
            label_ids, boxes = original_parsers.tokens_to_regions(
                raw["region_ids"], image_size, self.vocab
            )
        except ValueError as e:
            label_ids, boxes = [], np.zeros((0, 4))
            result["errors"].append(
                f"{e}: the original's tokens_to_regions rejects this output "
                "(parser='lenient' keeps its well-formed regions)"
            )
        detok = raw["parse_detokenize"]
        result["boxes"] = boxes
        result["label_ids"] = (
            [l.tolist() for l in label_ids] if raw["token_ids"] is not None else None
        )
        result["labels"] = (
            None
            if detok is None
            else [as_str(detok(l.tolist())).strip() for l in label_ids]
        )

    def _boxes_text(self, boxes, image_size):
        return " ".join(self.region_text(b, image_size) for b in boxes)
