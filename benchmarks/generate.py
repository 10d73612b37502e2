"""Generation speed of a random `uio_small` on the JAX CPU backend.

Measures, float32, random weights (transformer + the full VQ-GAN):

1. Text: `UnifiedIO.generate` writing 32 text tokens greedily from a
   32-token prompt plus a 384x384 image (576 patches, mask all ones), for
   each `--batch-sizes`. `stop_at_eos=False`, so exactly 32 tokens are
   written per row (random weights may emit EOS early, which with the
   default `stop_at_eos=True` would end the loop sooner and flatter us).
   Reported: compile time (first call minus the steady state), steady state
   (median of `--repeats` calls), tokens/s (`batch * 32 / s`), ms per decode
   step estimated as `(total - encoder) / 32` with the encoder
   (`backbone.encode`, jitted alone) timed separately, and peak RSS.
2. Image, batch `--image-batch-sizes`: `max_text_length=1`, `image=True`
   (1 text step + 256 image steps + the VQ-GAN decode), and
   `model.vqgan.decode` alone (jitted with generate's XLA options, random
   codes; the encoders are jitted the same way). ms per image step =
   `(total - encoder - VQ-GAN decode) / 257` (every decoder step run).
3. keras_hub `T5Seq2SeqLM` (`preprocessor=None`, greedy sampler) with
   uio_small's transformer dimensions, 32 tokens from a 32-token text-only
   prompt, `stop_token_ids=None` (all positions written). Its per-step
   estimate is given two ways: `(total - encoder) / 32` (as for ours; it
   then includes keras_hub's 33-token decoder prefill that seeds the
   caches) and `(total - encoder - prefill) / 32`, the stricter one,
   used for the per-step target.
   For a like-for-like comparison our model is also timed on "text-only"
   input (image mask all zeros): `generate` then encodes the text alone
   (`backbone.encode_text`) and every decode step cross-attends over the
   32 text positions, as T5's does.
4. With `--vqgan-direct`: `model.vqgan.decode(codes)` and
   `model.vqgan.encode(images)` called directly, as a user would (batch 1,
   256x256; compiled on first call per shape), against the same calls'
   uncompiled path (`vqgan._decode` / `vqgan._encode`: the layers run op
   by op, as every direct call did before they were compiled).
5. Roofline lines (`benchmarks/roofline.py`): a memory-read probe (GB/s)
   and a 2048^2 float32 matmul probe (GFLOP/s), each the median of 5 runs
   before and 5 after the timed rounds; per row the bytes one decode step
   reads (decoder weights, the phase's output table, the cross- and
   self-attention caches; counted from the model's variables) over the
   step time, against the memory probe, and the encoder's and the
   VQ-GAN's analytic FLOPs over their times, against the matmul probe.
6. With `--original FILE`: the original implementation's figures
   (allenai/unified-io-inference, measured by
   `benchmarks/original_generate.py --json-out FILE` just before, on the
   same machine) next to ours, the ratios, and PASS/FAIL per target.
   Without it, ours alone: no ratio against figures from another run.

Every workload is first called once (compiling it; compile time = first
call - steady state), then all are timed round-robin
`--repeats` times, so that the load of a shared machine falls on all of
them alike. Peak RSS is the process's VmHWM, reset
(`/proc/self/clear_refs`) before each call, so each figure is the peak
during that workload's timed calls (the resident weights of both models
included), and separately during its first call (compile + run); the
largest of them is printed at the end (`ru_maxrss` follows the resets, so
it is not used). The encoder time of a batch size is measured once and
shared by the text, text-only and image rows (the encoder's work does not
depend on mask values). Timings on a shared machine are noisy: compare
ratios within one run.

Usage:
    KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 python benchmarks/generate.py
    ... --batch-sizes 1 --repeats 5 --skip-t5 --skip-image
    ... --batch-sizes 1 --image-batch-sizes 1 --skip-t5 --skip-text-only \
        --vqgan-direct
"""

import argparse
import functools
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

# Speed-ups over the original (same run) that the project aims for.
TEXT_SPEEDUP_TARGETS = {1: 3.0, 8: 4.0}  # tokens/s
IMAGE_SPEEDUP_TARGET = 2.5  # image b1, whole generate
VQGAN_SPEEDUP_TARGET = 2.0  # the VQ-GAN decode inside generate
TEXT_TOKENS = 32
PROMPT_LENGTH = 32


