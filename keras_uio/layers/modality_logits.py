import keras
from keras import ops

from keras_uio.layers.attention_bias import MASKED
from keras_uio.layers.projected_cross_entropy import projected_cross_entropy
from keras_uio.layers.quantized_weights import int8_matmul
from keras_uio.layers.quantized_weights import is_int8


class QuantizedTable(tuple):
    """An int8 output matrix: `(values [E, N] int8, scale [N], inputs_quantizer)`.

    What `ModalityLogits.output_table` returns for a token embedding that
    `model.quantize("int8")` quantized; `ModalityLogits.logits` multiplies
    by the int8 values and scales the `[..., N]` result (the float table is
    `values / scale`, Keras' per-row int8 layout of an embedding).
    """

    __slots__ = ()

    def __new__(cls, values, scale, inputs_quantizer):
        return super().__new__(cls, (values, scale, inputs_quantizer))


@keras.saving.register_keras_serializable(package="keras_uio")
class ModalityLogits(keras.layers.Layer):
    """The output layer: decoder states to each modality's logits.

    The embedding table is tied, so the logits of a state `y` are
    `(y / sqrt(hidden_dim)) . embedding^T`, computed (as `logits`) over the
    rows of the position's own modality only: text and location ids at
    text positions, image codes at image positions. The other modality's
    ids would be set to -1e10 anyway, as the original does; skipping them
    saves a third (text) to two thirds (image) of the output matmul.
    `logits` is the one place the scale and the table slice are applied:
    the functional model, `UnifiedIOBackbone.decode`, the training loss
    (`cross_entropy`) and the decode loop all go through it.

    Args:
        vocabulary_size: int. Text + location ids; image codes follow.
        hidden_dim: int.

    Call arguments:
        hidden: `[B, Lt + Li, E]` final decoder states.
        embeddings: `[vocabulary_size + image_vocabulary_size, E]`, the
            tied token embeddings, or the `ReversibleEmbedding` layer
            holding them. Pass the layer when it may be quantized
            (`model.quantize("int8", type_check=False)` quantizes it): its
            int8 table is only meaningful with its scales, which every
            method here then reads (a bare int8 table is refused). Keras
            takes a layer argument by keyword only:
            `modality_logits(hidden, embeddings=layer, text_length=...)`.
        text_length: int, or a `[B, Lt]` tensor whose length is used.

    Returns `(text_logits [B, Lt, V], image_logits [B, Li, V])`, float32,
    with the other modality's ids set to -1e10 (the original's logits).

    Example:

    ```python
    import numpy as np
    layer = ModalityLogits(vocabulary_size=3, hidden_dim=4)
    hidden = np.ones((1, 5, 4), "float32")
    embeddings = np.ones((6, 4), "float32")
    text, image = layer(hidden, embeddings, text_length=2)
    text.shape, image.shape  # (1, 2, 6), (1, 3, 6)
    ```
    """

    def __init__(self, vocabulary_size, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim

    def output_table(self, embeddings, image_mode):
        """One modality's output matrix `[E, N]` in the compute dtype.

        The rows of `embeddings` for image codes (`image_mode=True`) or for
        text and location ids, transposed: XLA:CPU reads a table ~2x faster
        in this layout for one state at a time (the decode loop's
        matrix-vector product), and folds the transpose into the matmul
        elsewhere.

        `embeddings` may be the embedding layer; when it is int8-quantized
        the result is a `QuantizedTable` (the int8 rows, transposed the same
        way, and their scales), which `logits` accepts in place of a table:
        the decode loop then reads 1 byte per weight per step.
        """
        if _is_layer(embeddings) and is_int8(embeddings):
            values, scale = embeddings._embeddings, embeddings.embeddings_scale
            if image_mode:
                values = values[self.vocabulary_size :]
                scale = scale[self.vocabulary_size :]
            else:
                values = values[: self.vocabulary_size]
                scale = scale[: self.vocabulary_size]
            return QuantizedTable(
                ops.transpose(values), scale, embeddings.inputs_quantizer
            )
        table = ops.cast(self._float_table(embeddings), self.compute_dtype)
        if image_mode:
            table = table[self.vocabulary_size :]
        else:
            table = table[: self.vocabulary_size]
        return ops.transpose(table)

    def logits(self, hidden, table):
        """Float32 logits of states `hidden [..., E]` over `table [E, N]`.

        `table` is an `output_table`. The matmul runs in the compute dtype
        (bfloat16 under a `mixed_bfloat16` policy, as T5X does).
        """
        if isinstance(table, QuantizedTable):
            values, scale, inputs_quantizer = table
            logits = int8_matmul(
                self._scaled(hidden),
                values,
                scale,
                inputs_quantizer,
                self.compute_dtype,
            )
            return ops.cast(logits, "float32")
        return ops.cast(ops.matmul(self._scaled(hidden), table), "float32")

    def project(self, hidden, embeddings, text_length, full_vocabulary=True):
        """Logits of each modality computed over its own ids only.

        Args:
            hidden: `[B, Lt + Li, E]` final decoder states.
            embeddings: the tied token embeddings.
            text_length: int, or a `[B, Lt]` tensor whose length is used.
            full_vocabulary: bool. `True` pads each part back to the full
                width with -1e10 for the other modality (what `__call__`
                returns); `False` returns `text [B, Lt, vocabulary_size]`
                (index = id) and `image [B, Li, image_vocabulary_size]`
                (index = image code = id - vocabulary_size).

        Returns:
            `(text_logits, image_logits)`, float32.
        """
        if not isinstance(text_length, int):
            text_length = ops.shape(text_length)[1]
        total = _num_rows(embeddings)
        parts = []
        for image_mode, hidden_part in (
            (False, hidden[:, :text_length]),
            (True, hidden[:, text_length:]),
        ):
            table = self.output_table(embeddings, image_mode)
            logits = self.logits(hidden_part, table)
            if full_vocabulary:
                logits = self.widen(logits, image_mode, total)
            parts.append(logits)
        return tuple(parts)

    def cross_entropy(self, hidden, embeddings, targets, image_mode):
        """Token cross-entropy of one modality's positions, without logits.

        Equal to the cross-entropy under `logits` for that modality,
        computed by `projected_cross_entropy` (on JAX in chunks of classes,
        so the `[B, L, N]` logits and their gradient are never stored
        whole).

        Args:
            hidden: `[B, L, E]` final decoder states of that modality's
                positions.
            embeddings: the tied token embeddings.
            targets: int `[B, L]`, indices into the modality's own ids (image
                code = id - vocabulary_size); must be in range.
            image_mode: bool.

        Returns:
            `(losses, hits)`, float32 `[B, L]`.
        """
        rows = self._scaled(hidden)
        batch, length = ops.shape(targets)[0], ops.shape(targets)[1]
        if image_mode:
            first_id, num_ids = self.vocabulary_size, None
        else:
            first_id, num_ids = 0, self.vocabulary_size
        losses, hits = projected_cross_entropy(
            ops.reshape(rows, (batch * length, -1)),
            ops.cast(self._float_table(embeddings), self.compute_dtype),
            ops.reshape(targets, (-1,)),
            first_id,
            num_ids,
        )
        return (
            ops.reshape(losses, (batch, length)),
            ops.reshape(hits, (batch, length)),
        )

    def _float_table(self, embeddings):
        """The `[V, E]` float table of `embeddings` (a table or the layer).

        A float layer's `embeddings` (with its LoRA update, if enabled); an
        int8 layer's values divided by their per-row scales, as its own
        lookup dequantizes them (a `[V, E]` float copy: fine for scoring
        and training passes, not used by the decode loop, which keeps the
        int8 values; see `output_table`).
        """
        if not _is_layer(embeddings):
            dtype = keras.backend.standardize_dtype(embeddings.dtype)
            if "int" in dtype:
                raise ValueError(
                    f"Received a {dtype} embedding table: a quantized "
                    "table is only meaningful with its scales; pass the "
                    "embedding layer itself (e.g. `backbone.token_embedding`)."
                )
            return embeddings
        if embeddings.quantization_mode is None:
            return embeddings.embeddings
        if is_int8(embeddings):
            return ops.divide(
                ops.cast(embeddings._embeddings, self.compute_dtype),
                ops.cast(embeddings.embeddings_scale, self.compute_dtype)[:, None],
            )
        # Any other mode: the layer's own lookup of every row dequantizes.
        return embeddings(ops.arange(embeddings.input_dim, dtype="int32"))

    def _scaled(self, hidden):
        # Scaling the `[..., E]` states rather than the `[..., N]` logits:
        # one logits-sized buffer fewer.
        scale = float(self.hidden_dim) ** 0.5
        return ops.cast(ops.cast(hidden, "float32") / scale, self.compute_dtype)

    def widen(self, logits, image_mode, total_size):
        """Pads own-id logits (`project(..., full_vocabulary=False)`) back to
        `total_size` ids, with -1e10 for the other modality's ids."""
        if image_mode:
            pad = (self.vocabulary_size, 0)
        else:
            pad = (0, total_size - self.vocabulary_size)
        return ops.pad(logits, [(0, 0), (0, 0), pad], constant_values=MASKED)

    def call(self, hidden, embeddings, text_length):
        return self.project(hidden, embeddings, text_length, full_vocabulary=True)

    def compute_output_spec(self, hidden, embeddings, text_length):
        batch, length = hidden.shape[:2]
        vocab = _num_rows(embeddings)
        if not isinstance(text_length, int):
            text_length = text_length.shape[1]
        image_length = None
        if length is not None and text_length is not None:
            image_length = length - text_length
        return (
            keras.KerasTensor((batch, text_length, vocab), "float32"),
            keras.KerasTensor((batch, image_length, vocab), "float32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"vocabulary_size": self.vocabulary_size, "hidden_dim": self.hidden_dim}
        )
        return config


def _is_layer(embeddings):
    return isinstance(embeddings, keras.layers.Layer)


def _num_rows(embeddings):
    if _is_layer(embeddings):
        return embeddings.input_dim
    return ops.shape(embeddings)[0]
