"""float32 vs bfloat16 vs int8 weights: decode step and VQ-GAN decode speed.

`uio_small` with random weights (one float32 draw, copied into the other
models), JAX on the CPU, in one process, every workload timed round-robin
(`benchmarks/generate.py`'s `Case` / `run_cases`) so a shared machine's load
falls on all of them alike:

- b1 greedy text decode step: `generate` of 32 tokens minus `generate` of
  1 token (same prompt: 32 text tokens + a 384x384 image, `stop_at_eos=
  False`), over 31: ms per token after the encoder and first step;
- `vqgan.decode` of one 16x16 code grid, jitted with generate's XLA
  options (as `generate` runs it).

Models: float32; bfloat16 (`dtype="bfloat16"`: weights, activations and
KV caches in bfloat16, logits float32); int8 weight-only
(`model.quantize("int8", config=Int8QuantizationConfig(
activation_quantizer=None), type_check=False)`: every Dense / EinsumDense
kernel and the tied token embedding int8 with per-channel scales, compute
float32; the VQ-GAN's convolutions are not quantized by Keras); with
`--int8-activations` also Keras' default int8 (activations quantized per
row too, int8 x int8 products).

Printed per model: ms per decode step and its ratio to float32, the bytes
of weights one text decode step reads (decoder layers without the cross-
attention key/value projections, which run once, the final norm, and the
text + location rows of the output table with their scales; counted from
the variables), the VQ-GAN decode and its ratio. With `--hlo DIR` the
optimized HLO of each model's 32-token generate is written there, with
what its decode loop carries (int8 arrays, or the float copies XLA hoisted
out of the loop) and how many convert fusions run per step.

Usage:
    KERAS_BACKEND=jax taskset -c 1 python benchmarks/low_precision.py \
        --repeats 5 [--int8-activations] [--hlo /tmp/hlo]
"""

import argparse
import os
import re
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import warnings  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from generate import Case  # noqa: E402
from generate import generate_options  # noqa: E402
from generate import log  # noqa: E402
from generate import run_cases  # noqa: E402
from generate import stateless_jit  # noqa: E402
from generate import uio_inputs  # noqa: E402

TOKENS = 32


def build_models(preset, seed, int8_activations):
    import keras

    import keras_uio
    from keras_uio.models.unified_io.unified_io_presets import unified_io_presets
    from keras_uio.models.vqgan.vqgan_presets import vqgan_presets

    vq_config = vqgan_presets[unified_io_presets[preset]["metadata"]["vqgan"]]["config"]

    def build(dtype=None):
        kwargs = {} if dtype is None else {"dtype": dtype}
        backbone = keras_uio.UnifiedIOBackbone.from_preset(
            preset, load_weights=False, **kwargs
        )
        return keras_uio.UnifiedIO(backbone, keras_uio.VQGAN(**vq_config, **kwargs))

    keras.utils.set_random_seed(seed)
    reference = build()
    values = [np.asarray(v) for v in reference.variables]

    def copy(dtype=None):
        model = build(dtype)
        for variable, value in zip(model.variables, values):
            variable.assign(value.astype(variable.dtype))
        return model

    models = {"float32": reference, "bfloat16": copy("bfloat16")}
    models["int8"] = quantize_int8(copy(), weight_only=True)
    if int8_activations:
        models["int8+act"] = quantize_int8(copy(), weight_only=False)
    return models


def quantize_int8(model, weight_only=True):
    """`model`, int8-quantized in place by Keras: weight-only (activations
    stay float32) or Keras' default (activations int8 per row too)."""
    import keras

    config = None
    if weight_only:
        config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # layers Keras does not quantize
        model.quantize("int8", config=config, type_check=False)
    return model


def _nbytes(variable):
    return int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize


def decode_step_weight_bytes(backbone):
    """Bytes of weights one text decode step reads, from the variables."""
    cross_kv = ("/cross_attention/key/", "/cross_attention/value/")
    total = sum(
        _nbytes(v)
        for v in backbone.variables
        if v.path.startswith(("decoder_layer", "decoder_norm"))
        and not any(part in v.path for part in cross_kv)
    )
    rows = backbone.vocabulary_size
    for v in backbone.variables:
        if v.path.startswith("token_embedding/"):
            # The text + location rows of the table, and of its scales.
            total += _nbytes(v) * rows // v.shape[0]
    return total


