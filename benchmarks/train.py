"""Training-step speed and memory of a random `uio_small` on the JAX CPU backend.

Cases (each in a fresh subprocess, so peak RSS is per case):
  uio_codes  `UnifiedIO.fit` step, target image codes precomputed (the
             batch carries `image_decoder_inputs` / image-code targets);
  uio_vqgan  the same step with the VQ-GAN (`vqgan_imagenet_f16_16384`
             config, random weights, frozen) encoding the 256x256 target
             images inside the step;
  t5         keras_hub `T5Seq2SeqLM` fit step with the same transformer
             dimensions (hidden 512, 8 + 8 layers, 6 heads x 64, gated-GELU
             MLP 1024, vocabulary 33152), text only.

Batch (default 8): 64 text tokens in, 32 text tokens out; for Unified-IO
also a 384x384 image of which a random 256 of the 576 patches enter the
encoder (the paper's subset, as `Mixture(num_image_patches=256)` gives it:
`image_input_indices`) and 256 image codes out. Every case uses Adafactor (learning rate 1e-3,
global-norm clipping 1.0: `UnifiedIO.compile()`'s default).

Timing: `model.fit` on a repeated in-memory batch; each step is timed from
`on_train_batch_begin` to `on_train_batch_end` (the loss is read back, so
the step has finished); the first `--warmup` steps (compilation) are
reported apart; steady state = median of `--steps` steps. After every timed
step a jitted 2048x2048 float32 matmul is timed too: its median rate is the
peak proxy, measured under the same machine load as the steps.

Model FLOPs (analytic matmul count, 2 per multiply-add, training = 3 x the
forward): the transformer as executed (the kept encoder patch positions;
output logits over each modality's own ids: 32 text
positions x 33152 ids, 256 image positions x 16384 codes), plus, for
`uio_vqgan`, the VQ-GAN encoder's forward convolutions, attention and code
search. MFU = model FLOP/s / peak proxy.

Usage:
    KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 python benchmarks/train.py
    ... --steps 5 --cases uio_codes t5
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward import decoder_flops  # noqa: E402
from forward import encoder_flops  # noqa: E402
from forward import matmul_probe  # noqa: E402

CASES = ("uio_codes", "uio_vqgan", "t5")
LABELS = {
    "uio_codes": "UnifiedIO, codes given",
    "uio_vqgan": "UnifiedIO, VQ-GAN in step",
    "t5": "T5Seq2SeqLM (text only)",
}
# The original implementation's gradient step (no optimiser) on this
# machine, batch 8, as quoted in the issue.
ORIGINAL_STEP_SECONDS = {"uio_codes": 28.0, "uio_vqgan": 39.0}
ORIGINAL_PEAK_RSS_GB = 13.2


# --- FLOPs -------------------------------------------------------------------
def uio_forward_flops(cfg, batch, text_in, text_out, image_out, patches=None):
    """Matmul FLOPs of one teacher-forced forward, own-id logits, with
    `patches` encoder patch positions (default: all of them)."""
    if patches is None:
        patches = (cfg["image_size"] // cfg["patch_size"]) ** 2
    encoder = encoder_flops(cfg, batch, text_in, patches)
    decoder = decoder_flops(
        cfg, batch, text_out + image_out, text_in + patches, vocab=0
    )
    e = cfg["hidden_dim"]
    logits = (
        batch
        * 2
        * e
        * (text_out * cfg["vocabulary_size"] + image_out * cfg["image_vocabulary_size"])
    )
    return encoder + decoder + logits


def t5_forward_flops(cfg, batch, text_in, text_out):
    """Matmul FLOPs of one T5 forward (same formulas, no image parts)."""
    e = cfg["hidden_dim"]
    hd = cfg["num_heads"] * cfg["head_dim"]
    f = cfg["intermediate_dim"]
    lt, ld = text_in, text_out
    encoder = cfg["num_layers"] * (
        4 * 2 * lt * e * hd + 2 * 2 * lt * lt * hd + 3 * 2 * lt * e * f
    )
    decoder = cfg["num_layers"] * (
        4 * 2 * ld * e * hd
        + 2 * 2 * ld * ld * hd
        + 2 * 2 * ld * e * hd
        + 2 * 2 * lt * e * hd
        + 2 * 2 * ld * lt * hd
        + 3 * 2 * ld * e * f
    )
    logits = 2 * ld * e * cfg["vocabulary_size"]
    return batch * (encoder + decoder + logits)


def vqgan_encoder_flops(cfg, batch):
    """FLOPs of `VQGAN.encode`: convolutions, attention, code search."""
    flops = 0

    def conv(size, k, cin, cout):
        return 2 * size * size * k * k * cin * cout

    def attention(size, c):
        n = size * size
        return 4 * 2 * n * c * c + 2 * 2 * n * n * c

    def res_block(size, cin, cout):
        total = conv(size, 3, cin, cout) + conv(size, 3, cout, cout)
        return total + (conv(size, 1, cin, cout) if cin != cout else 0)

    size = cfg["image_size"]
    channels = cfg["channels"]
    flops += conv(size, 3, cfg["in_channels"], channels)
    levels = len(cfg["channel_multipliers"])
    for level, multiplier in enumerate(cfg["channel_multipliers"]):
        out = cfg["channels"] * multiplier
        for _ in range(cfg["num_res_blocks"]):
            flops += res_block(size, channels, out)
            channels = out
            if size in cfg["attention_resolutions"]:
                flops += attention(size, channels)
        if level != levels - 1:
            size //= 2
            flops += conv(size, 3, channels, channels)
    flops += 2 * res_block(size, channels, channels) + attention(size, channels)
    flops += conv(size, 3, channels, cfg["z_channels"])
    flops += conv(size, 1, cfg["z_channels"], cfg["embed_dim"])
    flops += 2 * size * size * cfg["codebook_size"] * cfg["embed_dim"]
    return batch * flops


# --- one case, in a worker process ---------------------------------------------
class StepTimer:
    """Keras callback: wall seconds of every training step, plus a matmul
    probe after each one."""

    def __init__(self, probe):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                timer.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                float(logs["loss"])  # waits for the step
                timer.seconds.append(time.perf_counter() - timer.start)
                timer.losses.append(float(logs["loss"]))
                timer.rates.append(probe())

        self.seconds, self.rates, self.losses = [], [], []
        self.callback = Callback()


def uio_case(args, with_vqgan):

    from keras_uio import VQGAN
    from keras_uio import UnifiedIO
    from keras_uio import UnifiedIOBackbone
    from keras_uio.data import select_patches
    from keras_uio.models.vqgan.vqgan_presets import vqgan_presets as vq

    backbone = UnifiedIOBackbone.from_preset(args.preset, load_weights=False)
    vqgan = None
    if with_vqgan:
        vqgan = VQGAN(**vq["vqgan_imagenet_f16_16384"]["config"])
    model = UnifiedIO(backbone, vqgan)
    cfg = backbone.get_config()
    rng = np.random.default_rng(args.seed)
    b, v = args.batch_size, cfg["vocabulary_size"]
    patches = (cfg["image_size"] // cfg["patch_size"]) ** 2
    indices, masks = select_patches(
        np.ones((b, patches), "int32"), args.visible_patches, rng
    )
    top = min(v - 1, 32000)  # SentencePiece-range ids
    targets = rng.integers(3, top, (b, args.text_out)).astype("int32")
    x = {
        "text_encoder_inputs": rng.integers(3, top, (b, args.text_in)).astype("int32"),
        "image_encoder_inputs": rng.standard_normal(
            (b, cfg["image_size"], cfg["image_size"], 3)
        ).astype("float32"),
        "image_input_masks": masks,
        "image_input_indices": indices,
        "text_decoder_inputs": np.pad(targets[:, :-1], [(0, 0), (1, 0)]),
        "text_decoder_masks": np.ones_like(targets),
    }
    y = {"text_decoder_targets": targets}
    sw = {"text_decoder_targets": np.ones(targets.shape, "float32")}
    image_out = cfg["max_decoder_image_length"]
    if with_vqgan:
        size = vqgan.image_size
        x["image_decoder_targets"] = rng.uniform(-1, 1, (b, size, size, 3)).astype(
            "float32"
        )
        x["image_target_masks"] = np.ones((b, image_out), "int32")
    else:
        codes = rng.integers(0, cfg["image_vocabulary_size"], (b, image_out))
        ids = (codes + v).astype("int32")
        x["image_decoder_inputs"] = np.concatenate(
            [np.full((b, 1), v - 1, "int32"), ids[:, :-1]], axis=1
        )
        y["image_decoder_targets"] = ids
        sw["image_decoder_targets"] = np.ones(ids.shape, "float32")
    model.compile()
    forward = uio_forward_flops(
        cfg, b, args.text_in, args.text_out, image_out, args.visible_patches
    )
    flops = 3 * forward
    extra = {}
    if with_vqgan:
        vq_flops = vqgan_encoder_flops(vqgan.get_config(), b)
        flops += vq_flops
        extra["vqgan_gflop"] = vq_flops / 1e9
    tokens = {
        "target_tokens": b * (args.text_out + image_out),
        "all_tokens": b
        * (args.text_in + args.visible_patches + args.text_out + image_out),
    }
    return model, (x, y, sw), flops, tokens, extra


def t5_case(args):
    import keras
    import keras_hub

    from keras_uio.models.unified_io.unified_io_presets import unified_io_presets

    small = unified_io_presets[args.preset]["config"]
    cfg = {
        "vocabulary_size": small["vocabulary_size"],
        "hidden_dim": small["hidden_dim"],
        "num_heads": small["num_heads"],
        "head_dim": small["head_dim"],
        "intermediate_dim": small["intermediate_dim"],
        "num_layers": small["num_encoder_layers"],
    }
    assert small["num_encoder_layers"] == small["num_decoder_layers"]
    backbone = keras_hub.models.T5Backbone(
        vocabulary_size=cfg["vocabulary_size"],
        num_layers=cfg["num_layers"],
        num_heads=cfg["num_heads"],
        hidden_dim=cfg["hidden_dim"],
        intermediate_dim=cfg["intermediate_dim"],
        key_value_dim=cfg["head_dim"],
        use_gated_activation=True,
        activation="gelu",
    )
    model = keras_hub.models.T5Seq2SeqLM(backbone=backbone, preprocessor=None)
    model.compile(
        optimizer=keras.optimizers.Adafactor(learning_rate=1e-3, global_clipnorm=1.0)
    )
    rng = np.random.default_rng(args.seed)
    b = args.batch_size
    top = min(cfg["vocabulary_size"] - 1, 32000)
    targets = rng.integers(3, top, (b, args.text_out)).astype("int32")
    x = {
        "encoder_token_ids": rng.integers(3, top, (b, args.text_in)).astype("int32"),
        "encoder_padding_mask": np.ones((b, args.text_in), "bool"),
        "decoder_token_ids": np.pad(targets[:, :-1], [(0, 0), (1, 0)]),
        "decoder_padding_mask": np.ones((b, args.text_out), "bool"),
    }
    sw = np.ones(targets.shape, "float32")
    flops = 3 * t5_forward_flops(cfg, b, args.text_in, args.text_out)
    tokens = {
        "target_tokens": b * args.text_out,
        "all_tokens": b * (args.text_in + args.text_out),
    }
    return model, (x, targets, sw), flops, tokens, {}


def worker(args):
    import jax
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    if args.worker == "t5":
        model, data, flops, tokens, extra = t5_case(args)
    else:
        model, data, flops, tokens, extra = uio_case(
            args, with_vqgan=args.worker == "uio_vqgan"
        )
    build_s = time.perf_counter() - start
    probe = matmul_probe(args.matmul_size)
    for _ in range(3):
        probe()
    timer = StepTimer(probe)
    dataset = tf.data.Dataset.from_tensors(data).repeat()
    model.fit(
        dataset,
        steps_per_epoch=args.warmup + args.steps,
        epochs=1,
        verbose=0,
        callbacks=[timer.callback],
    )
    seconds = timer.seconds[args.warmup :]
    rates = timer.rates[args.warmup :]
    step = statistics.median(seconds)
    peak = statistics.median(rates)
    result = {
        "case": args.worker,
        "batch": args.batch_size,
        "build_s": build_s,
        "first_steps_s": timer.seconds[: args.warmup],
        "step_s": step,
        "step_s_all": seconds,
        "losses": timer.losses,
        "gflop": flops / 1e9,
        "gflops": flops / step / 1e9,
        "peak_gflops": peak,
        "mfu": flops / step / 1e9 / peak,
        "examples_per_s": args.batch_size / step,
        "target_tokens_per_s": tokens["target_tokens"] / step,
        "all_tokens_per_s": tokens["all_tokens"] / step,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jax": jax.__version__,
        "keras": keras.__version__,
        **extra,
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# --- driver ----------------------------------------------------------------------
def run_case(case, args):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        case,
        "--preset",
        args.preset,
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--text-in",
        str(args.text_in),
        "--text-out",
        str(args.text_out),
        "--visible-patches",
        str(args.visible_patches),
        "--matmul-size",
        str(args.matmul_size),
        "--seed",
        str(args.seed),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result["process_s"] = time.perf_counter() - start
            return result
    sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
    raise RuntimeError(f"case {case} failed (exit {done.returncode})")


def report(results):
    print()
    print(
        "summary (steady state = median step; peak = median 2048^2 matmul "
        "GFLOP/s timed after each step; FLOPs analytic, training = 3 x forward)"
    )
    header = (
        f"{'case':<27} {'compile+1st s':>13} {'step s':>7} {'ex/s':>6} "
        f"{'tok/s (target)':>14} {'tok/s (all)':>11} {'GFLOP':>7} "
        f"{'GFLOP/s':>8} {'peak':>6} {'MFU':>6} {'RSS MiB':>8}"
    )
    print(header)
    for r in results:
        print(
            f"{LABELS[r['case']]:<27} {r['first_steps_s'][0]:>13.1f} "
            f"{r['step_s']:>7.2f} {r['examples_per_s']:>6.2f} "
            f"{r['target_tokens_per_s']:>14.0f} {r['all_tokens_per_s']:>11.0f} "
            f"{r['gflop']:>7.0f} {r['gflops']:>8.1f} {r['peak_gflops']:>6.1f} "
            f"{r['mfu']:>6.1%} {r['peak_rss_mib']:>8.0f}"
        )
    by_case = {r["case"]: r for r in results}
    t5 = by_case.get("t5")
    for case in ("uio_codes", "uio_vqgan"):
        r = by_case.get(case)
        if r is None:
            continue
        print()
        print(f"{LABELS[case]}:")
        if t5 is not None:
            print(
                f"  model FLOP/s vs T5Seq2SeqLM: {r['gflops'] / t5['gflops']:.2f}x "
                f"({r['gflops']:.1f} vs {t5['gflops']:.1f}; target >= 1); MFU "
                f"{r['mfu']:.1%} vs {t5['mfu']:.1%} (target >= 40%)"
            )
            print(
                f"  step time vs T5Seq2SeqLM: {r['step_s'] / t5['step_s']:.1f}x "
                f"for {r['gflop'] / t5['gflop']:.1f}x the FLOPs"
            )
        print(
            f"  the original's gradient step alone (issue, this machine, "
            f"unloaded): {ORIGINAL_STEP_SECONDS[case]:.0f} s, "
            f"{ORIGINAL_PEAK_RSS_GB} GB peak RSS; here {r['step_s']:.1f} s "
            f"with the optimiser, {r['peak_rss_mib'] / 1024:.2f} GiB "
            f"({'<' if r['peak_rss_mib'] < 4 * 1000**3 / 2**20 else 'NOT <'} 4 GB)"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--preset", default="uio_small")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--text-in", type=int, default=64)
    parser.add_argument("--text-out", type=int, default=32)
    parser.add_argument("--visible-patches", type=int, default=256)
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    import jax
    import keras

    print(
        f"keras {keras.__version__}, jax {jax.__version__}, backend "
        f"{keras.backend.backend()}, cpus {os.cpu_count()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    results = []
    for case in args.cases:
        r = run_case(case, args)
        results.append(r)
        print(
            f"{LABELS[case]}: first step(s) {', '.join('%.1f' % s for s in r['first_steps_s'])} s, "
            f"steps {', '.join('%.2f' % s for s in r['step_s_all'])} s -> "
            f"{r['step_s']:.2f} s median, {r['gflops']:.1f} GFLOP/s, peak "
            f"{r['peak_gflops']:.1f} GFLOP/s, MFU {r['mfu']:.1%}, peak RSS "
            f"{r['peak_rss_mib']:.0f} MiB, loss {r['losses'][0]:.3f} -> "
            f"{r['losses'][-1]:.3f}",
            flush=True,
        )
    report(results)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
