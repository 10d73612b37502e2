import numpy as np
import pytest

from keras_uio.layers.take_per_example import take_per_example


@pytest.mark.parametrize("axis", [1, 3])
def test_equals_take_along_axis(axis):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 6)).astype("float32")
    index = rng.integers(0, x.shape[axis], (3, 2))
    shape = [1, 1, 1, 1]
    shape[0], shape[axis] = 3, 2
    expected = np.take_along_axis(
        x,
        np.broadcast_to(
            index.reshape(shape), x.shape[:axis] + (2,) + x.shape[axis + 1 :]
        ),
        axis,
    )
    np.testing.assert_array_equal(
        np.asarray(take_per_example(x, index, axis)), expected
    )
