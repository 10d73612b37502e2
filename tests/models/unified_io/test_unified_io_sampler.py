import numpy as np
import pytest
from keras import ops

from keras_uio.layers.attention_bias import MASKED
from keras_uio.models.unified_io.unified_io_sampler import UnifiedIOSampler
from keras_uio.models.unified_io.unified_io_sampler import categorical
from keras_uio.models.unified_io.unified_io_sampler import uniform_draws


def test_categorical_is_the_inverse_cdf():
    # Probabilities 0.2, 0.3, 0.5: cumulative 0.2, 0.5, 1.0.
    logits = np.log(np.array([[0.2, 0.3, 0.5]] * 5, "float32"))
    uniform = np.array([0.0, 0.19, 0.21, 0.49, 0.999], "float32")
    ids = ops.convert_to_numpy(categorical(logits, uniform))
    np.testing.assert_array_equal(ids, [0, 0, 1, 1, 2])


def test_categorical_takes_uniforms_of_any_array_kind():
    # On a GPU the logits are device tensors and the uniforms host arrays
    # (NumPy times a CUDA tensor failed on PyTorch); a list must work too.
    logits = ops.convert_to_tensor(np.log(np.array([[0.2, 0.3, 0.5]] * 3, "float32")))
    for uniform in ([0.1, 0.4, 0.9], np.array([0.1, 0.4, 0.9], "float32")):
        ids = ops.convert_to_numpy(categorical(logits, uniform))
        np.testing.assert_array_equal(ids, [0, 1, 2])


def test_categorical_never_draws_a_masked_id():
    logits = np.array([[MASKED, 0.0, MASKED, 0.0, MASKED]] * 100, "float32")
    uniform = (np.arange(100) / 100).astype("float32")
    ids = ops.convert_to_numpy(categorical(logits, uniform))
    assert set(ids.tolist()) == {1, 3}
    assert (ids[:50] == 1).all() and (ids[50:] == 3).all()


def test_draw_frequencies_follow_the_distribution():
    probs = np.array([0.1, 0.6, 0.3], "float32")
    uniform = uniform_draws(5, 1, 20000)[0]
    logits = np.tile(np.log(probs), (len(uniform), 1))
    ids = ops.convert_to_numpy(categorical(logits, uniform))
    counts = np.bincount(ids, minlength=3) / len(ids)
    np.testing.assert_allclose(counts, probs, atol=0.01)


def test_top_p_keeps_the_nucleus_only():
    sampler = UnifiedIOSampler("top_p", vocabulary_size=4, total_size=4, p=0.7)
    # 0.5 + 0.3 reach 0.7: ids 0 and 1 stay, 2 and 3 never come.
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]] * 200, "float32"))
    uniform = np.linspace(0, 1, 200, endpoint=False).astype("float32")
    tokens, log_probs = sampler.select(logits, True, uniform)
    tokens = ops.convert_to_numpy(tokens)
    assert set(tokens.tolist()) == {0, 1}
    # Scores are log-probabilities before the nucleus cut.
    np.testing.assert_allclose(
        ops.convert_to_numpy(log_probs), np.log([0.5, 0.3])[tokens], rtol=1e-5
    )


def test_uniform_draws_per_row_do_not_depend_on_the_batch():
    small, large = uniform_draws(3, 2, 16), uniform_draws(3, 5, 16)
    np.testing.assert_array_equal(small, large[:2])
    assert small.dtype == np.float32 and 0 <= small.min() and small.max() < 1
    assert not np.array_equal(uniform_draws(4, 2, 16), small)
    np.testing.assert_array_equal(uniform_draws(None, 1, 8), uniform_draws(0, 1, 8))


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_a_bad_seed_is_named(seed):
    with pytest.raises(ValueError, match="`seed` must be an int >= 0"):
        uniform_draws(seed, 1, 4)
