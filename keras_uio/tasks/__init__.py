"""Unified-IO tasks: prompts in, structured predictions out.

Every task is a `Task` subclass registered in `TASKS` under its `name`;
`get_task(name)` builds one (`registry.py`). See `keras_uio/tasks/task.py`
for the protocol (`build_prompt`, `encode_inputs`, `encode_example`,
`decode`).

Example:
>>> import numpy as np
>>> from keras_uio.tasks import get_task
>>> task = get_task("object_detection")
>>> inputs, meta = task.encode_inputs(image=np.zeros((480, 640, 3), "uint8"))
>>> task.decode("<extra_id_350> <extra_id_453> <extra_id_593> <extra_id_843> bed",
...             meta=meta)["labels"]
['bed']
"""

from keras_uio.tasks.box_task import BoxTask
from keras_uio.tasks.captioning import CaptioningTask
from keras_uio.tasks.depth import DepthTask
from keras_uio.tasks.grounded_vqa import GroundedVQATask
from keras_uio.tasks.image_classification import ImageClassificationTask
from keras_uio.tasks.inpainting import InpaintingTask
from keras_uio.tasks.keypoints import KeypointTask
from keras_uio.tasks.localization import LocalizationTask
from keras_uio.tasks.object_detection import ObjectDetectionTask
from keras_uio.tasks.predict import predict_tasks
from keras_uio.tasks.referring_expression import ReferringExpressionTask
from keras_uio.tasks.region_captioning import RegionCaptioningTask
from keras_uio.tasks.region_classification import RegionClassificationTask
from keras_uio.tasks.registry import OUTPUT_MODES
from keras_uio.tasks.registry import TASKS
from keras_uio.tasks.registry import get_task
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.relationship_detection import RelationshipDetectionTask
from keras_uio.tasks.segmentation import SegmentationTask
from keras_uio.tasks.segmentation_to_image import SegmentationToImageTask
from keras_uio.tasks.summarization import SummarizationTask
from keras_uio.tasks.surface_normals import SurfaceNormalsTask
from keras_uio.tasks.task import Task
from keras_uio.tasks.text_classification import TextClassificationTask
from keras_uio.tasks.text_qa import TextQATask
from keras_uio.tasks.text_task import TextTask
from keras_uio.tasks.text_to_image import TextToImageTask
from keras_uio.tasks.vqa import VQATask
