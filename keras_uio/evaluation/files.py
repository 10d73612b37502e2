"""File helpers the benchmark readers share.

JSON with errors that name the file and the field, image lookup in a
folder, the JSON Lines file that makes an evaluation resumable, and the
parts of prediction records and results files the benchmarks share.

Example:
>>> import tempfile, os
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "predictions.jsonl")
>>> append_jsonl(path, [{"id": "1", "answer": "red"}])
>>> read_jsonl(path)
{'1': {'id': '1', 'answer': 'red'}}
"""

import json
import os

from keras_uio.errors import UserInputError

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
)


def _check_path(path, what, is_kind, kind):
    """`path` as a string; raises unless it exists and `is_kind(path)`
    (`kind` names what it must be, for the message)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist.")
    if not is_kind(path):
        raise UserInputError(f"{what} {path!r} is not a {kind}.")
    return path


def check_file(path, what):
    """`path` as a string; raises unless it is an existing file."""
    return _check_path(path, what, os.path.isfile, "file")


def check_folder(path, what):
    """`path` as a string; raises unless it is an existing folder."""
    return _check_path(path, what, os.path.isdir, "folder")


def load_json(path, what, fields=(), example=None):
    """Reads a JSON object and checks that it has `fields`.

    Args:
        path: the file.
        what: how messages name it, e.g. `"COCO captions file"`.
        fields: top-level keys it must have.
        example: a short example of the expected layout, for messages.

    Raises:
        FileNotFoundError: no such file.
        UserInputError: not JSON, not an object, or a field is missing.
    """
    path = check_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserInputError(f"{what} {path!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise UserInputError(
            f"{what} {path!r} must hold a JSON object, not a {type(data).__name__}."
        )
    missing = [k for k in fields if k not in data]
    if missing:
        hint = f" Expected e.g. {example}" if example else ""
        plural = "s" if len(missing) > 1 else ""
        raise UserInputError(
            f"{what} {path!r} has no {' and '.join(map(repr, missing))} "
            f"field{plural}.{hint}"
        )
    return data


def field(entry, key, where):
    """`entry[key]`, or a `UserInputError` naming `where` (file and index)."""
    if not isinstance(entry, dict) or key not in entry:
        raise UserInputError(f"{where} has no {key!r} field: {entry!r:.200}")
    return entry[key]


def find_image(folder, names, what):
    """The first of `names` that is a file in `folder`.

    Raises:
        FileNotFoundError: none is; the message lists the names tried.
    """
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"{what}: none of {list(names)} is in the image folder {folder!r}."
    )


def list_images(folder):
    """Sorted image file names directly in `folder` (by extension)."""
    return sorted(
        name
        for name in os.listdir(folder)
        if name.lower().endswith(IMAGE_EXTENSIONS)
        and os.path.isfile(os.path.join(folder, name))
    )


def write_json(path, value):
    """Writes `value` as JSON (atomically: a temporary file, then rename)."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
    os.replace(temporary, path)


def write_fields(path, records, keys):
    """Writes `[{key: record[key] for key in keys}]` of `records` as JSON
    (a results file in a metric library's format)."""
    write_json(path, [{key: r[key] for key in keys} for r in records])


def result_text(result, key):
    """A result's `key` (e.g. `"answer"`), or else its `"text"`, or `""`."""
    return result.get(key, result.get("text", ""))


def prediction_record(example, result, /, **fields):
    """A line of `predictions.jsonl`: the example's `id`, then `fields`,
    then the result's `errors` (a list)."""
    return {"id": example["id"], **fields, "errors": list(result.get("errors") or [])}


def save_result(out_dir, folder, name, write, value):
    """Writes `value` with `write(path, value)` to `folder/name` under
    `out_dir` (the folder made when missing); returns `folder/name`."""
    os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
    write(os.path.join(out_dir, folder, name), value)
    return f"{folder}/{name}"


def read_jsonl(path):
    """`{id: record}` from a JSON Lines file (`{}` when there is none).

    A last line cut short (a run killed while writing) is dropped from the
    file, so that appending goes on from a clean line.

    Raises:
        UserInputError: a line other than the last is not a JSON object
            with an `"id"`.
    """
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with open(path, "r+b") as f:
            f.truncate(len(data))
    records = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or "id" not in record:
            raise UserInputError(
                f"Line {number} of {path!r} is not a prediction record "
                "(a JSON object with an 'id'); remove the file to start over."
            )
        records[str(record["id"])] = record
    return records


def append_jsonl(path, records):
    """Appends one JSON line per record and flushes it to disk."""
    with open(path, "a", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def pair_by_stem(images_dir, labels_dir, extensions, what):
    """`[(image file, label file)]`: each image in `images_dir` with the
    file of the same name stem and one of `extensions` in `labels_dir`.

    Raises:
        FileNotFoundError: an image has no label file (the message names
            the first few).
    """
    images_dir = check_folder(images_dir, "Image folder")
    labels_dir = check_folder(labels_dir, f"{what} folder")
    pairs, missing = [], []
    for name in list_images(images_dir):
        stem = os.path.splitext(name)[0]
        labels = [os.path.join(labels_dir, stem + ext) for ext in extensions]
        found = [p for p in labels if os.path.isfile(p)]
        if found:
            pairs.append((os.path.join(images_dir, name), found[0]))
        else:
            missing.append(name)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} images in {images_dir!r} have no {what} file "
            f"({' or '.join(extensions)} of the same name) in "
            f"{labels_dir!r}, e.g. {missing[:3]}."
        )
    if not pairs:
        raise UserInputError(f"Image folder {images_dir!r} has no images.")
    return pairs


def stem_examples(images_dir, labels_dir, extensions, what, key):
    """Examples of the `pair_by_stem` pairs: `id` (the image's name stem),
    `image`, `inputs` ({}) and `key` (the label file)."""
    return [
        {
            "id": os.path.splitext(os.path.basename(image))[0],
            "image": image,
            "inputs": {},
            key: label,
        }
        for image, label in pair_by_stem(images_dir, labels_dir, extensions, what)
    ]
