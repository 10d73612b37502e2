"""Relationship detection: two regions -> the predicate relating them.

The released code has no prompt for this task; ours is
`What is the relationship between " {subject} " and " {object} " ?`, each
side the region's location tokens followed by its class name when given.
Quoted spans with spaces follow the original prompts' style.
"""

from keras_uio.tasks.checks import check_text
from keras_uio.tasks.registry import register_task
from keras_uio.tasks.text_task import TextTask


@register_task
class RelationshipDetectionTask(TextTask):
    """Name the relation between a subject and an object region.

    Inputs: `image`, `subject_region`, `object_region` (pixel boxes),
    optional `subject_name`, `object_name`. Training target: `relation`.
    Result: `"relation"` and `"triplet"` `(subject, relation, object)` (the
    names, or `None` where not given).

    Example:
    >>> import numpy as np
    >>> task = RelationshipDetectionTask()
    >>> inputs, meta = task.encode_inputs(
    ...     image=np.zeros((100, 100, 3), "uint8"),
    ...     subject_region=[10, 10, 50, 50], subject_name="man",
    ...     object_region=[40, 40, 90, 90], object_name="horse")
    >>> inputs["prompt"]
    'What is the relationship between " <extra_id_199> <extra_id_199> <extra_id_599> <extra_id_599> man " and " <extra_id_499> <extra_id_499> <extra_id_999> <extra_id_999> horse " ?'
    >>> task.decode("riding", meta=meta)["triplet"]
    ('man', 'riding', 'horse')
    """

    name = "relationship_detection"
    required = ("image", "subject_region", "object_region")
    optional = ("subject_name", "object_name")
    targets = ("relation",)
    prompt_template = 'What is the relationship between " {} " and " {} " ?'
    answer_key = "relation"

    def _side(self, inputs, meta, which):
        text = self.region_text(inputs[f"{which}_region"], meta["image_size"])
        name = inputs.get(f"{which}_name")
        if name is not None:
            name = check_text(name, f"{which}_name")
            text = f"{text} {name}"
        meta[f"{which}_name"] = name
        return text

    def _prompt_args(self, inputs, meta):
        return (self._side(inputs, meta, "subject"), self._side(inputs, meta, "object"))

    def _targets(self, targets, inputs, meta):
        return {"target_text": check_text(targets["relation"], "relation")}

    def _decode(self, raw, result, meta):
        super()._decode(raw, result, meta)
        result["triplet"] = (
            meta.get("subject_name"),
            result["relation"],
            meta.get("object_name"),
        )
