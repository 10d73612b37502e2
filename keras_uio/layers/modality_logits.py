import keras
from keras import ops

from keras_uio.layers.attention_bias import MASKED


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