def hlo_report(model, inputs, path):
    """Writes the optimized HLO of a 32-token generate; returns, for the
    decode loop's body, the int8 and the large (>= 64 Ki elements) float
    arrays it carries as loop state (the weights it reads each step, after
    XLA hoisted loop invariants) and its convert fusions (per-step dtype
    conversions)."""
    import jax

    from keras_uio.models.unified_io import unified_io_decoding as d
    from keras_uio.models.unified_io.unified_io_sampler import UnifiedIOSampler

    variables = model.variables
    b = model.backbone
    sampler = UnifiedIOSampler(
        "greedy",
        vocabulary_size=b.vocabulary_size,
        total_size=b.vocabulary_size + b.image_vocabulary_size,
    )

    def run(values, text, images, masks):
        import keras

        with keras.StatelessScope(state_mapping=zip(variables, values)):
            return d.decode(
                b, model.vqgan, text, images, masks, None, sampler, TOKENS, 0, False
            )

    lowered = jax.jit(run, compiler_options=generate_options()).lower(
        [v.value for v in variables], *inputs.values()
    )
    text = lowered.compile().as_text()
    with open(path, "w") as f:
        f.write(text)
    computations, current = {}, None
    for line in text.splitlines():
        match = re.match(r"^(?:ENTRY )?%(\S+) .*\{$", line)
        if match:
            current = match.group(1)
            computations[current] = []
        elif current:
            computations[current].append(line)
    reports = []
    for body in re.findall(r"body=%([\w.\-]+)", text):
        lines = computations[body]
        state = lines[0]
        int8 = re.findall(r"s8\[[\d,]*\]", state)
        floats = [
            s
            for s in re.findall(r"(?:f32|bf16)\[([\d,]+)\]", state)
            if np.prod([int(n) for n in s.split(",")]) >= 1 << 16
        ]
        converts = sum("convert" in line and "fusion" in line for line in lines)
        reports.append(
            f"loop state: {len(int8)} int8 arrays {int8[:2]}, {len(floats)} "
            f"float arrays >= 64 Ki elements; {converts} convert fusions per step"
        )
    return "; ".join(reports)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="uio_small")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--int8-activations", action="store_true")
    parser.add_argument("--hlo", default=None, help="folder for HLO dumps")
    args = parser.parse_args(argv)

    import jax

    start = time.perf_counter()
    models = build_models(args.preset, args.seed, args.int8_activations)
    log(
        f"{args.preset}: {len(models)} models built in "
        f"{time.perf_counter() - start:.1f} s (random float32 weights, copied)"
    )
    rng = np.random.default_rng(args.seed)
    float_model = models["float32"]
    inputs = uio_inputs(rng, float_model.backbone, 1)
    codes = rng.integers(0, float_model.backbone.image_vocabulary_size, (1, 256))

    def generator(model, tokens):
        def fn():
            out = model.generate(inputs, max_text_length=tokens, stop_at_eos=False)
            return jax.block_until_ready(out["text_tokens"])

        return fn

    cases = {}
    for name, model in models.items():
        cases[name] = {
            "gen32": Case(f"{name} generate {TOKENS}", generator(model, TOKENS)),
            "gen1": Case(f"{name} generate 1", generator(model, 1)),
        }
        if name != "int8+act":  # the VQ-GAN is the int8 model's one
            vq_decode = stateless_jit(
                model.vqgan.variables, model.vqgan.decode, generate_options()
            )
            cases[name]["vqgan"] = Case(
                f"{name} vqgan.decode", lambda f=vq_decode: f(codes)
            )
    run_cases([c for group in cases.values() for c in group.values()], args.repeats)

    tokens = {
        name: np.asarray(
            model.generate(inputs, max_text_length=TOKENS, stop_at_eos=False)[
                "text_tokens"
            ]
        )
        for name, model in models.items()
    }
    step = {
        name: (c["gen32"].median - c["gen1"].median) / (TOKENS - 1) * 1e3
        for name, c in cases.items()
    }
    log("")
    log(
        f"b1 greedy text, ms per decode step = (generate {TOKENS} - generate 1) "
        f"/ {TOKENS - 1}, medians of {args.repeats} interleaved rounds:"
    )
    log(
        "| model | ms/step | speed-up | weight MB read/step | tokens = float32 "
        "| VQ-GAN decode s | speed-up |"
    )
    log("|---|---|---|---|---|---|---|")
    for name, model in models.items():
        vq = cases[name].get("vqgan")
        vq_cell = "-" if vq is None else f"{vq.median:.3f}"
        vq_ratio = (
            "-"
            if vq is None
            else (f"{cases['float32']['vqgan'].median / vq.median:.2f}x")
        )
        same = float(np.mean(tokens[name] == tokens["float32"]))
        log(
            f"| {name} | {step[name]:.2f} | {step['float32'] / step[name]:.2f}x | "
            f"{decode_step_weight_bytes(model.backbone) / 1e6:.1f} | {same:.0%} | "
            f"{vq_cell} | {vq_ratio} |"
        )
    if args.hlo:
        os.makedirs(args.hlo, exist_ok=True)
        for name, model in models.items():
            path = os.path.join(args.hlo, f"generate_{name}.txt")
            log(f"{name}: HLO in {path}; {hlo_report(model, inputs, path)}")


if __name__ == "__main__":
    main()
