"""Shared helpers for the task tests (imported as a plain module)."""

import numpy as np

from keras_uio.preprocessing.images import postprocess_output_image
from keras_uio.preprocessing.images import preprocess_target_image
from keras_uio.vocab import Vocabulary

VOCAB = Vocabulary()  # the released 33152 / 16384 layout

# A few SentencePiece-range ids with fixed words: enough to read labels
# without a tokenizer model.
WORDS = {
    100: "a",
    101: "dog",
    102: "bed",
    103: "1",
    104: "2",
    105: "3",
    106: "black",
    107: "person",
    108: "x",
}
IDS = {w: i for i, w in WORDS.items()}


def detokenize(ids):
    return " ".join(WORDS.get(int(i), f"<piece_{int(i)}>") for i in ids)


def words(text):
    return [IDS[w] for w in text.split()]


def through_model_frame(target_image):
    """What the decoder would see if the VQ-GAN were perfect."""
    pixels, _ = preprocess_target_image(target_image)
    return postprocess_output_image(pixels)


def image(h=480, w=640):
    return np.zeros((h, w, 3), np.uint8)
