import keras
import numpy as np
from keras import ops

from keras_uio.layers.host_initializer import HostInitializer

_EPS = np.finfo(np.float32).eps


def _log_bucket(distance, max_exact, num_buckets, max_distance):
    """Logarithmic bucket of non-negative distances, in float32 like T5X."""
    distance = np.asarray(distance)
    ratio = distance.astype(np.float32) / np.float32(max_exact) + _EPS
    scale = np.float32(np.log(np.float32(max_distance / max_exact)))
    large = max_exact + (
        np.log(ratio) / scale * np.float32(num_buckets - max_exact)
    ).astype(np.int32)
    large = np.minimum(large, num_buckets - 1)
    return np.where(distance < max_exact, distance, large).astype(np.int32)


def text_relative_bucket(
    distance, bidirectional=True, num_buckets=32, max_distance=128
):
    """T5 relative-position bucket of `distance = query_pos - key_pos`.

    Bidirectional (encoder): half the buckets per sign (`+num_buckets / 2`
    for keys after the query), exact below `num_buckets / 4`. Causal
    (decoder): keys after the query share bucket 0, exact below
    `num_buckets / 2`. Beyond that, logarithmic up to `max_distance`.

    Example:

    ```python
    text_relative_bucket([0, 1, -1, 200], bidirectional=True)
    # array([ 0,  1, 17, 15], dtype=int32)
    ```
    """
    n = np.asarray(distance, dtype=np.int64)
    offset = 0
    if bidirectional:
        num_buckets //= 2
        offset = np.where(n < 0, num_buckets, 0)
        n = np.abs(n)
    else:
        n = np.maximum(n, 0)
    bucket = _log_bucket(n, num_buckets // 2, num_buckets, max_distance)
    return (offset + bucket).astype(np.int32)


def image_relative_bucket(dx, dy, num_buckets=8, max_distance=20):
    """2-D bucket of `(dx, dy) = query - key` on an image grid.

    A quadrant (3: dx <= 0 and dy < 0; 2: dx < 0 and dy >= 0; 1: dx > 0
    and dy <= 0; else 0) selects one of four `num_buckets ** 2` blocks; inside
    it the bucket is `b(|dx|) + num_buckets * b(|dy|)` with `b` exact below
    `num_buckets / 2` and logarithmic up to `max_distance`.

    Example:

    ```python
    image_relative_bucket([1, 0], [0, -2])  # array([ 65, 208], dtype=int32)
    ```
    """
    dx = np.asarray(dx, dtype=np.int64)
    dy = np.asarray(dy, dtype=np.int64)
    block = num_buckets**2
    quadrant = np.select(
        [(dx <= 0) & (dy < 0), (dx < 0) & (dy >= 0), (dx > 0) & (dy <= 0)],
        [3, 2, 1],
        0,
    )
    max_exact = num_buckets // 2
    bx = _log_bucket(np.abs(dx), max_exact, num_buckets, max_distance)
    by = _log_bucket(np.abs(dy), max_exact, num_buckets, max_distance)
    return (quadrant * block + bx + num_buckets * by).astype(np.int32)


@keras.saving.register_keras_serializable(package="keras_uio")
class RelativePositionBias(keras.layers.Layer):
    """Unified-IO relative position bias for one `[text ; image]` sequence.

    Text-text pairs get T5 buckets (`text_num_buckets` per head), image-image
    pairs 2-D quadrant buckets on a grid `image_grid_width` wide
    (`4 * image_num_buckets ** 2` per head), text-image pairs no bias. One
    instance serves every layer of a stack, as in the original.

    Buckets saturate at `max_distance`, so they are looked up in small
    precomputed tables: exact on every backend and for any length.

    Args:
        num_heads: int. Attention heads.
        image_grid_width: int. Patches per image row (24 for the encoder's
            384x384 input, 16 for the decoder's 16x16 VQ-GAN codes).
        bidirectional: bool. `True` for the encoder, `False` (causal) for
            the decoder.
        text_num_buckets, text_max_distance, image_num_buckets,
        image_max_distance: the bucket settings (32, 128, 8, 20).

    Call arguments:
        text_length, image_length: ints or scalar int tensors.

    Returns `[1, num_heads, L, L]` with `L = text_length + image_length`.

    Example:

    ```python
    bias = RelativePositionBias(num_heads=4, image_grid_width=2)
    bias(text_length=3, image_length=4).shape  # (1, 4, 7, 7)
    ```
    """

    def __init__(
        self,
        num_heads,
        image_grid_width,
        bidirectional=True,
        text_num_buckets=32,
        text_max_distance=128,
        image_num_buckets=8,
        image_max_distance=20,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.image_grid_width = image_grid_width
        self.bidirectional = bidirectional
        self.text_num_buckets = text_num_buckets
        self.text_max_distance = text_max_distance
        self.image_num_buckets = image_num_buckets
        self.image_max_distance = image_max_distance
        span = np.arange(-text_max_distance, text_max_distance + 1)
        self._text_table = text_relative_bucket(
            span, bidirectional, text_num_buckets, text_max_distance
        )
        span = np.arange(-image_max_distance, image_max_distance + 1)
        dx, dy = np.meshgrid(span, span, indexing="ij")
        self._image_table = image_relative_bucket(
            dx, dy, image_num_buckets, image_max_distance
        ).reshape(-1)

    def build(self, *args, **kwargs):
        init = HostInitializer("uniform", 1.0, mode="fan_avg")
        self.text_bias = self.add_weight(
            name="text_bias",
            shape=(self.num_heads, self.text_num_buckets),
            initializer=init,
        )
        self.image_bias = self.add_weight(
            name="image_bias",
            shape=(self.num_heads, 4 * self.image_num_buckets**2),
            initializer=init,
        )
        self.built = True

    def _text_block(self, length):
        pos = ops.arange(length, dtype="int32")
        limit = self.text_max_distance
        distance = ops.clip(pos[:, None] - pos[None, :], -limit, limit)
        bucket = ops.take(self._text_table, distance + limit)
        return ops.take(ops.cast(self.text_bias, "float32"), bucket, axis=1)

    def _image_block(self, length):
        pos = ops.arange(length, dtype="int32")
        x = pos % self.image_grid_width
        y = pos // self.image_grid_width
        limit = self.image_max_distance
        dx = ops.clip(x[:, None] - x[None, :], -limit, limit) + limit
        dy = ops.clip(y[:, None] - y[None, :], -limit, limit) + limit
        bucket = ops.take(self._image_table, dx * (2 * limit + 1) + dy)
        return ops.take(ops.cast(self.image_bias, "float32"), bucket, axis=1)

    def call(self, text_length, image_length):
        text = self._text_block(text_length)
        image = self._image_block(image_length)
        heads = self.num_heads
        top = ops.concatenate(
            [text, ops.zeros((heads, text_length, image_length))], axis=2
        )
        bottom = ops.concatenate(
            [ops.zeros((heads, image_length, text_length)), image], axis=2
        )
        return ops.concatenate([top, bottom], axis=1)[None]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "image_grid_width": self.image_grid_width,
                "bidirectional": self.bidirectional,
                "text_num_buckets": self.text_num_buckets,
                "text_max_distance": self.text_max_distance,
                "image_num_buckets": self.image_num_buckets,
                "image_max_distance": self.image_max_distance,
            }
        )
        return config
