"""The Unified-IO id layout: text, location bins, sentinels, image tokens.

Everything in Unified-IO is a token id in one vocabulary. This module is the
only place that knows which id means what; every other module asks a
`Vocabulary` instance.

Layout (defaults = the released checkpoints, 49536 ids in all):

| ids                  | meaning                                         |
|----------------------|-------------------------------------------------|
| 0, 1, 2              | padding, EOS `</s>`, unk                        |
| 3 .. 31999           | SentencePiece pieces (`sentencepiece_size`)     |
| 32000 .. 32999       | location bin `b` is id `32999 - b`              |
| 33000 .. 33099       | sentinels, `<extra_id_n>` is id `33099 - n`     |
| 33100 .. 33150       | unused                                          |
| 33151                | image decoder start (`text_vocab_size - 1`)     |
| 33152 .. 49535       | VQ-GAN code `c` is id `33152 + c`               |

The extra ids follow the T5 convention (`<extra_id_n>` -> the n-th id counted
down from the top of the extra-id block); location bin `b` is written
`<extra_id_{b + num_sentinels}>`.

Boxes, points and keypoints as location tokens (and parsing them back) are
in `keras_uio.location_tokens`, which `Vocabulary` mixes in; the parse
results are in `keras_uio.parsed_regions`.
"""

import keras
import numpy as np

from keras_uio.location_tokens import LocationTokens


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. "
            f"Received: {name}={value!r} (type {type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. Received: {name}={value}"
        )
    return int(value)


