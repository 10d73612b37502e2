import numpy as np
import pytest

from keras_uio.convert.checkpoint import read_checkpoint_shapes
from keras_uio.convert.vqgan_weights import vqgan_config_from_shapes
from keras_uio.convert.vqgan_weights import vqgan_variable_map
from keras_uio.models.vqgan.vqgan import VQGAN
from keras_uio.models.vqgan.vqgan_presets import vqgan_presets


@pytest.fixture(scope="module")
def vae_shapes(reference_checkpoint):
    shapes = read_checkpoint_shapes(reference_checkpoint)
    return {p[1:]: s for p, s in shapes.items() if p[0] == "discrete_vae"}


def test_config_from_shapes(vae_shapes, reference_checkpoint):
    expected = vqgan_presets["vqgan_tiny"]["config"]
    assert vqgan_config_from_shapes(vae_shapes) == expected
    # Full checkpoint paths work as they are.
    full = read_checkpoint_shapes(reference_checkpoint)
    assert vqgan_config_from_shapes(full) == expected
    # The grid size sets the image size and the attention resolutions.
    smaller = vqgan_config_from_shapes(vae_shapes, grid_size=8)
    assert smaller["image_size"] == 128
    assert smaller["attention_resolutions"] == [8]


def test_config_from_shapes_rejects_other_parameters(vae_shapes):
    with pytest.raises(ValueError, match="encoder/conv_in/kernel"):
        vqgan_config_from_shapes({("encoder", "layers_0", "kernel"): (3, 3)})
    broken = {k: v for k, v in vae_shapes.items() if k[0] != "quantize"}
    with pytest.raises(ValueError, match="quantize/embedding"):
        vqgan_config_from_shapes(broken)
    with pytest.raises(ValueError, match="grid_size"):
        vqgan_config_from_shapes(vae_shapes, grid_size=0)


def test_variable_map_covers_checkpoint_exactly(vae_shapes):
    vqgan = VQGAN(**vqgan_config_from_shapes(vae_shapes))
    variables = vqgan_variable_map(vqgan)
    assert set(variables) == set(vae_shapes)
    for path, variable in variables.items():
        assert tuple(variable.shape) == tuple(vae_shapes[path]), path
    assert len({id(v) for v in variables.values()}) == len(vqgan.weights)
    assert len(variables) == len(vqgan.weights)
    # Decoder levels are named from the lowest resolution up.
    assert variables[("decoder", "up_0_attn_0", "q", "kernel")].shape == (
        1,
        1,
        64,
        64,
    )
    assert ("decoder", "up_4_upsample", "conv", "kernel") not in variables
    assert variables[("encoder", "norm_out", "scale")].shape == (64,)


def test_variable_map_assignment_changes_the_model(vae_shapes):
    vqgan = VQGAN(**vqgan_config_from_shapes(vae_shapes))
    variables = vqgan_variable_map(vqgan)
    row = np.arange(16, dtype="float32")
    variables[("quantize", "embedding")].assign(np.tile(row, (256, 1)))
    np.testing.assert_array_equal(
        np.asarray(vqgan.quantize.lookup(np.array([[5]]))), row[None, None]
    )
    with pytest.raises(ValueError, match="VQGAN"):
        vqgan_variable_map(object())
