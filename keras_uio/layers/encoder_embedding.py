import keras
from keras import ops

from keras_uio.layers.host_initializer import HostInitializer
from keras_uio.layers.patch_embedding import PatchEmbedding
from keras_uio.layers.rms_norm import RMSNorm

try:  # not public API: where it moves, length checks simply run always
    from keras.src.backend.common.symbolic_scope import in_symbolic_scope
except ImportError:  # pragma: no cover

    def in_symbolic_scope():
        return False


def check_length(name, length, limit, what):
    """Raises when a static sequence `length` exceeds `limit` position rows.

    Shapes traced symbolically are not inputs: Keras' PyTorch backend infers
    output shapes by running layers on placeholder tensors whose unknown
    dimensions are 83 and 89 (inside a `keras.SymbolicScope`), so the check
    is skipped there, as it is for dynamic (non-`int`) lengths.

    Args:
        name: str. The input named in the error.
        length: int or tensor. The sequence length.
        limit: int. The position rows available.
        what: str. `"encoder"` or `"decoder"`, for the error.
    """
    if not isinstance(length, int) or in_symbolic_scope():
        return
    if length > limit:
        raise ValueError(
            f"`{name}` has {length} tokens; the {what} has position "
            f"embeddings for at most {limit}."
        )


def position_rows(table, ids):
    """`table[ids]`, with `ids` clipped into the table while tracing shapes.

    Placeholder lengths (see `check_length`) can exceed the table; the rows
    read then only shape the traced output, so clipping keeps the gather
    valid on every device without changing any real result.
    """
    if in_symbolic_scope():
        ids = ops.minimum(ids, ops.shape(table)[0] - 1)
    return ops.take(table, ids, axis=0)


def add_embedding_tables(layer, num_positions, num_segments):
    """Adds `position_embeddings` and `segment_embeddings` to `layer`."""
    init = HostInitializer("normal", 1.0)
    layer.position_embeddings = layer.add_weight(
        name="position_embeddings",
        shape=(num_positions, layer.hidden_dim),
        initializer=init,
    )
    layer.segment_embeddings = layer.add_weight(
        name="segment_embeddings",
        shape=(num_segments, layer.hidden_dim),
        initializer=init,
    )


@keras.saving.register_keras_serializable(package="keras_uio")
class EncoderEmbedding(keras.layers.Layer):
    """Embeds `[text ; image patches]` for the Unified-IO encoder.

    Text: token embeddings (given) + segment 0 + position row `p`, then
    RMSNorm. Image: patch projection + segment 1 + position row
    `max_text_length + p`, then its own RMSNorm. The raw position rows are
    returned too, for the absolute position bias.

    Args:
        hidden_dim: int.
        patch_size: int.
        max_text_length: int. Text position rows (256).
        max_image_length: int. Image position rows (576 = 24 x 24 patches).
        num_segments: int. Segment embeddings (2; 8 in XL).

    Call arguments:
        token_embeddings: `[B, Lt, hidden_dim]`.
        images: `[B, H, W, 3]` normalised pixels with
            `(H / patch_size) * (W / patch_size) == max_image_length`.
        image_indices: optional int `[B, n]`, the patches to embed per
            example (the paper's patch subset); the others are dropped
            before the projection.

    Returns `(embeddings [B, Lt + Li, hidden_dim], positions [1, Lt + Li,
    hidden_dim])`; with `image_indices` the embeddings have `Lt + n`
    positions (the kept patches in the given order) and `positions` still
    covers every patch.

    Example:

    ```python
    import numpy as np
    layer = EncoderEmbedding(8, patch_size=16, max_text_length=4,
                             max_image_length=4, num_segments=2)
    x, pos = layer(np.zeros((1, 3, 8), "float32"),
                   np.zeros((1, 32, 32, 3), "float32"))  # (1, 7, 8)
    ```
    """

    def __init__(
        self,
        hidden_dim,
        patch_size,
        max_text_length,
        max_image_length,
        num_segments,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.patch_size = patch_size
        self.max_text_length = max_text_length
        self.max_image_length = max_image_length
        self.num_segments = num_segments
        policy = self.dtype_policy
        self.patch_embedding = PatchEmbedding(
            patch_size, hidden_dim, dtype=policy, name="patch_embedding"
        )
        self.text_norm = RMSNorm(dtype=policy, name="text_norm")
        self.image_norm = RMSNorm(dtype=policy, name="image_norm")

    def build(self, token_embeddings_shape, images_shape):
        add_embedding_tables(
            self, self.max_text_length + self.max_image_length, self.num_segments
        )
        self.patch_embedding.build(images_shape)
        self.text_norm.build((None, None, self.hidden_dim))
        self.image_norm.build((None, None, self.hidden_dim))
        self.built = True

    def embed_text(self, token_embeddings):
        """The text part alone: `(RMSNorm(tokens + segment 0 + position),
        raw position rows [Lt, hidden_dim])`."""
        text_length = ops.shape(token_embeddings)[1]
        check_length(
            "text_encoder_inputs", text_length, self.max_text_length, "encoder"
        )
        table = ops.cast(self.position_embeddings, self.compute_dtype)
        segments = ops.cast(self.segment_embeddings, self.compute_dtype)
        positions = position_rows(table, ops.arange(text_length))
        return self.text_norm(token_embeddings + segments[0] + positions), positions

    def call(self, token_embeddings, images, image_indices=None):
        text, text_pos = self.embed_text(token_embeddings)
        _, height, width, _ = ops.shape(images)
        image_length = None
        if isinstance(height, int) and isinstance(width, int):
            image_length = (height // self.patch_size) * (width // self.patch_size)
        if image_length is not None and image_length != self.max_image_length:
            raise ValueError(
                f"`image_encoder_inputs` gives {image_length} patches of "
                f"{self.patch_size}x{self.patch_size}; this model expects "
                f"{self.max_image_length}. Resize images to the model's "
                "`image_size` first."
            )
        table = ops.cast(self.position_embeddings, self.compute_dtype)
        segments = ops.cast(self.segment_embeddings, self.compute_dtype)
        image_pos = table[self.max_text_length :]
        kept_pos = image_pos
        if image_indices is not None:
            kept_pos = ops.take(image_pos, image_indices, axis=0)
        image = self.patch_embedding(images, image_indices) + segments[1] + kept_pos
        embeddings = ops.concatenate([text, self.image_norm(image)], axis=1)
        positions = ops.concatenate([text_pos, image_pos], axis=0)[None]
        return embeddings, positions

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "patch_size": self.patch_size,
                "max_text_length": self.max_text_length,
                "max_image_length": self.max_image_length,
                "num_segments": self.num_segments,
            }
        )
        return config
