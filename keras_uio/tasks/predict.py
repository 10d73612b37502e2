"""`predict_tasks`: structured answers for a mixed batch of task examples.

This is the library's counterpart of the original runner (`uio/runner.py`):
each example becomes a prompt (its task's), the model generates or scores,
and the task's decoder turns the tokens into boxes, keypoints, masks, maps,
images or text. Decoding follows the runner's defaults:

- text tasks: beam search of width `num_decodes` (1 is greedy), at most the
  task's `max_text_length` tokens (32 for captions, VQA, referring
  expressions, localization; 128 for keypoints and detection);
- image tasks (and text-and-image ones): top-p sampling with p = 0.9 and
  a seed, one text token for pure image tasks; `greedy=True` makes every
  task greedy (deterministic);
- examples with `answer_options` are scored, not generated: each option's
  loss is the summed negative log-likelihood of its tokens and of EOS (the
  original's `predict_with_answer_options`), the lowest wins.

Keypoint examples without a `region` run in two stages: find the people
(localization of "person"), then 17 joints per person box.
"""

import numpy as np

from keras_uio.preprocessing.images import preprocess_target_image
from keras_uio.tasks.registry import get_task
from keras_uio.tasks.task import Task

_INPUT_NAMES = ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")


def predict_tasks(
    model,
    examples,
    num_decodes=1,
    greedy=False,
    seed=0,
    max_text_length=None,
    truncate=False,
    average_loss=False,
):
    """Runs a mixed batch of tasks with `model` (a `keras_uio.UnifiedIO`).

    Args:
        model: a `UnifiedIO` with a preprocessor (tokenizer).
        examples: list of dicts, each with `"task"` (a name from
            `keras_uio.tasks.TASKS`, or a `Task` instance for non-default
            task options) and that task's inputs, e.g. `{"task": "vqa",
            "image": img, "question": "What color?"}`. `"answer_options"`
            makes a task choose among them by their losses: strings for
            text tasks (classification, VQA, captions, text QA, ...),
            images for image tasks (text-to-image, inpainting,
            segmentation-to-image).
        num_decodes: beam width for text tasks (1 = greedy).
        greedy: decode image tasks greedily too (the runner samples them).
        seed: seed of the image sampler.
        max_text_length: override every text task's length (tokens).
        truncate: cut prompts longer than the encoder's text length
            instead of raising.
        average_loss: rank answer options by their mean token loss instead
            of the summed loss (the original's option of the same name).

    Returns:
        list of result dicts in the input order (see each task's `decode`):
        boxes `[x1, y1, x2, y2]`, keypoints, depth maps, unit normals,
        binary masks, images, strings, with the raw tokens and an `errors`
        list. With answer options: `"text"` (and the task's answer field)
        or `"image"` (the candidate as given) is the chosen option,
        `"option_index"` and `"option_losses"` (one per option, lower is
        better).

    Example:
    >>> import numpy as np, keras_uio
    >>> model = keras_uio.UnifiedIO.from_preset("uio_tiny_easyvqa")
    >>> image = np.zeros((64, 64, 3), "uint8"); image[16:48, 16:48] = (255, 0, 0)
    >>> result = model.predict_tasks([{
    ...     "task": "image_classification", "image": image,
    ...     "answer_options": ["circle", "rectangle", "triangle"]}])[0]
    >>> result["text"] in ("circle", "rectangle", "triangle")
    True
    >>> len(result["option_losses"])
    3
    """
    if model.preprocessor is None:
        raise ValueError(
            "`predict_tasks` needs a preprocessor (tokenizer): load a preset "
            "converted with `--vocabulary spiece.model`, or pass "
            "`UnifiedIO(backbone, vqgan, preprocessor=...)`."
        )
    if not isinstance(num_decodes, int) or num_decodes < 1:
        raise ValueError(
            f"`num_decodes` must be an int >= 1. Received: {num_decodes!r}"
        )
    runner = _Runner(
        model, num_decodes, greedy, seed, max_text_length, truncate, average_loss
    )
    prepared = [runner.prepare(example, i) for i, example in enumerate(examples)]
    results = [None] * len(prepared)
    scored = [i for i, item in enumerate(prepared) if item.options is not None]
    for i in scored:
        results[i] = runner.choose_option(prepared[i])
    groups = {}
    for i, item in enumerate(prepared):
        if item.options is None:
            groups.setdefault(runner.group_key(item), []).append(i)
    for key, index in groups.items():
        out = runner.generate([prepared[i] for i in index], *key)
        for row, i in enumerate(index):
            results[i] = runner.decode(prepared[i], out, row)
    return results


def _usable_person_boxes(people, image_size):
    """Stage-one boxes clipped to the image (the model can point into the
    padding); boxes with no area inside it are dropped and reported in
    `people["errors"]`."""
    height, width = image_size
    boxes = np.asarray(people["boxes"], np.float64).reshape(-1, 4)
    clipped = np.clip(boxes, 0, [width, height, width, height])
    usable = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    for k in np.flatnonzero(~usable):
        people["errors"].append(
            f"person box {k} {boxes[k].round(2).tolist()} has no area inside "
            "the image; no keypoints asked for it"
        )
    people["boxes"] = clipped[usable]
    return clipped[usable]


class _Item:
    """One prepared example: its task, decode metadata and encoder inputs."""

    def __init__(self, index, example, task, meta, inputs, options):
        self.index, self.example, self.task = index, example, task
        self.meta, self.inputs, self.options = meta, inputs, options

    @property
    def makes_image(self):
        return self.task.output_mode != "text"

    @property
    def two_stage_keypoints(self):
        return self.task.name == "keypoints" and "region" not in self.example


