"""A tiny model memorises a 16-example mixture of three tasks.

Captioning, localisation and depth examples are drawn through
`keras_uio.data.Mixture` (encoded by the task modules, preprocessed by the
`UnifiedIOPreprocessor`), the model is fit to near-zero loss, and
`predict_tasks` then writes the training targets back: the captions, the
boxes (within two location bins) and the VQ-GAN codes of the target depth
images.

Everything is small so that it runs in the default suite: 64x64 images,
8x8 patches (64 per image), an f8 VQ-GAN (64 codes per image, 64-entry
codebook), one encoder and one decoder layer, and a word-level
SentencePiece model so that prompts are short. The frozen VQ-GAN's target
codes are computed once before `fit` rather than inside every step.
"""

import itertools

import keras
import numpy as np
import pytest

from keras_uio import VQGAN
from keras_uio import UnifiedIO
from keras_uio import UnifiedIOBackbone
from keras_uio import UnifiedIOImageConverter
from keras_uio import UnifiedIOPreprocessor
from keras_uio import UnifiedIOTokenizer
from keras_uio import train_sentencepiece
from keras_uio.data import Mixture
from keras_uio.preprocessing.dense import depth_to_image

COLORS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (230, 220, 20),
}
SHAPES = ("square", "circle", "triangle")
PROMPTS = [
    "What does the image describe ?",
    "What is the depth map of the image ?",
] + [f'Which region does the text " {shape} " describe ?' for shape in SHAPES]
MAX_DEPTH = 10.0  # `DepthTask`'s default


def _word_tokenizer(codes):
    sentences = PROMPTS + [f"a {c} {s}" for c in COLORS for s in SHAPES]
    proto = train_sentencepiece(sentences * 20, 64, model_type="word")
    return UnifiedIOTokenizer(proto=proto, image_vocab_size=codes)


def _draw(shape, color, box, size=(48, 64), background=(255, 255, 255)):
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    x1, y1, x2, y2 = box
    if shape == "square":
        inside = (xx >= x1) & (xx < x2) & (yy >= y1) & (yy < y2)
    elif shape == "circle":
        r = (x2 - x1) / 2
        inside = (xx - (x1 + x2) / 2) ** 2 + (yy - (y1 + y2) / 2) ** 2 <= r * r
    else:
        t = (yy - y1) / (y2 - y1)
        inside = (
            (yy >= y1) & (yy < y2) & (np.abs(xx - (x1 + x2) / 2) <= t * (x2 - x1) / 2)
        )
    image = np.zeros((height, width, 3), np.uint8) + np.array(background, np.uint8)
    image[inside] = COLORS[color]
    return image


def _datasets():
    """6 captioning, 5 localisation and 5 depth examples (16 in all)."""
    captions = [
        {"image": _draw(s, c, box), "caption": f"a {c} {s}"}
        for s, c, box in [
            ("square", "red", (4, 4, 24, 24)),
            ("circle", "blue", (30, 10, 50, 30)),
            ("triangle", "green", (10, 20, 40, 44)),
            ("square", "yellow", (36, 20, 60, 44)),
            ("circle", "red", (8, 14, 28, 34)),
            ("square", "blue", (20, 8, 44, 32)),
        ]
    ]
    boxes = [
        {
            "image": _draw(s, c, box),
            "object_name": s,
            "boxes": np.array([box], "float64"),
        }
        for s, c, box in [
            ("square", "green", (6, 6, 22, 30)),
            ("circle", "yellow", (26, 12, 50, 36)),
            ("triangle", "red", (34, 4, 62, 40)),
            ("square", "red", (12, 24, 36, 46)),
            ("circle", "blue", (2, 2, 26, 26)),
        ]
    ]
    yy, xx = np.mgrid[:64, :64]
    depth = []
    for i, (a, bx, by) in enumerate(
        [
            (1.0, 0.05, 0.0),
            (2.0, 0.0, 0.1),
            (8.0, -0.08, 0.0),
            (5.0, 0.0, -0.05),
            (3.0, 0.03, 0.03),
        ]
    ):
        image = _draw(
            SHAPES[i % 3],
            list(COLORS)[i % 4],
            (10 + 4 * i, 8, 30 + 4 * i, 28),
            size=(64, 64),
            background=(90, 90, 90),
        )
        depth.append(
            {"image": image, "depth": np.clip(a + bx * xx + by * yy, 0.5, 9.5)}
        )
    return captions, boxes, depth


def _encode_codes(vqgan, images):
    """VQ-GAN codes of `[N, 64, 64, 3]` target pixels, one compiled call."""
    if keras.config.backend() != "jax":
        return np.asarray(keras.ops.convert_to_numpy(vqgan.encode(images)))
    import jax

    @jax.jit
    def encode(values, images):
        with keras.StatelessScope(state_mapping=zip(vqgan.variables, values)):
            return vqgan.encode(images)

    return np.asarray(encode([v.value for v in vqgan.variables], images))


