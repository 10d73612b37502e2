"""Training data: task mixtures and pre-training objectives.

- `Mixture`: the paper's sampling rules (task groups with group rates,
  `size ** (1/T)` inside a group), seeded, infinite and streaming, with a
  pure-Python iterator, NumPy batches and a `tf.data.Dataset` for
  `model.fit`.
- `objectives`: T5 span corruption on token ids, masked image denoising
  through the patch mask, modality drop, and `DenoisingTask`.

Example:
>>> from keras_uio.data import Mixture, PAPER_GROUP_RATES
>>> round(sum(PAPER_GROUP_RATES.values()), 6), len(PAPER_GROUP_RATES)
(1.0, 8)
"""

from keras_uio.data.batching import output_signature
from keras_uio.data.batching import preprocess_examples
from keras_uio.data.mixture import DEFAULT_TASK_GROUPS
from keras_uio.data.mixture import GROUPS
from keras_uio.data.mixture import PAPER_GROUP_RATES
from keras_uio.data.mixture import Mixture
from keras_uio.data.mixture_entry import MixtureEntry
from keras_uio.data.objectives import OBJECTIVES
from keras_uio.data.objectives import DenoisingTask
from keras_uio.data.objectives import drop_modality
from keras_uio.data.objectives import hide_patches
from keras_uio.data.objectives import random_spans_noise_mask
from keras_uio.data.objectives import select_patches
from keras_uio.data.objectives import span_corruption
from keras_uio.data.objectives import undo_span_corruption