# --- measurement helpers -------------------------------------------------------
def reset_peak_rss():
    """Resets VmHWM (Linux >= 4.0); returns False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


_MAX_SEEN_MIB = [0.0]


def peak_rss_mib():
    """VmHWM since the last reset, or ru_maxrss where /proc is missing."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    value = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    _MAX_SEEN_MIB[0] = max(_MAX_SEEN_MIB[0], value)
    return value


def process_peak_rss_mib():
    """The largest peak seen by `peak_rss_mib` (ru_maxrss follows the
    VmHWM resets, so it is not the process-wide peak here)."""
    return max(_MAX_SEEN_MIB[0], peak_rss_mib())


class Case:
    """One timed workload: `fn()` must block until its result is ready."""

    def __init__(self, name, fn, check=None):
        self.name, self.fn, self.check = name, fn, check
        self.first = None
        self.times = []
        self.first_rss = None  # peak during the first call (compile + run)
        self.rss = 0.0  # peak during the timed calls

    def warm(self):
        """First call: compiles (when not cached) and runs once."""
        reset_peak_rss()
        start = time.perf_counter()
        out = self.fn()
        self.first = time.perf_counter() - start
        self.first_rss = peak_rss_mib()
        if self.check is not None:
            self.check(out)

    def time_once(self):
        reset_peak_rss()
        start = time.perf_counter()
        self.fn()
        self.times.append(time.perf_counter() - start)
        self.rss = max(self.rss, peak_rss_mib())

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def best(self):
        return min(self.times)

    @property
    def compile(self):
        return self.first - self.median


def run_cases(cases, repeats):
    """Warms every case, then times them round-robin `repeats` times.

    Interleaving puts every workload under the same (shared-machine) load,
    so the ratios within one run are comparable.
    """
    for case in cases:
        case.warm()
        log(
            f"  first call {case.name}: {case.first:.1f} s, peak RSS "
            f"{case.first_rss:.0f} MiB"
        )
    for r in range(repeats):
        start = time.perf_counter()
        for case in cases:
            case.time_once()
        log(
            f"  round {r + 1}/{repeats}: {time.perf_counter() - start:.1f} s; "
            f"load average {os.getloadavg()[0]:.2f}"
        )


def generate_options():
    """The XLA options `UnifiedIO.generate` compiles with: XLA:CPU's on the
    CPU, none on an accelerator."""
    import jax

    from keras_uio.models.backend_compile import CPU_COMPILER_OPTIONS

    return CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None


def stateless_jit(variables, fn, compiler_options=None):
    """`jax.jit` of `fn(*args)` with `variables` passed as arguments.

    Passing the values (rather than closing over them) keeps XLA from
    treating the weights as constants, as `UnifiedIO.generate` does. Parts
    of our generate (encoders, VQ-GAN decode) pass generate's
    `compiler_options`, so they are timed as generate runs them.
    """
    import jax
    import keras

    @functools.partial(jax.jit, compiler_options=compiler_options)
    def compiled(values, *args):
        with keras.StatelessScope(state_mapping=zip(variables, values)):
            return fn(*args)

    def call(*args):
        values = [v.value for v in variables]
        return jax.block_until_ready(compiled(values, *args))

    return call


def fmt_s(x):
    return "-" if x is None else f"{x:.3f}"


def measure_probes(probes):
    """Appends one memory-read and one matmul probe result to `probes`."""
    import roofline

    probes.setdefault("gb_s", []).append(roofline.bandwidth_probe())
    probes.setdefault("gflop_s", []).append(roofline.matmul_probe())


def roofline_line(probes, step_bytes=None, step_ms=None, flops=()):
    """`step_bytes / step time` against the memory probe and each
    `(label, FLOPs, seconds)` rate against the matmul probe."""
    gb_s = statistics.median(probes["gb_s"])
    gflop_s = statistics.median(probes["gflop_s"])
    parts = []
    if step_bytes is not None:
        rate = step_bytes / (step_ms / 1e3) / 1e9
        parts.append(
            f"decode step reads {step_bytes / 1e6:.0f} MB: {rate:.1f} GB/s "
            f"({rate / gb_s:.0%} of the {gb_s:.1f} GB/s probe)"
        )
    for label, count, seconds in flops:
        rate = count / seconds / 1e9
        parts.append(
            f"{label} {count / 1e9:.1f} GFLOP: {rate:.1f} GFLOP/s "
            f"({rate / gflop_s:.0%} of the {gflop_s:.1f} GFLOP/s matmul probe)"
        )
    log("  roofline: " + "; ".join(parts))


