"""Forward-pass speed of a random `uio_small` on the JAX CPU backend.

Measures, for each batch size:
  (a) the encoder forward (`backbone.encode`): 32 text tokens + a 384x384
      image (576 patches);
  (b) the teacher-forced forward (the backbone's functional call): the same
      encoder input plus a decoder of 32 text + 256 image tokens, with the
      output logits over the whole 49536-id vocabulary.

Compile time (trace + lower + XLA compile) is reported apart from the
steady-state time (median of `--repeats` runs of the compiled function).
The analytic FLOP count covers the matmuls only (2 FLOPs per
multiply-add): q/k/v/output projections, attention scores and values, the
gated MLP, the patch projection, the absolute-position-bias projections and
scores, and the output logits. A jitted 2048x2048 float32 matmul measured in
the same run serves as a peak proxy; timings on a shared machine are noisy,
so compare the ratios printed by one run.

Usage:
    KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 python benchmarks/forward.py
    ... --batch-sizes 1 --repeats 10 --parts encoder
"""

import argparse
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def encoder_flops(cfg, batch, text_length, num_patches):
    """Matmul FLOPs of one encoder forward."""
    e = cfg["hidden_dim"]
    hd = cfg["num_heads"] * cfg["head_dim"]
    f = cfg["intermediate_dim"]
    p = cfg["patch_size"]
    length = text_length + num_patches
    patch = 2 * num_patches * (p * p * 3) * e
    # Absolute position bias: q/k projections of the position rows and the
    # [heads, L, L] scores (batch independent, computed once).
    position_bias = 2 * 2 * length * e * hd + 2 * length * length * hd
    per_layer = (
        4 * 2 * length * e * hd  # q, k, v, output projections
        + 2 * 2 * length * length * hd  # scores and weighted values
        + 3 * 2 * length * e * f  # gate, up, down
    )
    total = batch * (patch + cfg["num_encoder_layers"] * per_layer)
    return total + position_bias


def decoder_flops(cfg, batch, decoder_length, encoder_length, vocab):
    """Matmul FLOPs of one teacher-forced decoder pass (given the encoding)."""
    e = cfg["hidden_dim"]
    hd = cfg["num_heads"] * cfg["head_dim"]
    f = cfg["intermediate_dim"]
    ld, le = decoder_length, encoder_length
    position_bias = 2 * 2 * ld * e * hd + 2 * ld * ld * hd
    per_layer = (
        4 * 2 * ld * e * hd  # self-attention projections
        + 2 * 2 * ld * ld * hd  # self-attention scores and values
        + 2 * 2 * ld * e * hd  # cross-attention query and output
        + 2 * 2 * le * e * hd  # cross-attention keys and values
        + 2 * 2 * ld * le * hd  # cross-attention scores and values
        + 3 * 2 * ld * e * f  # MLP
    )
    logits = 2 * ld * e * vocab
    return batch * (cfg["num_decoder_layers"] * per_layer + logits) + position_bias


def peak_rss_mib():
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0


def timed_compile(jitted, *args):
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - start


def steady_state(compiled, args, repeats, warmup, probe=None):
    """Median and best seconds of `compiled(*args)`.

    With `probe` (a no-argument callable returning GFLOP/s), one probe run
    follows every timed run, and the median probe rate (the peak proxy
    measured under the same machine load) is returned too.
    """
    import jax

    for _ in range(warmup):
        jax.block_until_ready(compiled(*args))
    times, rates = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
        if probe is not None:
            rates.append(probe())
    rate = statistics.median(rates) if rates else None
    return statistics.median(times), min(times), rate


