"""The `Task` base class.

A Unified-IO task has no head: it is a prompt on the way in and a parser on
the way out. A `Task` turns user inputs into what the preprocessor /
`UnifiedIO.generate()` take (a prompt string, an optional image, an optional
region to mask), turns a labelled example into a training example (prompt +
target text and/or target image), and turns the generated text ids and
image back into a structured prediction in the input image's pixel frame.

Tasks are plain Python and NumPy; nothing here runs a model.

Data flow:
```
inputs, meta = task.encode_inputs(image=..., region=...)   # -> generate()
result = task.decode(text_ids, image, meta)                 # <- generate()
example = task.encode_example({...inputs, ...targets})      # -> preprocessor
```

The registry is in `registry.py`, the input checks in `checks.py`, the
output readers in `outputs.py`, and the `TextTask` / `BoxTask` bases in
`text_task.py` / `box_task.py`; their names can still be imported from
here.
"""

import re

import numpy as np

from keras_uio.host_arrays import to_numpy
from keras_uio.tasks.checks import check_box
from keras_uio.tasks.checks import check_box_in_image
from keras_uio.tasks.checks import check_image
from keras_uio.tasks.checks import check_image_options
from keras_uio.tasks.checks import check_options
from keras_uio.tasks.outputs import check_output_image
from keras_uio.tasks.outputs import text_to_parse_ids
from keras_uio.token_text import as_str
from keras_uio.vocab import Vocabulary

INTERPOLATIONS = ("nearest", "bilinear")


