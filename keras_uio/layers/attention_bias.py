import keras
from keras import ops

from keras_uio.layers.absolute_position_bias import AbsolutePositionBias
from keras_uio.layers.relative_position_bias import RelativePositionBias

MASKED = -1e10


def pair_mask(query_mask, key_mask):
    """`[B, 1, Lq, Lk]` float32: 1 where both positions are valid."""
    query_mask = ops.cast(query_mask, "float32")[:, None, :, None]
    key_mask = ops.cast(key_mask, "float32")[:, None, None, :]
    return query_mask * key_mask


def padding_bias(query_mask, key_mask):
    """`[B, 1, Lq, Lk]` float32: 0 where both positions are valid, else -1e10."""
    return (1.0 - pair_mask(query_mask, key_mask)) * MASKED


def key_padding_bias(key_mask):
    """`[B, 1, 1, Lk]` float32: 0 for valid keys, -1e10 for padding.

    Masks keys only: the rows of padded queries are not masked (their outputs
    are garbage that no valid position reads), which lets the bias broadcast
    over heads and queries instead of filling `[B, heads, Lq, Lk]`.
    """
    key_mask = ops.cast(key_mask, "float32")[:, None, None, :]
    return (1.0 - key_mask) * MASKED


@keras.saving.register_keras_serializable(package="keras_uio")
class AttentionBias(keras.layers.Layer):
    """The additive self-attention bias of one Unified-IO stack.

    Sum of the padding (and, for the decoder, causal) mask, the relative
    position bias and the absolute position bias; computed once per forward
    pass and shared by every layer of the stack.

    Args:
        num_heads: int.
        head_dim: int.
        image_grid_width: int. Width of the image patch/code grid.
        causal: bool. `False` for the encoder, `True` for the decoder.

    Call arguments:
        positions: `[1, L, hidden_dim]` raw position embeddings.
        text_mask: `[B, Lt]` 1 for real tokens.
        image_mask: `[B, Li]` 1 for real patches/codes.

    Returns float32 `[B, num_heads, L, L]`, `L = Lt + Li` (padding masks
    keys only: rows of padded queries are not masked).

    Example:

    ```python
    import numpy as np
    layer = AttentionBias(num_heads=2, head_dim=4, image_grid_width=2)
    bias = layer(np.random.rand(1, 6, 8).astype("float32"),
                 np.ones((1, 2), "int32"), np.ones((1, 4), "int32"))
    bias.shape  # (1, 2, 6, 6)
    ```
    """

    def __init__(self, num_heads, head_dim, image_grid_width, causal=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.image_grid_width = image_grid_width
        self.causal = causal
        self.relative = RelativePositionBias(
            num_heads,
            image_grid_width,
            bidirectional=not causal,
            dtype=self.dtype_policy,
            name="relative",
        )
        self.absolute = AbsolutePositionBias(
            num_heads, head_dim, dtype=self.dtype_policy, name="absolute"
        )

    def build(self, positions_shape, *args, **kwargs):
        self.relative.build()
        self.absolute.build(positions_shape)
        self.built = True

    def position_bias(self, positions, text_length, image_length):
        """The content-independent part, `[1, heads, L, L]`."""
        relative = self.relative(text_length=text_length, image_length=image_length)
        return relative + self.absolute(positions)

    def subset(self, positions, text_length, index, mask):
        """Encoder bias over a subset of the positions, per example.

        Args:
            positions: `[1, L, hidden_dim]` raw position embeddings of the
                full sequence (`text_length` text positions, then image).
            text_length: int, the text positions in `positions`.
            index: `[B, L']` int, the positions kept (into `[0, L)`).
            mask: `[B, L']` 1 for the kept positions that are real.

        Returns float32 `[B, num_heads, L', L']`: the full sequence's
        position bias at the kept rows and columns plus the key padding of
        `mask`, so attention over the subset equals attention over the
        full sequence with every other position masked.
        """
        length = ops.shape(positions)[1]
        full = self.position_bias(positions, text_length, length - text_length)
        # One gather of (row, column) pairs from the flattened bias: its
        # gradient is scattered straight into the `[heads, L * L]` bias
        # (gathering rows, then columns, built a `[B, heads, L', L]`
        # gradient: 39 MB at `uio_small`'s training peak).
        flat = ops.reshape(full[0], (self.num_heads, -1))
        index = ops.convert_to_tensor(index, "int32")
        pairs = index[:, :, None] * length + index[:, None, :]
        bias = ops.transpose(ops.take(flat, pairs, axis=1), (1, 0, 2, 3))
        return bias + key_padding_bias(mask)

    def call(self, positions, text_mask, image_mask):
        text_length = ops.shape(text_mask)[1]
        image_length = ops.shape(image_mask)[1]
        mask = ops.concatenate([text_mask, image_mask], axis=1)
        # Batch-independent `[1, heads, L, L]` part (position biases and the
        # causal mask) plus a `[B, 1, 1, L]` key-padding mask: the sum
        # broadcasts inside each layer's logits instead of being materialised
        # per example. Rows of padded queries differ from the original's
        # (which masks them entirely); valid positions are identical.
        bias = self.position_bias(positions, text_length, image_length)
        if self.causal:
            idx = ops.arange(ops.shape(mask)[1])
            causal = ops.where(idx[:, None] >= idx[None, :], 0.0, MASKED)
            bias = bias + causal[None, None]
        return bias + key_padding_bias(mask)

    def compute_output_spec(self, positions, text_mask, image_mask):
        batch, text_length = text_mask.shape
        image_length = image_mask.shape[1]
        length = None
        if text_length is not None and image_length is not None:
            length = text_length + image_length
        return keras.KerasTensor((batch, self.num_heads, length, length), "float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "image_grid_width": self.image_grid_width,
                "causal": self.causal,
            }
        )
        return config
