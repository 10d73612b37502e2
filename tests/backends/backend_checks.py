"""Runs the cross-backend checks on the backend in KERAS_BACKEND.

Used by `test_backends.py`, one subprocess per backend (a backend is fixed
per process). Usage:

    KERAS_BACKEND=torch python backend_checks.py REFERENCE_DIR OUT_DIR [CHECK ...]

`REFERENCE_DIR` is `tests/data/reference/uio_tiny`; the checks (all by
default) are the names of `CHECKS`. Writes `OUT_DIR/report.json` (numbers,
token ids, answers, and an error message per check that failed) and
`OUT_DIR/arrays.npz` (what the test compares with JAX's: option losses and
gradients). The comparisons across backends are the test's; what needs only
this process and the reference (greedy tokens up to proven float32 ties,
sampler invariants) is decided here and reported.
"""

import json
import os
import pathlib
import resource
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_uio  # noqa: E402
from keras_uio.testing import assert_greedy_tokens_match  # noqa: E402
from keras_uio.testing import assert_vqgan_codes_match  # noqa: E402

ENCODER_INPUTS = ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")
TEXT_OPTIONS = np.array([[[5, 9, 0], [300, 0, 0]], [[17, 4, 8], [2, 2, 0]]])
EASY_VQA_IMAGES = 3


def numpy(x, dtype=None):
    """A backend tensor (or array) as a NumPy array."""
    x = np.asarray(keras.ops.convert_to_numpy(x))
    return x if dtype is None else x.astype(dtype)


