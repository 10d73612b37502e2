"""Unified-IO tokenizer: T5 SentencePiece + 1100 extra ids."""

import re

import keras
import numpy as np
from keras_hub.tokenizers import SentencePieceTokenizer

from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
from keras_uio.vocab import Vocabulary

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover
    tf = None

_SPACE = "\u2581"  # SentencePiece word-boundary marker
# The whitespace dropped around special tokens: Python's `\s` (the
# characters of `str.isspace`), spelled out because RE2's `\s` (tf.data
# path) is ASCII only; both paths must strip the same characters.
_WHITESPACE = (
    0x09,
    0x0A,
    0x0B,
    0x0C,
    0x0D,
    0x1C,
    0x1D,
    0x1E,
    0x1F,
    0x20,
    0x85,
    0xA0,
    0x1680,
    *range(0x2000, 0x200B),
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
)
_WS_PYTHON = "[" + "".join(re.escape(chr(c)) for c in _WHITESPACE) + "]"
_WS_RE2 = "[" + "".join(f"\\x{{{c:x}}}" for c in _WHITESPACE) + "]"
# tf.data path: special tokens are set apart by `_MARK`; an `_ESCAPE` in
# the text is written `_ESCAPED` meanwhile. `_ESCAPE` is neither whitespace
# nor part of a special token, so the split is the eager one for any text.
_ESCAPE = "\x01"
_ESCAPE_RE2 = r"\x01"
_ESCAPED = _ESCAPE + "0"
_MARK = _ESCAPE + "1"
# The original detokenizes with HF's T5Tokenizer, which decodes the text
# between extra ids on its own and joins the parts with one space: an extra
# id is always followed by a space.
_NOT_WS_PYTHON = "[^" + _WS_PYTHON[1:]
_NOT_WS_RE2 = "[^" + _WS_RE2[1:]
_EXTRA_ID_THEN_TEXT = re.compile(rf"(<extra_id_\d+>)({_NOT_WS_PYTHON})")
_EXTRA_ID_THEN_TEXT_RE2 = rf"(<extra_id_\d+>)({_NOT_WS_RE2})"


def _unsplittable_pattern(num_extra_ids):
    numbers = "|".join(str(n) for n in range(num_extra_ids - 1, -1, -1))
    return rf"<extra_id_(?:{numbers})>|</s>|<pad>|<unk>"