def matmul_probe(size):
    """A callable timing one jitted `size`x`size` float32 matmul (GFLOP/s)."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((size, size), dtype=np.float32))
    b = jnp.asarray(rng.standard_normal((size, size), dtype=np.float32))
    compiled, _ = timed_compile(jax.jit(jnp.matmul), a, b)
    jax.block_until_ready(compiled(a, b))
    flops = 2.0 * size**3

    def probe():
        start = time.perf_counter()
        jax.block_until_ready(compiled(a, b))
        return flops / (time.perf_counter() - start) / 1e9

    return probe


def matmul_peak(probe, repeats):
    rates = [probe() for _ in range(repeats)]
    return statistics.median(rates), max(rates)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="uio_small")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--text-length", type=int, default=32)
    parser.add_argument("--decoder-text-length", type=int, default=32)
    parser.add_argument("--decoder-image-length", type=int, default=256)
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["encoder", "forward"],
        default=["encoder", "forward"],
    )
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument(
        "--no-interleave",
        action="store_true",
        help="do not time a matmul after every model run (by default the "
        "fraction of peak uses the matmul rate measured in the same window, "
        "which cancels most of the load from other processes)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import jax
    import keras

    import keras_uio

    print(
        f"keras {keras.__version__}, jax {jax.__version__}, backend "
        f"{keras.backend.backend()}, devices {jax.devices()}, "
        f"cpus {os.cpu_count()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    backbone = keras_uio.UnifiedIOBackbone.from_preset(args.preset, load_weights=False)
    build_seconds = time.perf_counter() - start
    cfg = backbone.get_config()
    vocab = cfg["vocabulary_size"] + cfg["image_vocabulary_size"]
    grid = cfg["image_size"] // cfg["patch_size"]
    num_patches = grid * grid
    print(
        f"{args.preset}: {backbone.count_params() / 1e6:.2f}M parameters, "
        f"built in {build_seconds:.1f} s; encoder {args.text_length} text + "
        f"{num_patches} patches, decoder {args.decoder_text_length} text + "
        f"{args.decoder_image_length} image tokens, vocabulary {vocab}"
    )

    probe = matmul_probe(args.matmul_size)
    peak, peak_best = matmul_peak(probe, max(args.repeats, 5))
    print(
        f"peak proxy: jitted {args.matmul_size}x{args.matmul_size} float32 "
        f"matmul {peak:.1f} GFLOP/s (median; best {peak_best:.1f})"
    )

    variables = [v.value for v in backbone.variables]
    trainable = [v.value for v in backbone.trainable_variables]
    non_trainable = [v.value for v in backbone.non_trainable_variables]

    def encode_fn(values, text, images, masks):
        mapping = list(zip(backbone.variables, values))
        with keras.StatelessScope(state_mapping=mapping):
            return backbone.encode(text, images, masks)

    def forward_fn(trainable, non_trainable, inputs):
        outputs, _ = backbone.stateless_call(trainable, non_trainable, inputs)
        return outputs

    probe_or_none = None if args.no_interleave else probe
    encode_jit = jax.jit(encode_fn)
    forward_jit = jax.jit(forward_fn)
    rng = np.random.default_rng(args.seed)
    rows = []
    for batch in args.batch_sizes:
        text = rng.integers(3, 32000, (batch, args.text_length)).astype("int32")
        images = rng.standard_normal(
            (batch, cfg["image_size"], cfg["image_size"], 3)
        ).astype("float32")
        masks = np.ones((batch, num_patches), "int32")
        enc_flops = encoder_flops(cfg, batch, args.text_length, num_patches)
        if "encoder" in args.parts:
            call_args = (variables, text, images, masks)
            compiled, compile_s = timed_compile(encode_jit, *call_args)
            median, best, window = steady_state(
                compiled, call_args, args.repeats, args.warmup, probe_or_none
            )
            rows.append(
                ("encoder", batch, compile_s, median, best, enc_flops, window or peak)
            )
            print_row(rows[-1])
        if "forward" in args.parts:
            dec_text = rng.integers(3, 32000, (batch, args.decoder_text_length)).astype(
                "int32"
            )
            dec_text[:, 0] = 0
            inputs = {
                "text_encoder_inputs": text,
                "image_encoder_inputs": images,
                "image_input_masks": masks,
                "text_decoder_inputs": dec_text,
                "text_decoder_masks": np.ones_like(dec_text),
                "image_decoder_inputs": rng.integers(
                    cfg["vocabulary_size"] - 1,
                    vocab,
                    (batch, args.decoder_image_length),
                ).astype("int32"),
            }
            call_args = (trainable, non_trainable, inputs)
            compiled, compile_s = timed_compile(forward_jit, *call_args)
            median, best, window = steady_state(
                compiled, call_args, args.repeats, args.warmup, probe_or_none
            )
            flops = enc_flops + decoder_flops(
                cfg,
                batch,
                args.decoder_text_length + args.decoder_image_length,
                args.text_length + num_patches,
                vocab,
            )
            rows.append(
                ("forward", batch, compile_s, median, best, flops, window or peak)
            )
            print_row(rows[-1])

    print()
    print("summary (steady state = median; FLOPs = analytic matmul count;")
    print(" peak = median 2048^2 matmul GFLOP/s timed right after each run)")
    header = (
        f"{'part':<8} {'batch':>5} {'compile s':>9} {'median s':>9} "
        f"{'best s':>7} {'GFLOP':>7} {'GFLOP/s':>8} {'peak':>6} "
        f"{'of peak':>8} {'ms/sample':>9}"
    )
    print(header)
    for part, batch, compile_s, median, best, flops, window in rows:
        rate = flops / median / 1e9
        print(
            f"{part:<8} {batch:>5} {compile_s:>9.2f} {median:>9.3f} "
            f"{best:>7.3f} {flops / 1e9:>7.1f} {rate:>8.1f} {window:>6.1f} "
            f"{rate / window:>8.1%} {1e3 * median / batch:>9.1f}"
        )
    print()
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    return 0


def print_row(row):
    part, batch, compile_s, median, best, flops, window = row
    rate = flops / median / 1e9
    print(
        f"{part} batch {batch}: compile {compile_s:.2f} s, steady state "
        f"{median:.3f} s median ({best:.3f} best), {flops / 1e9:.1f} GFLOP, "
        f"{rate:.1f} GFLOP/s = {rate / window:.1%} of the matmul peak "
        f"({window:.1f} GFLOP/s in the same window)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
