import keras
from keras import ops

from keras_uio.layers.attention_bias import MASKED
from keras_uio.layers.projected_cross_entropy import projected_cross_entropy


@keras.saving.register_keras_serializable(package="keras_uio")
class ModalityLogits(keras.layers.Layer):
    """Splits decoder logits into text and image parts and masks each.

    Logits arrive as `y . embedding^T` (float32); this layer divides by
    `sqrt(hidden_dim)` (tied embeddings), sets image ids (`>=
    vocabulary_size`) to -1e10 at text positions and text ids to -1e10 at
    image positions, as the original does.

    Args:
        vocabulary_size: int. Text + location ids; image codes follow.
        hidden_dim: int.

    Call arguments:
        logits: `[B, Lt + Li, vocabulary_size + image_vocabulary_size]`.
        text_length: int, or a `[B, Lt]` tensor whose length is used.

    Example:

    ```python
    import numpy as np
    layer = ModalityLogits(vocabulary_size=3, hidden_dim=4)
    text, image = layer(np.zeros((1, 5, 6), "float32"), text_length=2)
    text.shape, image.shape  # (1, 2, 6), (1, 3, 6)
    ```
    """

    def __init__(self, vocabulary_size, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim

    def mask(self, logits, image_mode):
        """Masks `logits [..., V]` for text (`image_mode=False`) or image."""
        ids = ops.arange(ops.shape(logits)[-1])
        forbidden = ids >= self.vocabulary_size
        if image_mode:
            forbidden = ops.logical_not(forbidden)
        logits = ops.cast(logits, "float32") / float(self.hidden_dim) ** 0.5
        return ops.where(forbidden, MASKED, logits)

    def project(self, hidden, embeddings, text_length, full_vocabulary=True):
        """Logits of each modality computed over its own ids only.

        The training-path output layer: text positions are multiplied by
        the text + location rows of the tied embedding table only, image
        positions by the image-code rows only, which skips a third (text)
        and two thirds (image) of the full-vocabulary matmul. Equal to
        `call(hidden @ embeddings^T, text_length)` on the ids it keeps.

        Args:
            hidden: `[B, Lt + Li, E]` final decoder states.
            embeddings: `[vocabulary_size + image_vocabulary_size, E]`, the
                tied token embeddings.
            text_length: int, or a `[B, Lt]` tensor whose length is used.
            full_vocabulary: bool. `True` pads each part back to the full
                width with -1e10 for the other modality (the same shape and
                values as `call`); `False` returns `text [B, Lt,
                vocabulary_size]` (index = id) and `image [B, Li,
                image_vocabulary_size]` (index = image code = id -
                vocabulary_size).

        Returns:
            `(text_logits, image_logits)`, float32 (the matmul itself runs
            in the layer's compute dtype: bfloat16 under a bfloat16 policy,
            where `call`'s input comes from a float32 matmul).
        """
        if not isinstance(text_length, int):
            text_length = ops.shape(text_length)[1]
        total = ops.shape(embeddings)[0]
        parts = []
        for image_mode, hidden_part in (
            (False, hidden[:, :text_length]),
            (True, hidden[:, text_length:]),
        ):
            rows, table = self._own(hidden_part, embeddings, image_mode)
            # The matmul runs in the compute dtype (bfloat16 under a
            # `mixed_bfloat16` policy, as T5X does); the result is float32.
            logits = ops.cast(ops.matmul(rows, ops.transpose(table)), "float32")
            if full_vocabulary:
                logits = self.widen(logits, image_mode, total)
            parts.append(logits)
        return tuple(parts)

    def cross_entropy(self, hidden, embeddings, targets, image_mode):
        """Token cross-entropy of one modality's positions, without logits.

        Equal to the cross-entropy under `project(..., full_vocabulary=
        False)`'s logits for that modality, computed by
        `projected_cross_entropy` (on JAX in chunks of classes, so the
        `[B, L, N]` logits and their gradient are never stored whole).

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
            ops.cast(embeddings, self.compute_dtype),
            ops.reshape(targets, (-1,)),
            first_id,
            num_ids,
        )
        return (
            ops.reshape(losses, (batch, length)),
            ops.reshape(hits, (batch, length)),
        )

    def _own(self, hidden, embeddings, image_mode):
        """Scaled rows and the modality's own embedding rows, both in the
        compute dtype."""
        table = ops.cast(embeddings, self.compute_dtype)
        if image_mode:
            table = table[self.vocabulary_size :]
        else:
            table = table[: self.vocabulary_size]
        return self._scaled(hidden), table

    def _scaled(self, hidden):
        # Scaling the `[B, L, E]` rows rather than the `[B, L, N]` logits:
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

    def call(self, logits, text_length):
        if not isinstance(text_length, int):
            text_length = ops.shape(text_length)[1]
        text = self.mask(logits[:, :text_length], image_mode=False)
        image = self.mask(logits[:, text_length:], image_mode=True)
        return text, image

    def compute_output_spec(self, logits, text_length):
        batch, length, vocab = logits.shape
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