@keras.saving.register_keras_serializable(package="keras_uio")
class UnifiedIOTokenizer(SentencePieceTokenizer):
    """The Unified-IO text tokenizer.

    The T5 SentencePiece vocabulary plus `num_location_bins + num_sentinels`
    extra ids, numbered as the original (HF `T5Tokenizer(extra_ids=1100)`):
    `<extra_id_n>` is id `sentencepiece_size + num_extra_ids - 1 - n`
    (33099 - n for T5), and location bin `b` is `<extra_id_{b + 100}>`.

    Prompts are tokenised like the original: `<extra_id_n>`, `</s>`,
    `<pad>` and `<unk>` written in the text are single tokens, the whitespace
    around them is dropped, and each text chunk between them is encoded by
    SentencePiece on its own (with its dummy-prefix `▁`). With
    `add_eos=True` (the original's behaviour, default) EOS (1) is appended.

    Detokenisation never fails: SentencePiece ids print as their pieces
    (pad/EOS print as nothing), extra ids as `<extra_id_n>` (so text round
    trips), and the other ids as `<image_start>`, `<image_{code}>`,
    `<unused_{id}>` or `<invalid_{id}>`. `vocabulary_size()` is the whole
    model vocabulary (text + image ids, 49536 for T5).

    Works eagerly (pure Python, `sentencepiece`) and inside `tf.data`
    (`tensorflow-text`), with identical ids.

    Args:
        proto: path or bytes of the SentencePiece model (T5's `spiece.model`,
            32000 pieces with pad=0, EOS=1, unk=2). Presets carry it as an
            asset.
        num_location_bins: int, 1000.
        num_sentinels: int, 100.
        text_vocab_size: int or `None`: the model's text vocabulary size;
            `None` gives `sentencepiece_size + extra ids + 52` (33152 for T5).
        image_vocab_size: int, number of VQ-GAN codes (16384).
        sequence_length: int or `None`: pad/truncate outputs to this length.
        add_eos: bool, append EOS (1) to every sequence.

    Example:
    ```python
    from keras_uio import train_sentencepiece
    proto = train_sentencepiece(
        ["which region does the text describe ?"] * 50, vocabulary_size=30
    )
    tokenizer = UnifiedIOTokenizer(proto=proto)
    ids = tokenizer('Which region " <extra_id_350> <extra_id_453> " ?')
    tokenizer.detokenize(ids)
    ```
    """

    backbone_cls = UnifiedIOBackbone

    def __init__(
        self,
        proto=None,
        num_location_bins=1000,
        num_sentinels=100,
        text_vocab_size=None,
        image_vocab_size=16384,
        sequence_length=None,
        add_eos=True,
        dtype="int32",
        **kwargs,
    ):
        self._add_special_token("</s>", "end_token")
        self._add_special_token("<pad>", "start_token")
        self._add_special_token("<pad>", "pad_token")
        self.num_location_bins = num_location_bins
        self.num_sentinels = num_sentinels
        self.text_vocab_size = text_vocab_size
        self.image_vocab_size = image_vocab_size
        self.append_eos = bool(add_eos)
        self.vocab = None
        self._names = None
        kwargs.pop("add_bos", None)
        super().__init__(
            proto=proto,
            sequence_length=sequence_length,
            dtype=dtype,
            add_bos=False,
            add_eos=False,
            **kwargs,
        )

    # ------------------------------------------------------------- setup
    def set_proto(self, proto):
        super().set_proto(proto)
        self._names = None
        if proto is None:
            self.vocab = None
            self._id_table = None
            return
        sp_size = self._vocabulary_size
        num_extra = self.num_location_bins + self.num_sentinels
        text_vocab_size = self.text_vocab_size
        if text_vocab_size is None:
            text_vocab_size = sp_size + num_extra + 52
        self.vocab = Vocabulary(
            text_vocab_size=text_vocab_size,
            image_vocab_size=self.image_vocab_size,
            sentencepiece_size=sp_size,
            num_location_bins=self.num_location_bins,
            num_sentinels=self.num_sentinels,
        )
        for name, want in (("pad", 0), ("eos", 1), ("unk", 2)):
            got = getattr(self._sentence_piece_spm, f"{name}_id")()
            if got != want:
                raise ValueError(
                    "The SentencePiece model must use T5's special ids "
                    f"(pad=0, eos=1, unk=2). Received: {name}_id={got}"
                )
        spm_ = self._sentence_piece_spm
        pieces = []
        for i in range(sp_size):
            if spm_.IsControl(i):
                pieces.append("")
            elif spm_.IsUnknown(i):
                pieces.append(_SPACE + "\u2047" + _SPACE)
            else:
                pieces.append(spm_.IdToPiece(i))
        names = [
            self.vocab.token_string(i) for i in range(sp_size, self.vocab.vocab_size)
        ]
        self._names = list(self._vocabulary) + names
        self._name_to_id = {t: i for i, t in enumerate(self._names)}
        self._id_table = np.array(pieces + [_SPACE + n for n in names], dtype=object)
        self._split_pattern = _unsplittable_pattern(num_extra)
        self._split_re = re.compile(
            rf"{_WS_PYTHON}*({self._split_pattern}){_WS_PYTHON}*"
        )
        self._tf_id_table = None

    def _special_id(self, token):
        if token.startswith("<extra_id_"):
            return self.vocab.extra_id(int(token[10:-1]))
        return {"<pad>": 0, "</s>": 1, "<unk>": 2}[token]

    # ------------------------------------------------------ vocabulary
    def vocabulary_size(self):
        """All ids the model can produce (text + location + image)."""
        self._check_vocabulary()
        return self.vocab.vocab_size

    def get_vocabulary(self):
        self._check_vocabulary()
        names = getattr(self, "_names", None)
        return list(self._vocabulary if names is None else names)

    def id_to_token(self, id):
        self._check_vocabulary()
        if id < 0 or id >= self.vocab.vocab_size:
            raise ValueError(
                f"`id` must be in range [0, {self.vocab.vocab_size - 1}]. "
                f"Received: {id}"
            )
        return self._names[id]

    def token_to_id(self, token):
        self._check_vocabulary()
        if hasattr(token, "numpy"):
            token = token.numpy()
        if isinstance(token, bytes):
            token = token.decode("utf-8")
        if getattr(self, "_name_to_id", None) is None:
            return self._token_to_id_map.get(token, self._unk_token_id)
        return self._name_to_id.get(token, self._unk_token_id)

    # ------------------------------------------------------- tokenize
    def _encode_text(self, text):
        ids = []
        pos = 0
        for m in self._split_re.finditer(text):
            chunk = text[pos : m.start()]
            if chunk:
                ids.extend(self._sentence_piece_spm.encode(chunk))
            ids.append(self._special_id(m.group(1)))
            pos = m.end()
        chunk = text[pos:]
        if chunk:
            ids.extend(self._sentence_piece_spm.encode(chunk))
        if self.append_eos:
            ids.append(self.vocab.eos_id)
        return ids

    def _tokenize_python(self, inputs):
        self._maybe_initialized_spm()
        if hasattr(inputs, "numpy") or keras.ops.is_tensor(inputs):
            inputs = np.asarray(
                inputs.numpy()
                if hasattr(inputs, "numpy")
                else keras.ops.convert_to_numpy(inputs)
            )
        batched = True
        if isinstance(inputs, (str, bytes)):
            inputs, batched = [inputs], False
        elif isinstance(inputs, np.ndarray):
            if inputs.ndim == 0:
                inputs, batched = [inputs.item()], False
            elif inputs.ndim == 1:
                inputs = inputs.tolist()
            else:
                raise ValueError(
                    "`inputs` must be a string or a 1-D batch of strings. "
                    f"Received shape: {inputs.shape}"
                )
        elif not isinstance(inputs, (list, tuple)):
            raise ValueError(
                "`inputs` must be a string or a list of strings. "
                f"Received: {type(inputs).__name__}"
            )
        texts = []
        for t in inputs:
            if isinstance(t, bytes):
                t = t.decode("utf-8")
            if not isinstance(t, str):
                raise ValueError(f"`inputs` must contain strings. Received: {t!r}")
            texts.append(t)
        out = [self._encode_text(t) for t in texts]
        if self.sequence_length:
            L = self.sequence_length
            out = np.array(
                [(ids + [0] * L)[:L] for ids in out], dtype=self.compute_dtype
            )
        if not batched:
            out = np.asarray(out[0], dtype=self.compute_dtype)
        return out

    def _split_graph(self, inputs):
        """`[B]` strings -> `[B, C]` chunks: text and special tokens.

        The same split as `_split_re` eagerly. Special tokens (with the
        whitespace around them dropped) are set apart by `_MARK`; any
        `_ESCAPE` already in the text is first written `_ESCAPE + "0"` and
        restored in each chunk, so no text can pass for a marker.
        (`tensorflow_text.regex_split` would avoid the marker but cuts
        strings at NUL.)
        """
        text = tf.strings.regex_replace(inputs, _ESCAPE_RE2, _ESCAPED)
        marked = tf.strings.regex_replace(
            text,
            rf"{_WS_RE2}*({self._split_pattern}){_WS_RE2}*",
            _MARK + r"\1" + _MARK,
        )
        chunks = tf.strings.split(marked, _MARK)
        flat = tf.strings.regex_replace(chunks.flat_values, _ESCAPED, _ESCAPE)
        return chunks.with_flat_values(flat)

    def _tokenize_graph(self, inputs):
        self._maybe_initialized_tf()
        inputs = tf.convert_to_tensor(inputs)
        unbatched = inputs.shape.rank == 0
        if unbatched:
            inputs = tf.expand_dims(inputs, 0)
        chunks = self._split_graph(inputs)  # [B, C]
        flat = chunks.flat_values
        is_special = tf.strings.regex_full_match(flat, self._split_pattern)
        number = tf.strings.regex_replace(flat, r"^<extra_id_(\d+)>$", r"\1")
        # Only special chunks are read as numbers: text such as
        # "2200000000" would overflow int32.
        is_number = is_special & tf.strings.regex_full_match(number, r"\d+")
        number = tf.strings.to_number(
            tf.where(is_number, number, "0"), out_type=tf.int32
        )
        special = self.vocab.extra_ids_end - 1 - number
        special = tf.where(tf.equal(flat, "</s>"), 1, special)
        special = tf.where(tf.equal(flat, "<pad>"), 0, special)
        special = tf.where(tf.equal(flat, "<unk>"), 2, special)
        text = tf.where(is_special, tf.constant(""), flat)
        pieces = self._sentence_piece.tokenize(text)
        pieces = tf.cast(pieces, tf.int32)
        special_rows = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(special, is_special),
            tf.cast(is_special, tf.int64),
        )
        per_chunk = tf.concat([pieces, special_rows], axis=1)
        tokens = chunks.with_flat_values(per_chunk).merge_dims(1, 2)
        if self.append_eos:
            eos = tf.ones([tokens.nrows(), 1], tf.int32)
            tokens = tf.concat([tokens, eos], axis=1)
        tokens = tf.cast(tokens, self.compute_dtype)
        if self.sequence_length:
            shape = [None, self.sequence_length]
            tokens = tokens.to_tensor(shape=shape, default_value=0)
        if unbatched:
            tokens = tf.squeeze(tokens, 0)
        return tokens

    def tokenize(self, inputs):
        self._check_vocabulary()
        if self._use_tf_workflow():
            from keras_hub.src.utils.tensor_utils import preprocessing_function

            return preprocessing_function(lambda self, x: self._tokenize_graph(x))(
                self, inputs
            )
        return self._tokenize_python(inputs)

    # ----------------------------------------------------- detokenize
    def _join(self, pieces):
        text = "".join(pieces).replace(_SPACE, " ")
        text = _EXTRA_ID_THEN_TEXT.sub(r"\1 \2", text)
        return text[1:] if text.startswith(" ") else text

    def _detokenize_python(self, inputs):
        if tf is not None and isinstance(inputs, tf.RaggedTensor):
            inputs = inputs.to_list()
        elif hasattr(inputs, "numpy"):
            inputs = inputs.numpy()
        elif keras.ops.is_tensor(inputs):
            inputs = keras.ops.convert_to_numpy(inputs)
        if isinstance(inputs, (int, np.integer)):
            inputs = [int(inputs)]
        if isinstance(inputs, np.ndarray):
            if inputs.ndim > 2:
                raise ValueError(
                    "`inputs` must be 0-, 1- or 2-D ids. "
                    f"Received shape: {inputs.shape}"
                )
            inputs = inputs.tolist()
            if not isinstance(inputs, list):
                inputs = [inputs]
        batched = bool(inputs) and isinstance(inputs[0], (list, tuple))
        rows = inputs if batched else [inputs]
        n = len(self._id_table)
        out = []
        for row in rows:
            pieces = []
            for i in row:
                i = int(i)
                if 0 <= i < n:
                    pieces.append(self._id_table[i])
                else:
                    pieces.append(f"{_SPACE}<invalid_{i}>")
            out.append(self._join(pieces))
        return out if batched else out[0]

    def _detokenize_graph(self, inputs):
        from keras_hub.src.utils.tensor_utils import convert_to_ragged_batch

        if self._tf_id_table is None:
            self._tf_id_table = tf.constant(self._id_table.astype(str))
        inputs, unbatched, _ = convert_to_ragged_batch(inputs)
        ids = tf.cast(inputs, tf.int64)
        n = len(self._id_table)

        def lookup(flat):
            ok = (flat >= 0) & (flat < n)
            names = tf.gather(self._tf_id_table, tf.clip_by_value(flat, 0, n - 1))
            bad = tf.strings.join(
                [f"{_SPACE}<invalid_", tf.strings.as_string(flat), ">"]
            )
            return tf.where(ok, names, bad)

        pieces = tf.ragged.map_flat_values(lookup, ids)
        text = tf.strings.reduce_join(pieces, axis=-1)
        text = tf.strings.regex_replace(text, _SPACE, " ")
        text = tf.strings.regex_replace(text, _EXTRA_ID_THEN_TEXT_RE2, r"\1 \2")
        text = tf.strings.regex_replace(text, "^ ", "")
        if unbatched:
            text = tf.squeeze(text, 0)
        return text

    def detokenize(self, inputs):
        """Ids -> text; never fails on any integer id."""
        self._check_vocabulary()
        if self._use_tf_workflow():
            from keras_hub.src.utils.tensor_utils import preprocessing_function

            return preprocessing_function(lambda self, x: self._detokenize_graph(x))(
                self, inputs
            )
        return self._detokenize_python(inputs)

    def compute_output_spec(self, input_spec):
        return keras.KerasTensor(
            input_spec.shape + (self.sequence_length,), dtype=self.compute_dtype
        )

    def get_config(self):
        config = super().get_config()
        config.pop("add_bos", None)
        config.update(
            {
                "num_location_bins": self.num_location_bins,
                "num_sentinels": self.num_sentinels,
                "text_vocab_size": self.text_vocab_size,
                "image_vocab_size": self.image_vocab_size,
                "add_eos": self.append_eos,
            }
        )
        return config
