"""Nearest-neighbour vector quantization with a learned codebook."""

import keras
from keras import ops

from keras_uio.layers.host_initializer import HostInitializer


@keras.saving.register_keras_serializable(package="keras_uio")
class VectorQuantizer(keras.layers.Layer):
    """Replaces each input vector by its nearest codebook row.

    The codebook (`embedding`, `[codebook_size, embed_dim]`) is compared with
    every input vector `z` by the squared distance written as
    `|z|^2 + |e|^2 - 2 z.e`, exactly as the original VQ-GAN, in float32 under
    any dtype policy; the code is the argmin (first index on ties).

    Calling the layer on `[..., embed_dim]` returns `(codes, quantized)`:
    int32 codes `[...]` and the chosen rows `[..., embed_dim]` with a
    straight-through gradient (`z + stop_gradient(e - z)`, so the encoder
    receives the decoder's gradient unchanged). With `with_losses=True` a
    third value holds the VQ-VAE losses as a dict:
    `codebook_loss = mean((e - stop_gradient(z))^2)` (trains the codebook),
    `commitment_loss = mean((stop_gradient(e) - z)^2)` (trains the encoder)
    and `loss = commitment_loss + beta * codebook_loss`, the weighting of
    the Unified-IO code (taming-transformers puts `beta` on the commitment
    term instead; both terms are returned so a trainer can choose).

    Args:
        codebook_size: int. Number of codebook rows (codes).
        embed_dim: int. Size of each codebook vector.
        beta: float. Weight of the codebook term in `loss`, as written in
            the original (0.25).
        embeddings_initializer: initializer of the codebook.
        dtype: string or `keras.DTypePolicy`.
        **kwargs: other `keras.layers.Layer` arguments (`name`, ...).

    Example:

    ```python
    import numpy as np
    from keras_uio.models.vqgan.vector_quantizer import VectorQuantizer

    quantizer = VectorQuantizer(codebook_size=256, embed_dim=16)
    z = np.random.rand(2, 4, 4, 16).astype("float32")
    codes, quantized = quantizer(z)  # (2, 4, 4) int32, (2, 4, 4, 16)
    rows = quantizer.lookup(codes)  # == quantized
    ```
    """

    def __init__(
        self,
        codebook_size,
        embed_dim,
        beta=0.25,
        embeddings_initializer=None,
        dtype=None,
        **kwargs,
    ):
        # Inputs keep their dtype (no autocast to a bfloat16 compute dtype):
        # the nearest-code search needs them in full precision.
        kwargs.setdefault("autocast", False)
        super().__init__(dtype=dtype, **kwargs)
        for name, value in (
            ("codebook_size", codebook_size),
            ("embed_dim", embed_dim),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"`{name}` must be a positive int. Received: {name}={value!r}"
                )
        self.codebook_size = codebook_size
        self.embed_dim = embed_dim
        self.beta = float(beta)
        if embeddings_initializer is None:
            embeddings_initializer = HostInitializer("uniform", 1.0, mode="fan_avg")
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] != self.embed_dim:
            raise ValueError(
                f"`{self.name}` expects inputs whose last axis is "
                f"embed_dim={self.embed_dim}. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        self.embedding = self.add_weight(
            shape=(self.codebook_size, self.embed_dim),
            initializer=self.embeddings_initializer,
            name="embedding",
            autocast=False,  # read in float32 even under a mixed policy
        )
        self.built = True

    def distances(self, inputs):
        """Squared distances `[N, codebook_size]` of `[..., D]` inputs."""
        flat = ops.reshape(ops.cast(inputs, "float32"), (-1, self.embed_dim))
        codebook = ops.cast(self.embedding, "float32")
        return (
            ops.sum(ops.square(flat), axis=1, keepdims=True)
            + ops.sum(ops.square(codebook), axis=1)
            - 2 * ops.einsum("nd,kd->nk", flat, codebook)
        )

    def lookup(self, codes):
        """The codebook rows `[..., embed_dim]` of int `codes` `[...]`."""
        rows = ops.take(self.embedding, ops.cast(codes, "int32"), axis=0)
        return ops.cast(rows, self.compute_dtype)

    def call(self, inputs, with_losses=False):
        codes = ops.cast(ops.argmin(self.distances(inputs), axis=-1), "int32")
        codes = ops.reshape(codes, ops.shape(inputs)[:-1])
        rows = ops.cast(self.lookup(codes), "float32")
        z = ops.cast(inputs, "float32")
        quantized = z + ops.stop_gradient(rows - z)
        quantized = ops.cast(quantized, self.compute_dtype)
        if not with_losses:
            return codes, quantized
        commitment = ops.mean(ops.square(ops.stop_gradient(rows) - z))
        codebook = ops.mean(ops.square(rows - ops.stop_gradient(z)))
        losses = {
            "codebook_loss": codebook,
            "commitment_loss": commitment,
            "loss": commitment + self.beta * codebook,
        }
        return codes, quantized, losses

    def compute_output_spec(self, inputs, with_losses=False):
        return quantizer_output_spec(inputs, self.compute_dtype, with_losses)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "codebook_size": self.codebook_size,
                "embed_dim": self.embed_dim,
                "beta": self.beta,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config


def quantizer_output_spec(inputs, dtype, with_losses):
    """Output spec of a quantizer layer: codes, vectors and maybe losses."""
    shape = tuple(inputs.shape)
    codes = keras.KerasTensor(shape[:-1], dtype="int32")
    quantized = keras.KerasTensor(shape, dtype=dtype)
    if not with_losses:
        return codes, quantized
    scalar = keras.KerasTensor((), dtype="float32")
    return (
        codes,
        quantized,
        dict.fromkeys(("codebook_loss", "commitment_loss", "loss"), scalar),
    )