def log(message):
    print(message, flush=True)


# --- Unified-IO ------------------------------------------------------------------
INPUT_NAMES = ("text_encoder_inputs", "image_encoder_inputs", "image_input_masks")


def uio_inputs(rng, backbone, batch, image_mask_value=1):
    size = backbone.image_size
    patches = (size // backbone.patch_size) ** 2
    high = min(32000, backbone.vocabulary_size - 1)
    text = rng.integers(3, high, (batch, PROMPT_LENGTH)).astype("int32")
    text[:, -1] = 1  # EOS ends the prompt, as the preprocessor writes it.
    return {
        "text_encoder_inputs": text,
        "image_encoder_inputs": rng.uniform(-1.0, 1.0, (batch, size, size, 3)).astype(
            "float32"
        ),
        "image_input_masks": np.full((batch, patches), image_mask_value, "int32"),
    }


def uio_encoders(model):
    """Jitted `backbone.encode`, and encode + the decoder's cross K/V."""
    backbone = model.backbone

    def encode(text, images, masks):
        return backbone.encode(text, images, masks)

    def encode_with_cross_kv(text, images, masks):
        encoded, mask = backbone.encode(text, images, masks)
        caches = [
            layer.cross_attention.project_key_value(encoded)
            for layer in backbone.decoder_layers
        ]
        return encoded, mask, caches

    return (
        stateless_jit(backbone.variables, encode, generate_options()),
        stateless_jit(backbone.variables, encode_with_cross_kv, generate_options()),
    )


def uio_text_encoder(model):
    """Jitted `backbone.encode_text`: what generate runs without any image."""
    backbone = model.backbone
    return stateless_jit(
        backbone.variables, lambda text: backbone.encode_text(text), generate_options()
    )


def uio_text_cases(model, encoders, rng, batch, label, mask_value, cross_kv):
    """Cases for one text run; `encoders=None` reuses another run's encoder.

    The encoder's work does not depend on the mask values (static shapes,
    dense attention), so the text-only run shares the text run's timing.
    """
    import roofline

    backbone = model.backbone
    inputs = uio_inputs(rng, backbone, batch, mask_value)
    args = tuple(inputs[k] for k in INPUT_NAMES)
    eos_rows = []
    patches = 0 if mask_value == 0 else inputs["image_input_masks"].shape[1]
    step_bytes, _ = roofline.decode_step_bytes(
        backbone, batch, PROMPT_LENGTH + patches, TEXT_TOKENS, image_phase=False
    )
    counts = {
        "step_bytes": step_bytes,
        "encoder_flops": roofline.encoder_flops(
            backbone.get_config(), batch, PROMPT_LENGTH, patches
        ),
    }

    def generate():
        return model.generate(
            inputs,
            max_text_length=TEXT_TOKENS,
            sampler="greedy",
            stop_at_eos=False,
        )

    def check(out):
        shape = out["text_tokens"].shape
        assert shape == (batch, TEXT_TOKENS), shape
        eos_rows.append(int((out["text_tokens"] == 1).any(-1).sum()))

    cases = {"generate": Case(f"{label} b{batch} generate", generate, check)}
    if mask_value == 0:
        # No image patch at all: generate encodes the text alone.
        encode_text = uio_text_encoder(model)
        text = inputs["text_encoder_inputs"]
        cases["encoder"] = Case(f"text encoder b{batch}", lambda: encode_text(text))
    elif encoders is not None:
        encode, encode_kv = encoders
        cases["encoder"] = Case(f"encoder b{batch}", lambda: encode(*args))
        if cross_kv:
            cases["encoder_kv"] = Case(
                f"encoder + cross K/V b{batch}", lambda: encode_kv(*args)
            )
    return {
        "label": label,
        "batch": batch,
        "cases": cases,
        "eos_rows": eos_rows,
        "counts": counts,
    }


def uio_text_row(spec, encoder_cases, probes):
    c = {**encoder_cases[spec["batch"]], **spec["cases"]}
    gen, enc = c["generate"], c["encoder"]
    batch = spec["batch"]
    row = {
        "batch": batch,
        "compile": gen.compile,
        "seconds": gen.median,
        "best": gen.best,
        "tokens_per_s": batch * TEXT_TOKENS / gen.median,
        "encoder": enc.median,
        "step_ms": 1e3 * (gen.median - enc.median) / TEXT_TOKENS,
        "rss": gen.rss,
    }
    extra = ""
    if "encoder_kv" in c:
        kv = c["encoder_kv"].median
        row["encoder_kv"] = kv
        row["step_ms_no_kv"] = 1e3 * (gen.median - kv) / TEXT_TOKENS
        extra = (
            f" (+ cross K/V projections: {kv:.3f} s; "
            f"{row['step_ms_no_kv']:.1f} ms/step without them)"
        )
    log(
        f"{spec['label']} b{batch}: compile {row['compile']:.1f} s, steady "
        f"{gen.median:.3f} s (best {gen.best:.3f}), "
        f"{row['tokens_per_s']:.1f} tokens/s, encoder {enc.median:.3f} s"
        f"{extra}, {row['step_ms']:.1f} ms/step, peak RSS {gen.rss:.0f} MiB "
        f"(first call, with compile: {gen.first_rss:.0f} MiB); "
        f"rows that wrote an EOS: {spec['eos_rows'][0]}/{batch} "
        "(decoding went on: stop_at_eos=False)"
    )
    counts = spec["counts"]
    roofline_line(
        probes,
        counts["step_bytes"],
        row["step_ms"],
        [("encoder", counts["encoder_flops"], enc.median)],
    )
    return row


def uio_image_cases(model, encoders, vq_decode, rng, batch):
    """`encoders=None` reuses a text run's encoder case of this batch."""
    import roofline

    backbone = model.backbone
    inputs = uio_inputs(rng, backbone, batch)
    args = tuple(inputs[k] for k in INPUT_NAMES)
    grid = model.vqgan.num_codes
    codes = rng.integers(0, model.backbone.image_vocabulary_size, (batch, grid))
    codes = codes.astype("int32")

    def generate():
        return model.generate(
            inputs,
            max_text_length=1,
            image=True,
            sampler="greedy",
            stop_at_eos=False,
        )

    def check(out):
        assert out["image_tokens"].shape == (batch, grid), out["image_tokens"].shape
        assert out["image"].shape[0] == batch, out["image"].shape

    cases = {
        "generate": Case(f"image b{batch} generate", generate, check),
        "vqgan": Case(f"VQ-GAN decode b{batch}", lambda: vq_decode(codes)),
    }
    if encoders is not None:
        cases["encoder"] = Case(f"encoder b{batch}", lambda: encoders[0](*args))
    patches = inputs["image_input_masks"].shape[1]
    steps = 1 + backbone.max_decoder_image_length
    # Counted as image steps (image output table): 256 of the 257 are.
    step_bytes, _ = roofline.decode_step_bytes(
        backbone, batch, PROMPT_LENGTH + patches, steps, image_phase=True
    )
    counts = {
        "step_bytes": step_bytes,
        "encoder_flops": roofline.encoder_flops(
            backbone.get_config(), batch, PROMPT_LENGTH, patches
        ),
        "vqgan_flops": roofline.vqgan_decode_flops(model.vqgan, batch),
    }
    return {"batch": batch, "cases": cases, "steps": steps, "counts": counts}


def uio_image_row(spec, encoder_cases, probes):
    c = {**encoder_cases[spec["batch"]], **spec["cases"]}
    gen, enc, vq = c["generate"], c["encoder"], c["vqgan"]
    steps = spec["steps"]
    row = {
        "batch": spec["batch"],
        "compile": gen.compile,
        "seconds": gen.median,
        "best": gen.best,
        "encoder": enc.median,
        "vqgan": vq.median,
        "step_ms": 1e3 * (gen.median - enc.median - vq.median) / steps,
        "rss": gen.rss,
    }
    log(
        f"image b{spec['batch']}: compile {gen.compile:.1f} s, steady "
        f"{gen.median:.3f} s (best {gen.best:.3f}); encoder {enc.median:.3f} s; "
        f"VQ-GAN decode alone {vq.median:.3f} s (best {vq.best:.3f}, compile "
        f"{vq.compile:.1f} s, peak RSS {vq.rss:.0f} MiB); {row['step_ms']:.1f} "
        f"ms per decoder step ({steps} steps); peak RSS {gen.rss:.0f} MiB "
        f"(first call, with compile: {gen.first_rss:.0f} MiB)"
    )
    counts = spec["counts"]
    roofline_line(
        probes,
        counts["step_bytes"],
        row["step_ms"],
        [
            ("encoder", counts["encoder_flops"], enc.median),
            (
                "VQ-GAN decode (generate's XLA options)",
                counts["vqgan_flops"],
                vq.median,
            ),
        ],
    )
    return row


def vqgan_direct_cases(vqgan, rng, batch=1):
    """Direct `decode` / `encode` calls, compiled and uncompiled."""
    import jax

    codes = rng.integers(0, vqgan.codebook_size, (batch, vqgan.num_codes))
    codes = codes.astype("int32")
    size = vqgan.image_size
    images = rng.uniform(-1, 1, (batch, size, size, vqgan.in_channels))
    images = images.astype("float32")

    def timed(fn, x):
        return lambda: jax.block_until_ready(fn(x))

    return {
        "batch": batch,
        "cases": {
            "decode": Case(f"vqgan.decode b{batch}", timed(vqgan.decode, codes)),
            "decode_eager": Case(
                f"vqgan._decode (uncompiled) b{batch}", timed(vqgan._decode, codes)
            ),
            "encode": Case(f"vqgan.encode b{batch}", timed(vqgan.encode, images)),
            "encode_eager": Case(
                f"vqgan._encode (uncompiled) b{batch}",
                timed(vqgan._encode, images),
            ),
        },
        "flops": {
            "decode": roofline_counts_vqgan(vqgan, batch, "decode"),
            "encode": roofline_counts_vqgan(vqgan, batch, "encode"),
        },
    }


def roofline_counts_vqgan(vqgan, batch, part):
    import roofline

    if part == "decode":
        return roofline.vqgan_decode_flops(vqgan, batch)
    return roofline.vqgan_encode_flops(vqgan, batch)


def vqgan_direct_rows(spec, probes):
    c = spec["cases"]
    for part in ("decode", "encode"):
        new, old = c[part], c[part + "_eager"]
        log(
            f"vqgan.{part} b{spec['batch']} called directly: first call "
            f"{new.first:.2f} s (compile + run), later calls {new.median:.3f} s "
            f"(best {new.best:.3f}); uncompiled path: first call "
            f"{old.first:.2f} s, later calls {old.median:.3f} s (best "
            f"{old.best:.3f}): {old.median / new.median:.2f}x"
        )
        count = spec["flops"][part]
        roofline_line(
            probes,
            flops=[
                (f"{part} compiled", count, new.median),
                (f"{part} uncompiled", count, old.median),
            ],
        )


# --- keras_hub T5 -------------------------------------------------------------
def build_t5(cfg):
    import keras_hub

    backbone = keras_hub.models.T5Backbone(
        vocabulary_size=cfg["vocabulary_size"] + cfg["image_vocabulary_size"],
        hidden_dim=cfg["hidden_dim"],
        intermediate_dim=cfg["intermediate_dim"],
        num_heads=cfg["num_heads"],
        key_value_dim=cfg["head_dim"],
        num_layers=cfg["num_decoder_layers"],
        use_gated_activation=True,
        activation="gelu",
    )
    lm = keras_hub.models.T5Seq2SeqLM(backbone=backbone, preprocessor=None)
    lm.compile(sampler="greedy")
    return lm


def t5_cases(lm, rng, batch):
    vocab = lm.backbone.vocabulary_size
    encoder_ids = rng.integers(3, min(vocab, 32000), (batch, PROMPT_LENGTH))
    encoder_ids[:, -1] = 1
    decoder_mask = np.zeros((batch, TEXT_TOKENS + 1), "int32")
    decoder_mask[:, 0] = 1  # the start token; 32 positions to write
    inputs = {
        "encoder_token_ids": encoder_ids.astype("int32"),
        "encoder_padding_mask": np.ones((batch, PROMPT_LENGTH), "int32"),
        "decoder_token_ids": np.zeros((batch, TEXT_TOKENS + 1), "int32"),
        "decoder_padding_mask": decoder_mask,
    }
    variables = lm.trainable_variables + lm.non_trainable_variables
    encode = stateless_jit(variables, lm.call_encoder)
    prefill = stateless_jit(variables, lm._build_cache)

    def generate():
        return lm.generate(dict(inputs), stop_token_ids=None)

    def check(out):
        written = int(np.asarray(out["decoder_padding_mask"])[:, 1:].sum())
        assert written == batch * TEXT_TOKENS, written

    ids, mask = inputs["encoder_token_ids"], inputs["encoder_padding_mask"]
    return {
        "batch": batch,
        "cases": {
            "generate": Case(f"T5 b{batch} generate", generate, check),
            "encoder": Case(f"T5 b{batch} encoder", lambda: encode(ids, mask)),
            "prefill": Case(
                f"T5 b{batch} encoder + prefill",
                lambda: prefill(ids, mask, inputs["decoder_token_ids"]),
            ),
        },
    }


def t5_row(spec):
    c = spec["cases"]
    gen, enc, pre = c["generate"], c["encoder"], c["prefill"]
    batch = spec["batch"]
    row = {
        "batch": batch,
        "compile": gen.compile,
        "seconds": gen.median,
        "best": gen.best,
        "tokens_per_s": batch * TEXT_TOKENS / gen.median,
        "encoder": enc.median,
        "encoder_prefill": pre.median,
        "step_ms": 1e3 * (gen.median - enc.median) / TEXT_TOKENS,
        "step_ms_strict": 1e3 * (gen.median - pre.median) / TEXT_TOKENS,
        "rss": gen.rss,
    }
    log(
        f"T5Seq2SeqLM b{batch}: compile {gen.compile:.1f} s, steady "
        f"{gen.median:.3f} s (best {gen.best:.3f}), "
        f"{row['tokens_per_s']:.1f} tokens/s, encoder {enc.median:.3f} s, "
        f"encoder + 33-token prefill {pre.median:.3f} s; {row['step_ms']:.1f} "
        f"ms/step (total - encoder), {row['step_ms_strict']:.1f} ms/step "
        f"(total - encoder - prefill), peak RSS {gen.rss:.0f} MiB (first "
        f"call, with compile: {gen.first_rss:.0f} MiB)"
    )
    return row


# --- report ----------------------------------------------------------------------
def verdict(ok):
    return "PASS" if ok else "FAIL"


def report(text_rows, text_only_rows, image_rows, t5_rows, original=None):
    """The summary: ours against the original and `T5Seq2SeqLM` measured in
    this run (`original`: `original_generate.py --json-out`'s figures)."""
    log("")
    log("summary (steady state = median; ratios: > 1 means keras_uio is faster)")
    if original is None:
        log(
            "no --original: keras_uio's figures alone (run "
            "benchmarks/original_generate.py --json-out FILE just before and "
            "pass --original FILE for ratios against the original)"
        )
    header = f"{'measurement':<48} {'original':>9} {'keras_uio':>9} {'ratio':>6}"
    log(header)
    log("-" * len(header))

    def line(label, theirs, ours, rate=False):
        """One row of times (or, `rate=True`, of rates); returns our speed-up,
        None where the original was not measured."""
        speedup = None
        if theirs is not None:
            speedup = ours / theirs if rate else theirs / ours
        ratio = "" if speedup is None else f"{speedup:.2f}x"
        log(f"{label:<48} {fmt_s(theirs):>9} {fmt_s(ours):>9} {ratio:>6}")
        return speedup

    results = []
    for row in text_rows:
        b = row["batch"]
        seconds = encoder = None
        if original and f"text_b{b}_seconds" in original:
            seconds = original[f"text_b{b}_seconds"]
            encoder = original[f"text_b{b}_encoder"]
        line(f"text b{b}: seconds (32 tokens, image prompt)", seconds, row["seconds"])
        speedup = line(
            f"text b{b}: tokens/s",
            seconds and b * TEXT_TOKENS / seconds,
            row["tokens_per_s"],
            rate=True,
        )
        line(f"text b{b}: encoder seconds", encoder, row["encoder"])
        line(
            f"text b{b}: ms/step (total - encoder) / 32",
            seconds and (seconds - encoder) / TEXT_TOKENS * 1e3,
            row["step_ms"],
        )
        log(
            f"text b{b}: compile seconds {row['compile']:.1f}, peak RSS MiB {row['rss']:.0f}"
        )
        target = TEXT_SPEEDUP_TARGETS.get(b)
        if speedup is not None and target:
            results.append(
                (
                    f"text b{b} tokens/s >= {target:.1f}x original",
                    speedup,
                    speedup >= target,
                )
            )
    for row in image_rows:
        b = row["batch"]
        known = original and b == 1 and "image_b1_seconds" in original
        seconds, step, vqgan = (
            (
                original["image_b1_seconds"],
                original["image_b1_step_ms"],
                original["vqgan_decode_seconds"],
            )
            if known
            else (None, None, None)
        )
        speedup = line(
            f"image b{b}: seconds (1 text + 256 codes + VQ-GAN)",
            seconds,
            row["seconds"],
        )
        line(f"image b{b}: ms per decoder step", step, row["step_ms"])
        vqgan_speedup = line("VQ-GAN decode alone: seconds", vqgan, row["vqgan"])
        log(
            f"image b{b}: compile seconds {row['compile']:.1f}, peak RSS MiB {row['rss']:.0f}"
        )
        if speedup is not None:
            results.append(
                (
                    f"image b1 >= {IMAGE_SPEEDUP_TARGET:.1f}x original",
                    speedup,
                    speedup >= IMAGE_SPEEDUP_TARGET,
                )
            )
            results.append(
                (
                    f"VQ-GAN decode >= {VQGAN_SPEEDUP_TARGET:.1f}x original's",
                    vqgan_speedup,
                    vqgan_speedup >= VQGAN_SPEEDUP_TARGET,
                )
            )

    if t5_rows:
        log("")
        log(
            "vs keras_hub T5Seq2SeqLM (same dims, 32 tokens from a 32-token "
            "text prompt; ours: image mask all zeros, so"
        )
        log("generate encodes the text alone; per step = (total - text encoder) / 32)")
        header = f"{'measurement':<44} {'T5':>9} {'keras_uio':>9} {'T5/ours':>7}"
        log(header)
        log("-" * len(header))
        ours = {r["batch"]: r for r in text_only_rows}
        for t5 in t5_rows:
            b = t5["batch"]
            mine = ours.get(b, {})
            log(
                f"{'b%d: seconds (whole generate)' % b:<44} "
                f"{t5['seconds']:>9.3f} {fmt_s(mine.get('seconds')):>9}"
            )
            log(
                f"{'b%d: encoder seconds' % b:<44} "
                f"{t5['encoder']:>9.3f} {fmt_s(mine.get('encoder')):>9}"
            )
            if mine:
                log(
                    f"{'b%d: ms/step, (total - encoder) / 32' % b:<44} "
                    f"{t5['step_ms']:>9.1f} {mine['step_ms']:>9.1f} "
                    f"{t5['step_ms'] / mine['step_ms']:>6.2f}x"
                )
                log(
                    f"{'b%d: ms/step, T5 also minus its prefill' % b:<44} "
                    f"{t5['step_ms_strict']:>9.1f} {mine['step_ms']:>9.1f} "
                    f"{t5['step_ms_strict'] / mine['step_ms']:>6.2f}x"
                )
                results.append(
                    (
                        f"b{b} ms/decode step <= T5Seq2SeqLM's (minus encoder "
                        "and prefill)",
                        t5["step_ms_strict"] / mine["step_ms"],
                        mine["step_ms"] <= t5["step_ms_strict"],
                    )
                )
            log(
                f"{'b%d: T5 compile seconds, peak RSS MiB' % b:<44} "
                f"{t5['compile']:>9.1f} {t5['rss']:>9.0f}"
            )

    log("")
    log("targets (against references measured in this run)")
    if not results:
        log("  none: no reference was measured in this run")
    for label, ratio, ok in results:
        log(f"  {verdict(ok)}  {label}: {ratio:.2f}x")
    return all(ok for _, _, ok in results)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="uio_small")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--image-batch-sizes", type=int, nargs="*", default=[1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-t5", action="store_true")
    parser.add_argument(
        "--skip-text-only",
        action="store_true",
        help="skip our image-mask-zero run (the T5 comparison)",
    )
    parser.add_argument(
        "--cross-kv",
        action="store_true",
        help="also time encode + the decoder's cross K/V "
        "projections (a per-step breakdown aid)",
    )
    parser.add_argument(
        "--original",
        metavar="JSON",
        help="the original's figures measured by "
        "benchmarks/original_generate.py --json-out (same preset, same "
        "machine, just before): ratios and targets against them",
    )
    parser.add_argument(
        "--vqgan-direct",
        action="store_true",
        help="also time model.vqgan.decode / encode called "
        "directly, compiled and uncompiled (batch 1)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    import jax
    import keras
    import keras_hub

    import keras_uio

    log(
        f"keras {keras.__version__}, keras_hub {keras_hub.__version__}, jax "
        f"{jax.__version__}, backend {keras.backend.backend()}, devices "
        f"{jax.devices()}, cpus {os.cpu_count()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    keras.config.set_floatx("float32")
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    model = keras_uio.UnifiedIO.from_preset(args.preset, load_weights=False)
    log(
        f"{args.preset}: backbone {model.backbone.count_params() / 1e6:.1f}M + "
        f"VQ-GAN {model.vqgan.count_params() / 1e6:.1f}M parameters (random, "
        f"float32), built in {time.perf_counter() - start:.1f} s; steady state "
        f"= median of {args.repeats} interleaved rounds after a first call"
    )
    encoders = uio_encoders(model)

    text_specs, text_only_specs, image_specs, t5_specs = [], [], [], []
    vqgan_specs = []
    if args.vqgan_direct:
        vqgan_specs.append(vqgan_direct_cases(model.vqgan, rng))
    for batch in args.batch_sizes:
        text_specs.append(
            uio_text_cases(model, encoders, rng, batch, "text", 1, args.cross_kv)
        )
    encoder_cases = {s["batch"]: s["cases"] for s in text_specs}
    if args.image_batch_sizes:
        vq_decode = stateless_jit(
            model.vqgan.variables, model.vqgan.decode, generate_options()
        )
        for batch in args.image_batch_sizes:
            image_specs.append(
                uio_image_cases(
                    model,
                    None if batch in encoder_cases else encoders,
                    vq_decode,
                    rng,
                    batch,
                )
            )
            encoder_cases.setdefault(batch, image_specs[-1]["cases"])
    if not args.skip_text_only:
        for batch in args.batch_sizes:
            text_only_specs.append(
                uio_text_cases(model, None, rng, batch, "text-only", 0, False)
            )
    if not args.skip_t5:
        lm = build_t5(model.backbone.get_config())
        log(
            f"keras_hub T5Seq2SeqLM: {lm.count_params() / 1e6:.1f}M parameters "
            "(random), greedy sampler, preprocessor=None"
        )
        for batch in args.batch_sizes:
            t5_specs.append(t5_cases(lm, rng, batch))
    cases = [
        case
        for spec in (
            vqgan_specs + text_specs + image_specs + text_only_specs + t5_specs
        )
        for case in spec["cases"].values()
    ]
    log(f"warming {len(cases)} workloads, then {args.repeats} interleaved rounds:")
    probes = {}
    measure_probes(probes)
    run_cases(cases, args.repeats)
    measure_probes(probes)
    log(
        f"probes before / after the rounds: memory read "
        f"{probes['gb_s'][0]:.1f} / {probes['gb_s'][1]:.1f} GB/s, matmul "
        f"{probes['gflop_s'][0]:.1f} / {probes['gflop_s'][1]:.1f} GFLOP/s "
        "(each the median of 5; rates below are against their median)"
    )

    log("")
    log(
        "text: 32 tokens, greedy, stop_at_eos=False (exactly 32 written), "
        "32-token prompt + 384x384 image:"
    )
    text_rows = [uio_text_row(s, encoder_cases, probes) for s in text_specs]
    image_rows = []
    if image_specs:
        log("image: max_text_length=1, image=True, greedy, stop_at_eos=False:")
        image_rows = [uio_image_row(s, encoder_cases, probes) for s in image_specs]
    text_only_rows = []
    if text_only_specs:
        log(
            "text-only input (image mask all zeros: generate encodes the "
            "text alone, and steps cross-attend over the 32 text positions):"
        )
        text_only_rows = [
            uio_text_row(s, encoder_cases, probes) for s in text_only_specs
        ]
    for spec in vqgan_specs:
        log("VQ-GAN called directly (random codes / images in [-1, 1]):")
        vqgan_direct_rows(spec, probes)
    t5_rows = []
    if t5_specs:
        log(
            "keras_hub T5Seq2SeqLM, 32 tokens from a 32-token prompt, "
            "stop_token_ids=None:"
        )
        t5_rows = [t5_row(s) for s in t5_specs]

    original = None
    if args.original:
        import json

        with open(args.original) as f:
            original = json.load(f)
    report(text_rows, text_only_rows, image_rows, t5_rows, original)
    log("")
    log(
        f"process peak RSS (max over all measurements): "
        f"{process_peak_rss_mib():.0f} MiB; load average "
        f"now {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
