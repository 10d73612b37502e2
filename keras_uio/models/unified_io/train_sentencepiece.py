import io

import sentencepiece as spm

MODEL_TYPES = ("unigram", "bpe", "word", "char")


def train_sentencepiece(sentences, vocabulary_size, model_type="unigram", **options):
    """A SentencePiece model with T5's special ids, trained on `sentences`.

    For a small domain (the bundled easy-vqa model, tests, a new task's
    own words) where T5's 32000-piece `spiece.model` is more than needed.
    The model has T5's id layout, pad 0, EOS 1, unk 2 and no BOS, which
    `UnifiedIOTokenizer` requires; keras_hub's
    `compute_sentence_piece_proto` cannot set those ids.

    Args:
        sentences: list of str, the training text (repeat a short list to
            give SentencePiece enough of it).
        vocabulary_size: int, the most pieces (3 of them special). A small
            corpus may give fewer; SentencePiece's hard limit is off.
        model_type: `"unigram"` (T5's), `"bpe"`, `"word"` or `"char"`.
        **options: further `SentencePieceTrainer.train` options, e.g.
            `character_coverage=1.0`.

    Returns:
        bytes: the serialized model, for `UnifiedIOTokenizer(proto=...)`.

    Example:

    ```python
    import keras_uio

    proto = keras_uio.train_sentencepiece(
        ["which region does the text describe ?"] * 50, vocabulary_size=30
    )
    tokenizer = keras_uio.UnifiedIOTokenizer(proto=proto)
    tokenizer.detokenize(tokenizer("which region ?"))  # 'which region ?'
    ```
    """
    if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
        raise ValueError(
            "train_sentencepiece: `sentences` must be a list of strings, got "
            f"{type(sentences).__name__}."
        )
    if not any(s.strip() for s in sentences):
        raise ValueError("train_sentencepiece: `sentences` has no text.")
    if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int):
        raise ValueError(
            "train_sentencepiece: `vocabulary_size` must be an int, got "
            f"{vocabulary_size!r}."
        )
    if vocabulary_size < 4:
        raise ValueError(
            "train_sentencepiece: `vocabulary_size` must be at least 4 (pad, "
            f"EOS and unk take 3 ids), got {vocabulary_size}."
        )
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"train_sentencepiece: unknown `model_type` {model_type!r}; one of "
            f"{', '.join(MODEL_TYPES)}."
        )
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocabulary_size,
        model_type=model_type,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
        **options,
    )
    return model.getvalue()