class _Runner:
    def __init__(
        self, model, num_decodes, greedy, seed, max_text_length, truncate, average_loss
    ):
        self.model = model
        self.tokenizer = model.preprocessor.tokenizer
        self.num_decodes, self.greedy, self.seed = num_decodes, greedy, seed
        self.max_text_length = max_text_length
        self.truncate, self.average_loss = truncate, average_loss

    # ------------------------------------------------------------ inputs
    def task_for(self, name, index):
        if isinstance(name, Task):
            return name
        try:
            return get_task(name, tokenizer=self.tokenizer, vocab=self.tokenizer.vocab)
        except ValueError as e:
            raise ValueError(f"examples[{index}]: {e}") from None

    def prepare(self, example, index, stage_two_region=None):
        if not isinstance(example, dict) or "task" not in example:
            raise ValueError(
                f"examples[{index}] must be a dict with a 'task' key (see "
                "`keras_uio.tasks.TASKS`); received "
                f"{example if not isinstance(example, dict) else sorted(example)}."
            )
        task = self.task_for(example["task"], index)
        fields = {k: v for k, v in example.items() if k != "task"}
        if stage_two_region is not None:
            fields["region"] = stage_two_region
        try:
            if task.name == "keypoints" and "region" not in fields:
                model_inputs, meta = task.encode_person_inputs(fields.get("image"))
            else:
                model_inputs, meta = task.encode_inputs(**fields)
            encoded = self.model.preprocessor.generate_preprocess(
                model_inputs, truncate=self.truncate
            )
        except ValueError as e:
            hint = (
                " (on the command line: `--truncate`)"
                if "sequence length" in str(e)
                else ""
            )
            raise ValueError(
                f"examples[{index}] (task {task.name!r}): {e}{hint}"
            ) from None
        options = meta.get("answer_options")
        if options is not None and task.output_mode == "text_and_image":
            raise ValueError(
                f"examples[{index}]: task {task.name!r} writes text and an "
                "image together; it cannot score `answer_options`."
            )
        inputs = {k: np.asarray(encoded[k]) for k in _INPUT_NAMES}
        return _Item(index, example, task, meta, inputs, options)

    # -------------------------------------------------------- generation
    def group_key(self, item):
        """`(image, text length)`: one `generate` call per key."""
        if item.task.output_mode == "image":
            length = 1
        else:
            length = self.max_text_length or item.task.max_text_length
        limit = self.model.backbone.max_decoder_text_length
        return item.makes_image, min(length, limit)

    def sampler_kwargs(self, image):
        if image:
            if self.greedy:
                return {"sampler": "greedy"}
            return {"sampler": "top_p", "p": 0.9, "seed": self.seed}
        if self.num_decodes > 1:
            return {"sampler": "beam", "num_beams": self.num_decodes}
        return {"sampler": "greedy"}

    def generate(self, items, image, length):
        batch = {k: np.stack([it.inputs[k] for it in items]) for k in _INPUT_NAMES}
        return self.model.generate(
            batch,
            max_text_length=length,
            image=image,
            **self.sampler_kwargs(image),
        )

    def decode(self, item, out, row):
        if item.two_stage_keypoints:
            return self.keypoints_stage_two(item, out["text_tokens"][row])
        image = item.makes_image
        return item.task.decode(
            out["text_tokens"][row],
            out["image"][row] if image else None,
            item.meta,
            image_codes=out["image_tokens"][row] if image else None,
        )

    def keypoints_stage_two(self, item, person_tokens):
        task = item.task
        people = task.decode_people(person_tokens, item.meta)
        boxes = _usable_person_boxes(people, item.meta["image_size"])
        persons = []
        if len(boxes):
            items = [self.prepare(item.example, item.index, box) for box in boxes]
            out = self.generate(items, *self.group_key(items[0]))
            persons = [self.decode(it, out, row) for row, it in enumerate(items)]
        return {
            **people,
            "task": "keypoints",
            "people": persons,
            "keypoints": task.stack_people(persons),
        }

    # ----------------------------------------------------------- options
    def choose_option(self, item):
        if item.makes_image:
            return self.choose_image_option(item)
        options = item.options
        ids = [self.tokenizer(o) for o in options]  # with EOS, as the original
        width = max(len(i) for i in ids)
        padded = np.zeros((1, len(ids), width), "int32")
        for n, row in enumerate(ids):
            padded[0, n, : len(row)] = row
        losses = self.option_losses(item, padded)
        best = int(np.argmin(losses))
        result = item.task.decode(np.asarray(ids[best]), None, item.meta)
        result["option_index"] = best
        result["option_losses"] = [float(v) for v in losses]
        return result

    def choose_image_option(self, item):
        """Candidate images as the original scores them: each resized and
        padded to the VQ-GAN's size (`preprocess_target_image`), its codes
        scored where the image is (the padding's patches are masked)."""
        if self.model.vqgan is None:
            raise ValueError(
                f"examples[{item.index}]: image `answer_options` need the "
                "model's VQ-GAN; build `UnifiedIO(backbone, vqgan)`."
            )
        size = self.model.vqgan.image_size
        patch = size // self.model.vqgan.grid_size
        targets = [preprocess_target_image(o, size, patch) for o in item.options]
        images = np.stack([image for image, _ in targets])[None]
        masks = np.stack([mask for _, mask in targets])[None]
        losses = self.option_losses(item, images, masks)
        best = int(np.argmin(losses))
        return {
            "task": item.task.name,
            "image": item.options[best],
            "option_index": best,
            "option_losses": [float(v) for v in losses],
            "errors": [],
        }

    def option_losses(self, item, options, masks=None):
        scores = self.model.score(
            {k: v[None] for k, v in item.inputs.items()},
            options,
            option_masks=masks,
            average_loss=self.average_loss,
        )
        return scores["loss"][0]