class Task:
    """Base class of the Unified-IO tasks.

    Subclasses set the class attributes and override `_prompt_args`
    (inputs -> the values of the prompt template), `_targets` (example ->
    target text / target image) and `_decode` (parsed output -> result).

    Class attributes:
        name: registry name.
        output_mode: `"text"`, `"image"` (the text part is just EOS) or
            `"text_and_image"`.
        required: input names `encode_inputs` needs.
        optional: input names it also accepts.
        targets: example keys `encode_example` needs on top of the inputs.
        optional_targets: example keys it also accepts.
        prompt_template: the prompt, `{}` or `{name}` placeholders.
        max_text_length: decoding length hint for `generate()` (the
            original: 32 for short text, 128 for lists, 1 for image tasks).
        uses_image: whether the task has an input image.

    Args:
        vocab: a `Vocabulary` (default: the tokenizer's, or the released
            33152/16384 layout).
        tokenizer: optional `UnifiedIOTokenizer`; used to turn generated ids
            into text (`detokenize`).
        detokenize: optional function `list of ids -> str`; overrides the
            tokenizer's.
        prompt_template: optional replacement for `prompt_template` (same
            placeholders).
        interpolation: `"nearest"` (the original) or `"bilinear"`: how a
            generated image is resized back to the input size.
        clip_regions: cut input regions that reach outside the image to it
            (by default they raise; a region with no area always raises).
    """

    name = None
    output_mode = "text"
    required = ()
    optional = ()
    targets = ()
    optional_targets = ()
    prompt_template = None
    max_text_length = 32
    uses_image = True

    def __init__(
        self,
        vocab=None,
        tokenizer=None,
        detokenize=None,
        prompt_template=None,
        interpolation="nearest",
        clip_regions=False,
    ):
        if vocab is None:
            vocab = getattr(tokenizer, "vocab", None) or Vocabulary()
        if not isinstance(vocab, Vocabulary):
            raise ValueError(
                "`vocab` must be a `keras_uio.Vocabulary`. Received: "
                f"{type(vocab).__name__}"
            )
        self.vocab = vocab
        self.tokenizer = tokenizer
        if detokenize is None and tokenizer is not None:
            detokenize = tokenizer.detokenize
        if detokenize is not None and not callable(detokenize):
            raise ValueError(f"`detokenize` must be callable. Received: {detokenize!r}")
        self._detokenize = detokenize
        if prompt_template is not None:
            if not isinstance(prompt_template, str):
                raise ValueError(
                    f"`prompt_template` must be a string. Received: {prompt_template!r}"
                )
            self.prompt_template = prompt_template
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {INTERPOLATIONS}. "
                f"Received: {interpolation!r}"
            )
        self.interpolation = interpolation
        self.clip_regions = bool(clip_regions)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"

    # ---------------------------------------------------------- inputs
    def _check_keys(self, given, allowed, required, what):
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise ValueError(
                f"Task {self.name!r} received unknown {what} {unknown}. "
                f"Accepted: {list(allowed)}"
            )
        missing = [k for k in required if given.get(k) is None]
        if missing:
            raise ValueError(
                f"Task {self.name!r} is missing required {what} {missing}. "
                f"Required: {list(required)}; optional: "
                f"{[k for k in allowed if k not in required]}"
            )

    def check_inputs(self, inputs):
        """Validate inputs; returns `(clean inputs, meta)`."""
        self._check_keys(inputs, self.required + self.optional, self.required, "inputs")
        inputs = {k: v for k, v in inputs.items() if v is not None}
        meta = {"task": self.name, "image_size": None}
        if "image" in inputs:
            meta["image_size"] = check_image(inputs["image"])
        for key in ("region", "subject_region", "object_region"):
            if key in inputs:
                box = check_box(inputs[key], name=key)
                if meta["image_size"] is not None:
                    box = check_box_in_image(
                        box, meta["image_size"], key, self.clip_regions
                    )
                inputs[key] = meta[key] = box
        if "answer_options" in inputs:
            check = (
                check_image_options if self.output_mode == "image" else check_options
            )
            inputs["answer_options"] = check(inputs["answer_options"])
            meta["answer_options"] = inputs["answer_options"]
        self._check_inputs(inputs, meta)
        return inputs, meta

    def _check_inputs(self, inputs, meta):
        """Hook: task-specific validation, may add to `meta`."""

    def _prompt_args(self, inputs, meta):
        """Hook: the positional values of `prompt_template`."""
        return ()

    def region_text(self, box, image_size):
        """A box as the location-token text used in prompts."""
        return self.vocab.box_to_text(box, image_size)

    def build_prompt(self, **inputs):
        """The prompt text for these inputs (see `required`, `optional`)."""
        inputs, meta = self.check_inputs(inputs)
        return self._build_prompt(inputs, meta)

    def _build_prompt(self, inputs, meta):
        args = self._prompt_args(inputs, meta)
        if isinstance(args, dict):
            return self.prompt_template.format(**args)
        return self.prompt_template.format(*args)

    def encode_inputs(self, **inputs):
        """Inputs for `generate()` and the metadata `decode` needs.

        Returns:
            `(model_inputs, meta)`: `model_inputs` has `"prompt"` and, where
            the task has them, `"image"` (passed through unchanged) and
            `"mask_region"`; `meta` holds the input image size, regions and
            answer options.
        """
        inputs, meta = self.check_inputs(inputs)
        out = {"prompt": self._build_prompt(inputs, meta)}
        if self.uses_image and "image" in inputs:
            out["image"] = inputs["image"]
        out.update(self._extra_model_inputs(inputs, meta))
        return out, meta

    def _extra_model_inputs(self, inputs, meta):
        return {}

    def encode_example(self, example):
        """A training example for `UnifiedIOPreprocessor`.

        Args:
            example: dict with the task's inputs (`required`, `optional`)
                and targets (`targets`, `optional_targets`).

        Returns:
            dict with `"prompt"`, and where they apply `"image"`,
            `"mask_region"`, `"target_text"`, `"target_image"` (float32
            `[H, W, 3]` in [0, 1], input size).
        """
        if not isinstance(example, dict):
            raise ValueError(
                f"`example` must be a dict. Received: {type(example).__name__}"
            )
        allowed = self.required + self.optional + self.targets + self.optional_targets
        self._check_keys(example, allowed, self.required + self.targets, "example keys")
        inputs = {k: example[k] for k in self.required + self.optional if k in example}
        model_inputs, meta = self.encode_inputs(**inputs)
        targets = {
            k: example[k]
            for k in self.targets + self.optional_targets
            if example.get(k) is not None
        }
        out = dict(model_inputs)
        out.update(self._targets(targets, inputs, meta))
        return out

    def _targets(self, targets, inputs, meta):
        """Hook: `{"target_text": ..., "target_image": ...}`."""
        return {}

    # ---------------------------------------------------------- outputs
    @property
    def can_detokenize(self):
        return self._detokenize is not None

    def detokenize(self, ids):
        """Generated ids -> text (needs a tokenizer or `detokenize`)."""
        if self._detokenize is None:
            raise ValueError(
                f"Task {self.name!r} received token ids but has no tokenizer "
                "to read their text. Pass `tokenizer=` (or `detokenize=`) "
                "to the task, or pass the generated text instead of ids."
            )
        return as_str(self._detokenize([int(i) for i in ids])).strip()

    def read_output(self, text):
        """Normalise generated text: ids (1-D ints) or a string.

        Returns a dict with `"token_ids"` (list, cut at the first EOS, the
        decoder's leading start/pad ids dropped; `None` for a string),
        `"text"` (string, or `None` for ids without a tokenizer) and the
        ids/detokenize pair to parse locations with.
        """
        if text is None:
            text = ""
        if hasattr(text, "numpy") or hasattr(text, "__array__"):
            text = to_numpy(text)  # a tensor of any backend and device
        if (
            isinstance(text, np.ndarray)
            and text.dtype.kind in "SUO"
            and (text.ndim == 0 or text.size == 1)
        ):
            text = text.reshape(-1)[0]
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        errors = []
        if isinstance(text, str):
            ended = "</s>" in text
            text = re.split(r"</s>|<pad>", text)[0]  # stop at EOS / pad
            ids, detok, errors = text_to_parse_ids(text, self.vocab)
            region_ids = np.append(ids, self.vocab.eos_id) if ended else ids
            return {
                "token_ids": None,
                "text": text.strip(),
                "region_ids": region_ids,
                "parse_ids": ids,
                "parse_detokenize": detok,
                "errors": errors,
            }
        ids = np.asarray(text)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(
                f"Task {self.name!r}: generated text must be a string or a "
                "1-D sequence of integer ids (one example; use "
                f"`decode_batch` for a batch). Received: shape {ids.shape}, "
                f"dtype {ids.dtype}"
            )
        ids = ids.astype(np.int64)
        start = 0
        while start < len(ids) and ids[start] == self.vocab.pad_id:
            start += 1
        ids = ids[start:]
        eos = np.flatnonzero(ids == self.vocab.eos_id)
        region_ids = ids[: eos[0] + 1] if eos.size else ids
        stop = np.flatnonzero((ids == self.vocab.eos_id) | (ids == self.vocab.pad_id))
        ids = ids[: stop[0]] if stop.size else ids
        out_text = self.detokenize(ids) if self.can_detokenize else None
        return {
            "token_ids": ids.tolist(),
            "text": out_text,
            "region_ids": region_ids,
            "parse_ids": ids,
            "parse_detokenize": (self.detokenize if self.can_detokenize else None),
            "errors": errors,
        }

    def decode(self, text=None, image=None, meta=None, image_codes=None):
        """Generated output -> structured prediction.

        Args:
            text: the generated text: 1-D token ids (from `generate()`;
                reading stops at EOS) or the decoded string. `None` means
                empty output.
            image: the generated image (float `[S, S, 3]` in [0, 1], or
                uint8) for image tasks, else `None`.
            meta: the `meta` from `encode_inputs` (input image size,
                regions, options).
            image_codes: optional VQ-GAN codes, kept in the result.

        Returns:
            dict with `"task"`, `"text"`, `"token_ids"`, `"errors"` (what did
            not parse; never raised) and the task's fields. Image tasks add
            `"raw_image"` (the generated image) and `"image_codes"`.
        """
        meta = dict(meta or {})
        raw = self.read_output(text)
        result = {
            "task": self.name,
            "text": raw["text"],
            "token_ids": raw["token_ids"],
            "errors": list(raw["errors"]),
        }
        if self.output_mode != "text":
            if image is None:
                raise ValueError(
                    f"Task {self.name!r} generates an image; `decode` needs "
                    "the generated `image` (float [S, S, 3] in [0, 1])."
                )
            result["raw_image"] = check_output_image(image)
            if image_codes is not None:
                result["image_codes"] = np.asarray(image_codes)
        elif image is not None:
            raise ValueError(
                f"Task {self.name!r} outputs text only; received an `image`."
            )
        self._decode(raw, result, meta)
        return result

    def _decode(self, raw, result, meta):
        """Hook: fill task fields of `result` from `raw` / `meta`."""

    def decode_batch(self, texts, images=None, metas=None):
        """`decode` over a batch (lists or leading-axis arrays)."""
        n = len(texts)
        images = [None] * n if images is None else images
        metas = [None] * n if metas is None else metas
        if isinstance(metas, dict):
            metas = [metas] * n
        if len(images) != n or len(metas) != n:
            raise ValueError(
                f"`decode_batch` needs one image and meta per text. Received "
                f"{n} texts, {len(images)} images, {len(metas)} metas"
            )
        return [self.decode(t, i, m) for t, i, m in zip(texts, images, metas)]

    # ----------------------------------------------------------- helpers
    def _need_image_size(self, meta):
        size = meta.get("image_size")
        if size is None:
            raise ValueError(
                f"Task {self.name!r}: `meta['image_size']` (height, width of "
                "the input image) is needed to decode locations; pass the "
                "`meta` returned by `encode_inputs`."
            )
        return size

    def _parse_regions(self, raw, image_size, per_region=4):
        """Boxes (or points) from the output; errors go to `parsed.errors`."""
        ids = raw["parse_ids"]
        if per_region == 4:
            return self.vocab.ids_to_boxes(
                ids, image_size, detokenize=raw["parse_detokenize"]
            )
        return self.vocab.ids_to_points(
            ids, image_size, detokenize=raw["parse_detokenize"]
        )

    def _need_text(self, raw, result):
        if result["text"] is None:
            self.detokenize([])  # raises the "needs a tokenizer" error
        return result["text"]
