"""Bucket functions checked against values worked out by hand from the spec."""

import numpy as np
import pytest

from keras_uio.layers.relative_position_bias import RelativePositionBias
from keras_uio.layers.relative_position_bias import image_relative_bucket
from keras_uio.layers.relative_position_bias import text_relative_bucket


@pytest.mark.parametrize(
    "distance, bucket",
    [
        (0, 0),
        (7, 7),  # exact below max_exact = 8
        (8, 8),  # 8 + int(log(1) / log(16) * 8)
        (16, 10),  # 8 + int(log(2) / log(16) * 8) = 8 + 2 (needs the eps)
        (127, 15),  # 8 + int(7.97)
        (500, 15),  # saturates at num_buckets / 2 - 1
        (-1, 17),  # keys after the query: +16
        (-16, 26),
        (-500, 31),
    ],
)
def test_text_bucket_bidirectional(distance, bucket):
    assert text_relative_bucket(distance, bidirectional=True) == bucket


@pytest.mark.parametrize(
    "distance, bucket",
    [
        (-5, 0),  # future keys share bucket 0
        (15, 15),  # exact below max_exact = 16
        (16, 16),
        (32, 21),  # 16 + int(log(2) / log(8) * 16) = 16 + 5
        (127, 31),  # 16 + int(15.9)
        (1000, 31),
    ],
)
def test_text_bucket_causal(distance, bucket):
    assert text_relative_bucket(distance, bidirectional=False) == bucket


@pytest.mark.parametrize(
    "dx, dy, bucket",
    [
        (0, 0, 0),
        (1, 0, 64 + 1),  # quadrant 1: dx > 0, dy <= 0
        (-1, 0, 128 + 1),  # quadrant 2: dx < 0, dy >= 0
        (0, -1, 192 + 8),  # quadrant 3: dx <= 0, dy < 0
        (0, 1, 8),  # quadrant 0
        (5, 0, 64 + 4),  # 4 + int(log(5/4) / log(5) * 4) = 4
        (23, 0, 64 + 7),  # saturates at 7
        (-3, -20, 192 + 3 + 8 * 7),
        (2, 3, 2 + 8 * 3),
    ],
)
def test_image_bucket(dx, dy, bucket):
    assert image_relative_bucket(dx, dy) == bucket


def _layer(grid_width, bidirectional=True):
    layer = RelativePositionBias(
        num_heads=2, image_grid_width=grid_width, bidirectional=bidirectional
    )
    layer.build()
    heads = np.arange(2)[:, None]
    layer.text_bias.assign(100 * heads + np.arange(32)[None])
    layer.image_bias.assign(1000 * heads + np.arange(256)[None])
    return layer


def test_layer_uses_grid_width_from_config():
    # Query patch 17 and key patch 0: on a 16-wide grid that is (dx, dy) =
    # (1, 1) -> bucket 9; on a 24-wide grid (17, 0) -> quadrant 1, bucket 71.
    text_length = 3
    for width, bucket in ((16, 9), (24, 64 + 7)):
        bias = np.asarray(_layer(width)(text_length=3, image_length=20))
        assert bias.shape == (1, 2, 23, 23)
        q, k = text_length + 17, text_length + 0
        assert bias[0, 1, q, k] == 1000 + bucket


def test_layer_blocks():
    bias = np.asarray(_layer(4, bidirectional=False)(text_length=5, image_length=8))
    # text-image and image-text pairs get no bias
    assert not bias[0, :, :5, 5:].any() and not bias[0, :, 5:, :5].any()
    # causal text buckets: query 4, key 0 -> distance 4; key 4 -> 0 for query 0
    assert bias[0, 0, 4, 0] == 4 and bias[0, 0, 0, 4] == 0
    assert bias[0, 1, 4, 0] == 104


def test_config_round_trip():
    layer = RelativePositionBias(3, 16, bidirectional=False)
    clone = RelativePositionBias.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
