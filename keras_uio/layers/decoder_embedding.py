import keras
from keras import ops

from keras_uio.layers.encoder_embedding import add_embedding_tables
from keras_uio.layers.encoder_embedding import check_length
from keras_uio.layers.encoder_embedding import position_rows
from keras_uio.layers.rms_norm import RMSNorm


@keras.saving.register_keras_serializable(package="keras_uio")
class DecoderEmbedding(keras.layers.Layer):
    """Embeds the decoder's `[text ; image]` token sequence.

    `RMSNorm(token + position + segment)`: text token `p` uses position row
    `p` and segment 0, image token `p` uses row `max_text_length + p` and
    segment 1. Also returns the raw position rows for the absolute bias.

    Args:
        hidden_dim: int.
        max_text_length: int. Text position rows (256).
        max_image_length: int. Image position rows (256 VQ-GAN codes).
        num_segments: int.

    Call arguments:
        text_embeddings: `[B, Lt, hidden_dim]` token embeddings.
        image_embeddings: `[B, Li, hidden_dim]` token embeddings.

    Example:

    ```python
    import numpy as np
    layer = DecoderEmbedding(8, max_text_length=4, max_image_length=4,
                             num_segments=2)
    y, pos = layer(np.zeros((1, 2, 8), "float32"),
                   np.zeros((1, 4, 8), "float32"))  # (1, 6, 8)
    ```
    """

    def __init__(
        self, hidden_dim, max_text_length, max_image_length, num_segments, **kwargs
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.max_text_length = max_text_length
        self.max_image_length = max_image_length
        self.num_segments = num_segments
        self.norm = RMSNorm(dtype=self.dtype_policy, name="norm")

    def build(self, *args, **kwargs):
        add_embedding_tables(
            self, self.max_text_length + self.max_image_length, self.num_segments
        )
        self.norm.build((None, None, self.hidden_dim))
        self.built = True

    def position_ids(self, text_length, image_length):
        """Position-table rows of a `[text ; image]` sequence."""
        for name, length, limit in (
            ("text_decoder_inputs", text_length, self.max_text_length),
            ("image_decoder_inputs", image_length, self.max_image_length),
        ):
            check_length(name, length, limit, "decoder")
        return ops.concatenate(
            [
                ops.arange(text_length, dtype="int32"),
                self.max_text_length + ops.arange(image_length, dtype="int32"),
            ]
        )

    def positions(self, text_length, image_length):
        """Raw position rows `[1, L, hidden_dim]` of a `[text ; image]` sequence."""
        table = ops.cast(self.position_embeddings, self.compute_dtype)
        ids = self.position_ids(text_length, image_length)
        return position_rows(table, ids)[None]

    def embed(self, token_embeddings, positions, segment_ids):
        """`RMSNorm(token + positions + segment)` for any slice of the sequence."""
        segments = ops.cast(self.segment_embeddings, self.compute_dtype)
        segment = ops.take(segments, segment_ids, axis=0)
        return self.norm(token_embeddings + positions + segment)

    def call(self, text_embeddings, image_embeddings):
        text_length = ops.shape(text_embeddings)[1]
        image_length = ops.shape(image_embeddings)[1]
        positions = self.positions(text_length, image_length)
        segment_ids = ops.concatenate(
            [
                ops.zeros((text_length,), "int32"),
                ops.ones((image_length,), "int32"),
            ]
        )
        tokens = ops.concatenate([text_embeddings, image_embeddings], axis=1)
        return self.embed(tokens, positions, segment_ids), positions

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "max_text_length": self.max_text_length,
                "max_image_length": self.max_image_length,
                "num_segments": self.num_segments,
            }
        )
        return config
