"""Plain NumPy preprocessing: images (resize/pad/masks) and dense labels."""

from keras_uio.preprocessing.dense import depth_to_image
from keras_uio.preprocessing.dense import image_to_depth
from keras_uio.preprocessing.dense import image_to_normals
from keras_uio.preprocessing.dense import image_to_segmentation
from keras_uio.preprocessing.dense import normals_to_image
from keras_uio.preprocessing.dense import remove_small_components
from keras_uio.preprocessing.dense import segmentation_to_image
from keras_uio.preprocessing.images import pil_to_array
from keras_uio.preprocessing.images import postprocess_output_image
from keras_uio.preprocessing.images import prepare_image
from keras_uio.preprocessing.images import preprocess_image
from keras_uio.preprocessing.images import preprocess_target_image
from keras_uio.preprocessing.images import read_image
from keras_uio.preprocessing.images import resize_and_pad
from keras_uio.preprocessing.images import undo_image_preprocessing