def refuse_implicit_numpy_in_keras_uio():
    """On PyTorch, make keras_uio's own `np.asarray(tensor)` and
    `tensor.numpy()` calls fail.

    A CUDA tensor refuses both; a CPU one allows them, so on this GPU-less
    machine such a call would pass here and break on a GPU (it did: image
    option scoring). Keras' own conversions are left alone.
    """
    import torch

    package = os.path.dirname(keras_uio.__file__) + os.sep

    def refuse(method):
        def guarded(tensor, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(package):
                raise TypeError(
                    f"{caller}:{sys._getframe(1).f_lineno} converts a tensor "
                    "with NumPy, which fails for CUDA tensors; use "
                    "keras.ops.convert_to_numpy."
                )
            return method(tensor, *args, **kwargs)

        return guarded

    torch.Tensor.__array__ = refuse(torch.Tensor.__array__)
    torch.Tensor.numpy = refuse(torch.Tensor.numpy)


def encoder_inputs(io):
    return {k: io["in/" + k] for k in ENCODER_INPUTS}


def backbone_inputs(io):
    """The reference's teacher-forced backbone inputs (explicit image ids)."""
    targets = io["in/text_decoder_targets"]
    return {
        **encoder_inputs(io),
        "text_decoder_inputs": io["in/text_decoder_inputs"],
        "text_decoder_masks": (targets > 0).astype("int32"),
        "image_decoder_inputs": io["in/image_decoder_inputs"],
    }


def blank_inputs(backbone, batch=1):
    """Encoder inputs of a short prompt and a blank, fully visible image."""
    size, patches = (
        backbone.image_size,
        (backbone.image_size // backbone.patch_size) ** 2,
    )
    return {
        "text_encoder_inputs": np.tile([[5, 6, 1]], (batch, 1)),
        "image_encoder_inputs": np.zeros((batch, size, size, 3), "float32"),
        "image_input_masks": np.ones((batch, patches), "int32"),
    }


# --- presets -----------------------------------------------------------------
def check_presets(state):
    """Loads a converted preset, the bundled one and random `uio_tiny`."""
    from keras_uio.convert.convert_checkpoint import convert_checkpoint

    folder = os.path.join(state["tmp"], "converted")
    convert_checkpoint(
        str(state["reference"] / "checkpoint.bin"), folder, progress=False
    )
    state["model"] = keras_uio.UnifiedIO.from_preset(folder)
    state["bundled"] = keras_uio.UnifiedIO.from_preset("uio_tiny_easyvqa")
    random = keras_uio.UnifiedIO.from_preset("uio_tiny", load_weights=False)
    return {
        name: int(model.count_params())
        for name, model in (
            ("converted", state["model"]),
            ("bundled", state["bundled"]),
            ("random", random),
        )
    }


# --- the original's numbers --------------------------------------------------
def check_parity(state):
    """Encoder, logits and VQ-GAN against the original's outputs."""
    io, model = state["io"], state["model"]
    backbone, vqgan = model.backbone, model.vqgan
    encoded, _ = backbone.encode(*(io["in/" + k] for k in ENCODER_INPUTS))
    outputs = backbone(backbone_inputs(io))
    valid = io["out/enc_mask"].astype(bool)
    targets = io["in/text_decoder_targets"]
    images = io["in/image_decoder_targets"]
    codes = numpy(vqgan.encode(images)).astype(int)
    try:
        ties = assert_vqgan_codes_match(vqgan, images, codes, io["out/vae_codes"])
        codes_error = None
    except AssertionError as error:
        ties, codes_error = [], str(error)
    decoded = numpy(vqgan.decode(io["out/vae_codes"]), "float64")

    def error(ours, key, where=Ellipsis):
        return float(np.abs(numpy(ours, "float64") - io[key])[where].max())

    return {
        "encoder": error(encoded, "out/enc_encoded", valid),
        "text_logits": error(
            outputs["text_logits"], "out/dec_text_logits", targets > 0
        ),
        "image_logits": error(outputs["image_logits"], "out/dec_image_logits"),
        "codes_error": codes_error,
        "codes_tied": len(ties),
        "vqgan_decoded": float(
            np.abs(decoded - io["out/vae_decoded_from_codes"]).max()
        ),
    }


# --- generation --------------------------------------------------------------
def teacher_forced_logits(model, inputs, text, codes):
    """Text logits and image-code logits along given token sequences."""
    b = model.backbone
    start = np.full((len(text), 1), b.image_start_id)
    forced = b(
        {
            **inputs,
            "text_decoder_inputs": np.pad(text[:, :-1], [(0, 0), (1, 0)]),
            "text_decoder_masks": np.ones_like(text),
            "image_decoder_inputs": np.concatenate(
                [start, codes[:, :-1] + b.vocabulary_size], 1
            ),
        }
    )
    image = numpy(forced["image_logits"])[..., b.vocabulary_size :]
    return numpy(forced["text_logits"]), image


def check_greedy(state):
    """Greedy text then image equals the original's, up to proven ties."""
    io, model = state["io"], state["model"]
    inputs = encoder_inputs(io)
    start = time.time()
    out = model.generate(inputs, max_text_length=8, image=True, stop_at_eos=False)
    seconds = time.time() - start
    cache = []

    def logits(index):
        if not cache:
            cache.extend(
                teacher_forced_logits(
                    model, inputs, io["out/gen_text_tokens"], io["out/gen_image_tokens"]
                )
            )
        return cache[index]

    text_diverged = assert_greedy_tokens_match(
        out["text_tokens"],
        io["out/gen_text_tokens"],
        lambda: logits(0),
        name="text tokens",
    )
    image_diverged = assert_greedy_tokens_match(
        out["image_tokens"],
        io["out/gen_image_tokens"],
        lambda: logits(1),
        name="image tokens",
    )
    same = ~np.isin(np.arange(2), list(text_diverged) + list(image_diverged))
    return {
        "seconds": seconds,
        "tied_rows": sorted(set(text_diverged) | set(image_diverged)),
        "score_error": float(
            np.abs(out["scores"] - io["out/gen_scores"])[same].max(initial=0)
        ),
        "image_error": float(
            np.abs(out["image"] - io["out/gen_image"])[same].max(initial=0)
        ),
    }


def check_samplers(state):
    """Beam, top-k, top-p, temperature and allowed ids keep their contracts;
    the sampled ids go to `arrays` (one seed draws the same on every
    backend)."""
    io, model = state["io"], state["model"]
    inputs = encoder_inputs(io)
    vocab = model.backbone.vocabulary_size
    greedy = model.generate(inputs, max_text_length=6)
    beams = model.generate(inputs, max_text_length=6, sampler="beam", num_beams=3)
    allowed = [5, 6, 7, 300, 301]
    sampled = {}
    for name, kwargs in (
        ("top_k", {"k": 3, "allowed_ids": allowed}),
        ("top_p", {"p": 0.8, "temperature": 0.7}),
    ):
        first = model.generate(
            inputs, max_text_length=6, sampler=name, seed=7, **kwargs
        )
        again = model.generate(
            inputs, max_text_length=6, sampler=name, seed=7, **kwargs
        )
        tokens = first["text_tokens"]
        state["arrays"][f"sampled/{name}"] = tokens
        sampled[name] = {
            "seeded": bool(np.array_equal(tokens, again["text_tokens"])),
            "in_range": bool(tokens.min() >= 0 and tokens.max() < vocab),
            "scores_negative": bool((first["scores"] < 0).all()),
            "allowed_only": bool(
                "allowed_ids" not in kwargs or np.isin(tokens, allowed + [0, 1]).all()
            ),
        }
    # Text then image, sampled, on the bundled model: 16 image codes
    # instead of the reference model's 256 keep this quick.
    bundled = state["bundled"]
    image = bundled.generate(
        blank_inputs(bundled.backbone, batch=2),
        max_text_length=4,
        image=True,
        sampler="top_p",
        p=0.9,
        seed=3,
    )
    codes = image["image_tokens"]
    state["arrays"]["sampled/image_codes"] = codes
    return {
        "beam_beats_greedy": bool((beams["scores"] >= greedy["scores"] - 1e-4).all()),
        "beams_sorted": bool((np.diff(beams["beam_scores"], axis=1) <= 1e-6).all()),
        "sampled": sampled,
        "image_codes_in_range": bool(
            codes.min() >= 0 and codes.max() < bundled.backbone.image_vocabulary_size
        ),
        "image_shape": list(image["image"].shape),
    }


# --- scoring -----------------------------------------------------------------
def check_score(state):
    """Option losses, text and image (compared with JAX's by the test)."""
    io, model = state["io"], state["model"]
    # Inputs and options as backend tensors, as a user of the backend may
    # pass them (CPU tensors here; the PyTorch run refuses NumPy reading
    # them implicitly, as CUDA tensors do).
    tensor = keras.ops.convert_to_tensor
    inputs = {k: tensor(v) for k, v in encoder_inputs(io).items()}
    codes = np.stack([io["out/vae_codes"], io["out/vae_codes"][::-1]], 1)
    text = model.score(inputs, tensor(TEXT_OPTIONS))
    image = model.score(inputs, codes, option_masks=np.ones(codes.shape))
    state["arrays"]["score/text"] = text["loss"]
    state["arrays"]["score/image"] = image["loss"]
    # Image options given as pixels are scored as this backend's own codes.
    images = io["in/image_decoder_targets"]
    own = numpy(model.vqgan.encode(images))
    own = np.stack([own, own[::-1]], 1)
    from_codes = model.score(inputs, own, option_masks=np.ones(own.shape))
    from_pixels = model.score(inputs, tensor(np.stack([images, images[::-1]], 1)))
    return {
        "text_best": text["best"].tolist(),
        "image_best": image["best"].tolist(),
        "pixel_options_error": float(
            np.abs(from_pixels["loss"] - from_codes["loss"]).max()
        ),
    }


# --- gradients ---------------------------------------------------------------
def gradients(loss_fn, variables):
    """Gradients of `loss_fn()` for `variables`, on the current backend."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        def stateless(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return loss_fn()

        grads = jax.jit(jax.grad(stateless))([v.value for v in variables])
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, [v.value for v in variables])
    elif backend == "torch":
        import torch

        values = [v.value for v in variables]
        grads = torch.autograd.grad(loss_fn(), values)
    else:
        raise ValueError(f"No gradient recipe for backend {backend!r}.")
    return [numpy(g, "float32") for g in grads]


def check_gradients(state):
    """Training-loss gradients of the transformer and of the VQ-GAN decoder.

    On JAX the chunked cross-entropy, the recomputed attention/MLP regions
    and the VQ-GAN's per-tap kernel gradient are custom gradients; other
    backends differentiate the plain formulas. The test compares both.
    """
    io, model = state["io"], state["model"]
    x = backbone_inputs(io)
    y = {
        "text_decoder_targets": io["in/text_decoder_targets"],
        "image_decoder_targets": io["in/image_tokens"],
    }

    def training_loss():
        return model.compute_loss(x, y, model(x, training=False), training=False)

    variables = model.backbone.trainable_variables
    for v, g in zip(variables, gradients(training_loss, variables)):
        state["arrays"]["grad/backbone/" + v.path] = g

    # The bundled model's VQ-GAN: the same layers as the reference's at a
    # sixteenth of the pixels, so its backward pass is quick.
    vqgan = state["bundled"].vqgan
    vqgan.trainable = True  # frozen inside UnifiedIO; here only differentiated
    try:
        codes = np.arange(vqgan.num_codes)[None] % vqgan.codebook_size
        variables = [v for v in vqgan.decoder.trainable_variables if "kernel" in v.path]
        decoded = gradients(
            lambda: keras.ops.mean(keras.ops.square(vqgan.decode(codes))), variables
        )
    finally:
        vqgan.trainable = False
    for v, g in zip(variables, decoded):
        state["arrays"]["grad/vqgan/" + v.path] = g
    return {"variables": len(model.backbone.trainable_variables) + len(variables)}


# --- training ----------------------------------------------------------------
def _word_tokenizer(sentences, image_codes):
    proto = keras_uio.train_sentencepiece(sentences * 20, 24, model_type="word")
    return keras_uio.UnifiedIOTokenizer(proto=proto, image_vocab_size=image_codes)


def _fit_data():
    """3 captioning and 3 depth examples on 32x32 images."""
    colors = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}

    def image(color, top):
        pixels = np.zeros((32, 32, 3), "uint8")
        pixels[top : top + 16, 8:24] = colors[color]
        return pixels

    captions = [{"image": image(c, 8), "caption": f"a {c} square"} for c in colors]
    yy, xx = np.mgrid[:32, :32]
    depth = [
        {
            "image": image(c, 4 * i),
            "depth": np.clip(1 + i + 0.1 * xx + 0 * yy, 0.5, 9.5),
        }
        for i, c in enumerate(colors)
    ]
    sentences = [
        "What does the image describe ?",
        "What is the depth map of the image ?",
    ] + [f"a {c} square" for c in colors]
    return sentences, captions, depth


def check_fit(state):
    """`fit` on a captioning + depth `Mixture` of a one-layer model lowers
    the loss (text targets and VQ-GAN-encoded image targets)."""
    from keras_uio.data import Mixture

    keras.utils.set_random_seed(0)
    sentences, captions, depth = _fit_data()
    codes = 16
    tokenizer = _word_tokenizer(sentences, codes)
    vqgan = keras_uio.VQGAN(
        image_size=32,
        channels=8,
        channel_multipliers=[1, 1, 1, 1],
        num_res_blocks=1,
        attention_resolutions=[],
        z_channels=4,
        codebook_size=codes,
        embed_dim=4,
        norm_groups=4,
    )
    backbone = keras_uio.UnifiedIOBackbone(
        vocabulary_size=tokenizer.vocab.text_vocab_size,
        image_vocabulary_size=codes,
        hidden_dim=32,
        num_heads=2,
        head_dim=16,
        num_encoder_layers=1,
        num_decoder_layers=1,
        intermediate_dim=64,
        image_size=32,
        patch_size=8,
        max_encoder_text_length=16,
        max_decoder_text_length=8,
        max_decoder_image_length=vqgan.num_codes,
    )
    converter = keras_uio.UnifiedIOImageConverter
    preprocessor = keras_uio.UnifiedIOPreprocessor(
        tokenizer,
        image_converter=converter(image_size=32, patch_size=8),
        target_image_converter=converter(image_size=32, patch_size=8, target=True),
        encoder_sequence_length=16,
        decoder_sequence_length=8,
    )
    model = keras_uio.UnifiedIO(backbone, vqgan, preprocessor=preprocessor)
    mixture = Mixture(
        [("captioning", captions), ("depth", depth)], seed=0, tokenizer=tokenizer
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(
        mixture.as_tf_dataset(preprocessor, batch_size=6),
        steps_per_epoch=5,
        epochs=4,
        verbose=0,
    ).history
    return {k: history[k] for k in ("loss", "text_loss", "image_loss")}


# --- the bundled model -------------------------------------------------------
def easy_vqa_examples(records):
    """VQA, captioning, classification and localization per record, and
    per record scored options: its colour among easy-vqa's, and its image
    among the records' images for its caption."""
    from keras_uio.data import easy_vqa

    examples = []
    images = [record["image"] for record in records]
    for record in records:
        image = record["image"]
        examples += [
            {
                "task": "vqa",
                "image": image,
                "question": "what color is the shape?",
                "answer_options": list(easy_vqa.COLORS),
            },
            {
                "task": "text_to_image",
                "description": record["caption"],
                "answer_options": images,
            },
        ]
        examples += [
            {"task": "vqa", "image": image, "question": q}
            for q, _ in record["questions"][:2]
        ]
        examples += [
            # An image given as a tensor of the backend.
            {"task": "captioning", "image": keras.ops.convert_to_tensor(image)},
            {
                "task": "image_classification",
                "image": image,
                "answer_options": list(easy_vqa.SHAPES),
            },
            {"task": "localization", "image": image, "object_name": record["shape"]},
        ]
    return examples


def check_bundled(state):
    """`predict_tasks(greedy=True)` of the bundled preset on easy-vqa images."""
    from keras_uio.data import easy_vqa

    try:
        records = easy_vqa.load_records("test", limit=EASY_VQA_IMAGES)
    except ImportError as error:
        return {"skipped": str(error)}
    results = state["bundled"].predict_tasks(easy_vqa_examples(records), greedy=True)
    return {
        "answers": [str(r.get("answer", r.get("text", ""))) for r in results],
        "token_ids": [np.asarray(r.get("token_ids", [])).tolist() for r in results],
        "option_index": [r.get("option_index") for r in results],
        # Image options are scored from the backend's own VQ-GAN codes,
        # which may differ from JAX's at proven ties: their choice is
        # compared, their losses are not.
        "option_losses": [
            r.get("option_losses") if r["task"] != "text_to_image" else None
            for r in results
        ],
        "boxes": [
            np.round(np.asarray(r["boxes"], float), 3).tolist()
            for r in results
            if "boxes" in r
        ],
    }


def check_fsq(state):
    """A VQ-GAN with finite scalar quantization: codes, lookup, round trip."""
    from keras_uio.models.vqgan.finite_scalar_quantizer import FiniteScalarQuantizer

    layer = FiniteScalarQuantizer((8, 5, 5, 5))
    z = np.random.default_rng(0).normal(scale=1.5, size=(64, 4)).astype("float32")
    codes, quantized = layer(z)
    keras.utils.set_random_seed(0)
    vqgan = keras_uio.VQGAN(
        image_size=16,
        channels=32,
        channel_multipliers=(1, 2),
        num_res_blocks=1,
        attention_resolutions=(),
        z_channels=16,
        fsq_levels=(8, 5, 5, 5),
        codebook_size=1000,
        embed_dim=4,
    )
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3))
    image_codes = numpy(vqgan.encode(images.astype("float32")))
    return {
        "inputs": z.tolist(),
        "codes": numpy(codes).tolist(),
        "lookup_error": float(
            np.abs(numpy(layer.lookup(codes)) - numpy(quantized)).max()
        ),
        "decoded_shape": list(numpy(vqgan.decode(image_codes)).shape),
        "image_codes_in_range": bool(
            image_codes.min() >= 0 and image_codes.max() < 1000
        ),
    }