@keras.saving.register_keras_serializable(package="keras_uio")
class Vocabulary(LocationTokens):
    """The Unified-IO token id layout for any vocabulary size.

    Args:
        text_vocab_size: int. Size of the text + location part of the
            vocabulary (the model's `vocab_size`; 33152 for the released
            checkpoints). The image decoder start token is
            `text_vocab_size - 1` and VQ-GAN code `c` is
            `text_vocab_size + c`.
        image_vocab_size: int. Number of VQ-GAN codes (16384).
        sentencepiece_size: int or `None`. Number of SentencePiece pieces
            (32000 for T5). The extra-id block starts right after them. If
            `None`, it is chosen so that `num_unused` ids lie between the
            extra ids and the image start token, as in the original
            (`33152 - 1 - 51 - 1100 = 32000`).
        num_location_bins: int. Number of location bins (1000).
        num_sentinels: int. Number of T5 sentinels (100); location bin `b` is
            `<extra_id_{b + num_sentinels}>`.
        num_unused: int. Only used when `sentencepiece_size` is `None`.

    Example:
    >>> vocab = Vocabulary()
    >>> vocab.location_id(0), vocab.sentinel_id(0), vocab.image_start_id
    (32999, 33099, 33151)
    >>> vocab.box_to_ids([226.56, 160.64, 476.16, 316.16], image_size=(480, 640))
    [32749, 32646, 32506, 32256]
    >>> vocab.ids_to_boxes([32749, 32646, 32506, 32256, 1], (480, 640)).boxes
    array([[226.56, 160.64, 476.16, 316.16]])
    """

    def __init__(
        self,
        text_vocab_size=33152,
        image_vocab_size=16384,
        sentencepiece_size=None,
        num_location_bins=1000,
        num_sentinels=100,
        num_unused=51,
    ):
        self.text_vocab_size = _check_int("text_vocab_size", text_vocab_size, 5)
        self.image_vocab_size = _check_int("image_vocab_size", image_vocab_size, 1)
        self.num_location_bins = _check_int("num_location_bins", num_location_bins, 2)
        self.num_sentinels = _check_int("num_sentinels", num_sentinels, 0)
        self.num_unused = _check_int("num_unused", num_unused, 0)
        num_extra = self.num_extra_ids
        if sentencepiece_size is None:
            sentencepiece_size = self.text_vocab_size - 1 - self.num_unused - num_extra
            if sentencepiece_size < 3:
                raise ValueError(
                    f"`text_vocab_size={text_vocab_size}` is too small for "
                    f"{num_extra} extra ids (num_location_bins="
                    f"{num_location_bins} + num_sentinels={num_sentinels}), "
                    f"{num_unused} unused ids and the image start token. "
                    "Pass a larger `text_vocab_size` or fewer location bins."
                )
        else:
            sentencepiece_size = _check_int("sentencepiece_size", sentencepiece_size, 3)
            if sentencepiece_size + num_extra > self.text_vocab_size - 1:
                raise ValueError(
                    "`sentencepiece_size + num_location_bins + num_sentinels` "
                    f"must be <= text_vocab_size - 1 = {self.text_vocab_size - 1}"
                    " (the image start token is the last text id). Received: "
                    f"sentencepiece_size={sentencepiece_size}, "
                    f"num_location_bins={num_location_bins}, "
                    f"num_sentinels={num_sentinels}"
                )
            self.num_unused = self.text_vocab_size - 1 - sentencepiece_size - num_extra
        self.sentencepiece_size = int(sentencepiece_size)

    # ------------------------------------------------------------------ ids
    pad_id = 0
    eos_id = 1
    unk_id = 2

    @property
    def num_extra_ids(self):
        """Number of `<extra_id_n>` tokens (sentinels + location bins)."""
        return self.num_sentinels + self.num_location_bins

    @property
    def extra_ids_end(self):
        """One past the last extra id (33100 by default)."""
        return self.sentencepiece_size + self.num_extra_ids

    @property
    def vocab_size(self):
        """Total number of ids: text + image (49536 by default)."""
        return self.text_vocab_size + self.image_vocab_size

    @property
    def image_start_id(self):
        """First input of the image decoder (33151 by default)."""
        return self.text_vocab_size - 1

    @property
    def image_offset(self):
        """VQ-GAN code `c` has id `image_offset + c`."""
        return self.text_vocab_size

    def extra_id(self, n):
        """Id of `<extra_id_n>`: `extra_ids_end - 1 - n`."""
        n = np.asarray(n)
        if np.any((n < 0) | (n >= self.num_extra_ids)):
            raise ValueError(
                f"`n` must be in [0, {self.num_extra_ids - 1}]. Received: {n}"
            )
        out = self.extra_ids_end - 1 - n
        return int(out) if out.ndim == 0 else out

    def extra_id_number(self, token_id):
        """Inverse of `extra_id`: the `n` of `<extra_id_n>` for an id."""
        return self.extra_ids_end - 1 - np.asarray(token_id)

    def location_id(self, bin_index):
        """Id of location bin `bin_index` (`<extra_id_{bin + num_sentinels}>`)."""
        b = np.asarray(bin_index)
        if np.any((b < 0) | (b >= self.num_location_bins)):
            raise ValueError(
                f"`bin_index` must be in [0, {self.num_location_bins - 1}]. "
                f"Received: {bin_index}"
            )
        return self.extra_id(b + self.num_sentinels)

    def location_bin(self, token_id):
        """Bin of a location id (no range check; see `is_location`)."""
        out = self.extra_id_number(token_id) - self.num_sentinels
        return int(out) if np.ndim(out) == 0 else out

    def sentinel_id(self, n):
        """Id of sentinel `<extra_id_n>`, `0 <= n < num_sentinels`."""
        n = np.asarray(n)
        if np.any((n < 0) | (n >= self.num_sentinels)):
            raise ValueError(
                f"`n` must be in [0, {self.num_sentinels - 1}]. Received: {n}"
            )
        return self.extra_id(n)

    def image_id(self, code):
        """Id of VQ-GAN code `code`."""
        c = np.asarray(code)
        if np.any((c < 0) | (c >= self.image_vocab_size)):
            raise ValueError(
                f"`code` must be in [0, {self.image_vocab_size - 1}]. Received: {code}"
            )
        out = c + self.image_offset
        return int(out) if out.ndim == 0 else out

    # Ranges as `(start, stop)` half-open pairs.
    @property
    def location_range(self):
        start = self.sentencepiece_size
        return (start, start + self.num_location_bins)

    @property
    def sentinel_range(self):
        start = self.sentencepiece_size + self.num_location_bins
        return (start, start + self.num_sentinels)

    @property
    def unused_range(self):
        return (self.extra_ids_end, self.image_start_id)

    @property
    def image_range(self):
        return (self.image_offset, self.vocab_size)

    def _in(self, token_id, rng):
        t = np.asarray(token_id)
        return (t >= rng[0]) & (t < rng[1])

    def is_text(self, token_id):
        """SentencePiece pieces proper (not pad/eos)."""
        t = np.asarray(token_id)
        return (t > self.eos_id) & (t < self.sentencepiece_size)

    def is_location(self, token_id):
        return self._in(token_id, self.location_range)

    def is_sentinel(self, token_id):
        return self._in(token_id, self.sentinel_range)

    def is_image(self, token_id):
        return self._in(token_id, self.image_range)

    def token_string(self, token_id):
        """Printable name of a non-SentencePiece id (never fails).

        Extra ids print as `<extra_id_n>` (so text round trips through the
        tokenizer), the rest as `<image_start>`, `<image_{code}>`,
        `<unused_{id}>` or `<invalid_{id}>`.
        """
        t = int(token_id)
        if self.sentencepiece_size <= t < self.extra_ids_end:
            return f"<extra_id_{self.extra_ids_end - 1 - t}>"
        if t == self.image_start_id:
            return "<image_start>"
        if self.image_offset <= t < self.vocab_size:
            return f"<image_{t - self.image_offset}>"
        if self.extra_ids_end <= t < self.image_start_id:
            return f"<unused_{t}>"
        return f"<invalid_{t}>"

    # ------------------------------------------------------------ config
    def get_config(self):
        return {
            "text_vocab_size": self.text_vocab_size,
            "image_vocab_size": self.image_vocab_size,
            "sentencepiece_size": self.sentencepiece_size,
            "num_location_bins": self.num_location_bins,
            "num_sentinels": self.num_sentinels,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and (
            self.get_config() == other.get_config()
        )

    def __hash__(self):
        return hash(tuple(sorted(self.get_config().items())))

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"Vocabulary({args})"