# ~1 min. The default suite keeps fit on a Mixture (tests/backends, TensorFlow
# and PyTorch) and fit on JAX (test_training.py); .ci/run runs this one.
@pytest.mark.slow
def test_tiny_model_overfits_a_three_task_mixture_and_generates_its_targets():
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    num_codes = 64
    tokenizer = _word_tokenizer(num_codes)
    vqgan = VQGAN(
        image_size=64,
        channels=32,
        channel_multipliers=[1, 1, 1, 1],
        num_res_blocks=1,
        attention_resolutions=[],
        z_channels=8,
        codebook_size=num_codes,
        embed_dim=8,
    )
    assert vqgan.num_codes == 64  # f8: an 8x8 grid
    backbone = UnifiedIOBackbone(
        vocabulary_size=tokenizer.vocab.text_vocab_size,
        image_vocabulary_size=num_codes,
        hidden_dim=64,
        num_heads=4,
        head_dim=16,
        num_encoder_layers=1,
        num_decoder_layers=1,
        intermediate_dim=128,
        image_size=64,
        patch_size=8,
        max_encoder_text_length=16,
        max_decoder_text_length=8,
        max_decoder_image_length=64,
    )
    preprocessor = UnifiedIOPreprocessor(
        tokenizer,
        image_converter=UnifiedIOImageConverter(image_size=64, patch_size=8),
        target_image_converter=UnifiedIOImageConverter(
            image_size=64, patch_size=8, target=True
        ),
        encoder_sequence_length=16,
        decoder_sequence_length=8,
    )
    model = UnifiedIO(backbone, vqgan, preprocessor=preprocessor)

    captions, boxes, depth = _datasets()
    mixture = Mixture(
        [("captioning", captions), ("localization", boxes), ("depth", depth)],
        group_rates={
            "image_captioning": 1,
            "sparse_labelling": 1,
            "dense_labelling": 1,
        },
        seed=0,
        tokenizer=tokenizer,
    )
    # 32 draws (two batches) read every dataset at least once through.
    draws = mixture.sample_entries(32)
    assert all(
        draws.count(name) >= n
        for name, n in (("captioning", 6), ("localization", 5), ("depth", 5))
    )
    parts = list(itertools.islice(mixture.batches(preprocessor, batch_size=16), 2))
    x, y, sw = (
        {k: np.concatenate([p[i][k] for p in parts]) for k in parts[0][i]}
        for i in range(3)
    )

    # The frozen VQ-GAN's codes of the depth targets (and, in the same call,
    # of the five depth images to compare the generated codes with).
    pixels = x.pop("image_decoder_targets")
    masks = x.pop("image_target_masks")
    rows = masks.any(axis=1)
    expected_targets = np.stack(
        [
            preprocessor.target_image_converter.convert(
                depth_to_image(d["depth"], MAX_DEPTH)[0]
            )["images"]
            for d in depth
        ]
    )
    codes = _encode_codes(vqgan, np.concatenate([pixels[rows], expected_targets]))
    expected_codes = codes[rows.sum() :]
    ids = np.zeros((len(pixels), num_codes), "int32")
    ids[rows] = codes[: rows.sum()]
    ids += backbone.vocabulary_size
    x["image_decoder_inputs"] = np.concatenate(
        [np.full((len(ids), 1), backbone.image_start_id), ids[:, :-1]], axis=1
    ).astype("int32")
    y["image_decoder_targets"] = ids
    sw["image_decoder_targets"] = masks

    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y, sw))
        .repeat()
        .shuffle(len(ids), seed=0)
        .batch(16)
    )
    # Decayed to zero over the run: at a constant 1e-2 the loss spiked late
    # in the run for some float orderings (0.014 at epoch 5, 0.054 at 10).
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=200)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    history = model.fit(dataset, steps_per_epoch=20, epochs=10, verbose=0).history
    assert history["loss"][-1] < 0.05, history["loss"]
    assert history["loss"][-1] < 0.01 * history["loss"][0]

    examples = (
        [{"task": "captioning", "image": e["image"]} for e in captions]
        + [
            {
                "task": "localization",
                "image": e["image"],
                "object_name": e["object_name"],
            }
            for e in boxes
        ]
        + [{"task": "depth", "image": e["image"]} for e in depth]
    )
    results = model.predict_tasks(examples, greedy=True)
    assert [r["caption"] for r in results[:6]] == [e["caption"] for e in captions]
    bin_size = 64 / tokenizer.vocab.num_location_bins  # max(H, W) / bins
    for example, result in zip(boxes, results[6:11]):
        assert result["errors"] == []
        np.testing.assert_allclose(result["boxes"], example["boxes"], atol=2 * bin_size)
    for codes, result in zip(expected_codes, results[11:]):
        np.testing.assert_array_equal(result["image_codes"], codes)
        assert result["depth"].shape == (64, 64)