CHECKS = {
    "presets": check_presets,
    "parity": check_parity,
    "greedy": check_greedy,
    "samplers": check_samplers,
    "score": check_score,
    "gradients": check_gradients,
    "fit": check_fit,
    "bundled": check_bundled,
    "fsq": check_fsq,
}


def cpu_seconds():
    """CPU time of this process so far (the machine may be shared)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(reference, out_dir, names):
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise SystemExit(f"Unknown checks {unknown}; choose from {list(CHECKS)}.")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"backend": keras.config.backend(), "seconds": {}, "cpu_seconds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        state = {
            "reference": pathlib.Path(reference),
            "io": dict(np.load(pathlib.Path(reference) / "io.npz")),
            "arrays": {},
            "tmp": tmp,
        }
        # Every other check uses the models that `presets` loads.
        for name in ["presets"] + [n for n in names if n != "presets"]:
            start, cpu = time.time(), cpu_seconds()
            try:
                report[name] = CHECKS[name](state)
            except Exception:
                report[name] = {"error": traceback.format_exc()[-4000:]}
                if name == "presets":
                    break
            report["seconds"][name] = round(time.time() - start, 1)
            report["cpu_seconds"][name] = round(cpu_seconds() - cpu, 1)
    np.savez(out_dir / "arrays.npz", **state["arrays"])
    (out_dir / "report.json").write_text(json.dumps(report))


if __name__ == "__main__":
    if keras.config.backend() == "torch":
        refuse_implicit_numpy_in_keras_uio()
    main(sys.argv[1], sys.argv[2], sys.argv[3:] or list(CHECKS))
