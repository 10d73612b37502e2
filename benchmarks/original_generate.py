"""Generation speed of the ORIGINAL implementation, for a same-day comparison.

`benchmarks/generate.py` compares keras_uio with fixed anchor times of the
original (allenai/unified-io-inference, JAX/Flax) measured on this machine
when the targets were set. The machine's speed drifts (keras_hub's
T5Seq2SeqLM has run at 1.0-2.2x its anchor times), so this script times the
original itself on the same workloads: the "small" config with random
float32 parameters (`PRNGKey(0)`), batch 1 and 8 text generation (32 text
tokens greedily from a 32-token prompt plus a 384x384 image, all 576
patches), the encoder alone, image generation at batch 1 (1 text step, 256
codes, then the VQ-GAN decode) and the VQ-GAN decode alone.

Generation is the original's `UnifiedIOModel.predict_batch_with_aux`,
jitted as its `ModelRunner(compiled=True)` does (`static_argnums=3..8`),
with the runner's arguments (text: `beam_search=True, num_decodes=1`, which
is greedy; image: greedy). Its decoding never stops early (all 32 + 1 steps
run, as `stop_at_eos=False` does in ours). Every timed call waits for the
machine to be idle first and counts only if other processes used less than
0.1 core meanwhile.

Setup (not part of the test dependencies):
    git clone https://github.com/allenai/unified-io-inference /path/uio-src
    python -m venv --system-site-packages venv && venv/bin/pip install flax einops
    JAX_PLATFORMS=cpu venv/bin/python benchmarks/original_generate.py \
        --src /path/uio-src --repeats 3
Measured with flax 0.12.8 and einops 0.8.2 on this project's jax 0.10.2.
Two names the original's type annotations use are gone from current jax
(`jax.numpy.DeviceArray`, `jax.pxla.ShardedDeviceArray`); they are aliased
to `jax.Array` before importing it (annotations only, nothing it computes).
"""

import argparse
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("JAX_PLATFORMS", "cpu")
warnings.simplefilter("ignore", FutureWarning)
warnings.simplefilter("ignore", DeprecationWarning)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

TEXT_TOKENS = 32
PROMPT_LEN = 32
# utils.normalize_image constants (utils.py is not imported: it needs torchvision)
BIAS = np.array([0.485, 0.456, 0.406], np.float32)
SCALE = np.array([0.229, 0.224, 0.225], np.float32)


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- RSS helpers
_PEAK = [0.0]


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def vm_hwm_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                v = int(line.split()[1]) / 1024.0
                _PEAK[0] = max(_PEAK[0], v)
                return v
    return float("nan")


_CLK = os.sysconf("SC_CLK_TCK")
_ME = os.getpid()


def foreign_cpu_s():
    """CPU seconds used so far by all other processes (approximate: exited ones drop out)."""
    tot = 0
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == _ME:
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            tot += int(parts[11]) + int(parts[12])
        except (OSError, IndexError, ValueError):
            pass
    return tot / _CLK


CLEAN_LOAD = (
    0.1  # a timed call is "clean" if other processes used < this many cores meanwhile
)
WAIT_IDLE = [
    0.0
]  # max seconds to wait for other processes to go quiet before a timed call


def wait_idle(threshold=0.15, window=1.0):
    if WAIT_IDLE[0] <= 0:
        return
    deadline = time.time() + WAIT_IDLE[0]
    quiet = 0
    while time.time() < deadline:
        a = foreign_cpu_s()
        time.sleep(window)
        if (foreign_cpu_s() - a) / window < threshold:
            quiet += 1
            if quiet >= 2:
                return
        else:
            quiet = 0
    log(
        f"    (other processes still busy after waiting {WAIT_IDLE[0]:.0f} s; timing anyway)"
    )


class Case:
    def __init__(self, name, fn, check=None):
        self.name, self.fn, self.check = name, fn, check
        self.first = None
        self.first_rss = None
        self.times = []
        self.rss = 0.0
        self.foreign = []  # other processes' CPU use (cores) during each timed call

    def warm(self):
        wait_idle()
        reset_hwm()
        f0 = foreign_cpu_s()
        t = time.perf_counter()
        out = jax.block_until_ready(self.fn())
        self.first = time.perf_counter() - t
        self.first_foreign = (foreign_cpu_s() - f0) / self.first
        self.first_rss = vm_hwm_mib()
        if self.check is not None:
            self.check(out)
        log(
            f"  first call {self.name}: {self.first:.2f} s (peak RSS {self.first_rss:.0f} MiB, "
            f"other-proc load {self.first_foreign:.2f} cores)"
        )

    def time_once(self):
        wait_idle()
        reset_hwm()
        f0 = foreign_cpu_s()
        t = time.perf_counter()
        jax.block_until_ready(self.fn())
        dt = time.perf_counter() - t
        self.times.append(dt)
        self.foreign.append((foreign_cpu_s() - f0) / dt)
        self.rss = max(self.rss, vm_hwm_mib())

    def clean_times(self):
        return [t for t, f in zip(self.times, self.foreign) if f < CLEAN_LOAD]

    def used(self):
        """Clean samples if any, else all (flagged in the table)."""
        return self.clean_times() or self.times

    @property
    def med(self):
        return statistics.median(self.used())

    @property
    def best(self):
        return min(self.used())


def make_batch(bs, seed):
    rng = np.random.RandomState(seed)
    img = rng.rand(bs, 384, 384, 3).astype(np.float32)
    img = (img - BIAS.reshape(1, 1, 1, 3)) / SCALE.reshape(1, 1, 1, 3)
    return {
        "image_encoder_inputs": img.astype(np.float32),
        "image_input_masks": np.ones((bs, 576), np.int32),  # 24x24 patches, all on
        "text_encoder_inputs": rng.randint(2, 32100, (bs, PROMPT_LEN)).astype(np.int32),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--skip-image", action="store_true")
    ap.add_argument(
        "--skip-image-sampled",
        action="store_true",
        help="skip the runner-default (top-p 0.9 sampling) image case",
    )
    ap.add_argument(
        "--skip-eager",
        action="store_true",
        help="skip the un-jitted (ModelRunner default compiled=False) text case",
    )
    ap.add_argument("--eager-repeats", type=int, default=1)
    ap.add_argument(
        "--max-extra",
        type=int,
        default=6,
        help="extra timed calls per case (after --repeats rounds) while it has fewer than "
        "--repeats clean samples",
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=600.0,
        help="before each timed call wait (at most this many s) until other processes use "
        "<0.15 core for 2 s; 0 disables",
    )
    ap.add_argument(
        "--json-out",
        metavar="FILE",
        help="write the figures generate.py --original reads",
    )
    ap.add_argument(
        "--src",
        required=True,
        help="a checkout of allenai/unified-io-inference (its `uio` package)",
    )
    args = ap.parse_args()
    WAIT_IDLE[0] = args.wait_idle

    import types

    import flax

    jnp.DeviceArray = jax.Array
    jax.pxla = types.SimpleNamespace(ShardedDeviceArray=jax.Array)
    sys.path.insert(0, os.path.abspath(args.src))
    from importlib.metadata import version

    from uio import network
    from uio.configs import CONFIGS
    from uio.configs import VAE_CONFIG
    from uio.model import UnifiedIOModel

    log(
        f"jax {jax.__version__}, jaxlib {version('jaxlib')}, "
        f"flax {flax.__version__}, numpy {np.__version__}, devices {jax.devices()}"
    )
    log(f"cpu count {os.cpu_count()}, load average {os.getloadavg()}")

    cfg, vcfg = CONFIGS["small"], VAE_CONFIG
    log(
        f"config dtype as shipped: UnifiedIOConfig.dtype={cfg.dtype!r}, VAEConfig.dtype={vcfg.dtype!r} "
        f"(float32 already; nothing changed)"
    )
    log(f"UnifiedIOConfig(small): {cfg}")
    log(f"VAEConfig: {vcfg}")

    module = network.Transformer(config=cfg, vae_config=vcfg)
    # As in runner.ModelRunner.__init__
    model = UnifiedIOModel(module, text_decoder_length=32, image_decoder_length=1)

    # ---- random init (fixed key), jitted for speed; shapes as the network expects
    t = time.perf_counter()
    init_fn = jax.jit(
        lambda rng: model.get_initial_variables(
            rng,
            input_shapes={
                "text_encoder_inputs": (1, PROMPT_LEN),
                "image_encoder_inputs": (1, 384, 384, 3),
                "text_decoder_inputs": (1, TEXT_TOKENS),
                "image_decoder_targets": (1, 256, 256, 3),
            },
            input_types={
                "text_encoder_inputs": jnp.int32,
                "text_decoder_inputs": jnp.int32,
            },
        )
    )
    variables = jax.block_until_ready(init_fn(jax.random.PRNGKey(0)))
    params = variables["params"]
    log(
        f"init: {time.perf_counter() - t:.1f} s (peak RSS so far {vm_hwm_mib():.0f} MiB); variable collections: {list(variables.keys())}"
    )
    leaves = jax.tree_util.tree_leaves(params)
    dtypes = sorted({str(x.dtype) for x in leaves})
    n_all = sum(int(np.prod(x.shape)) for x in leaves)
    n_vae = sum(
        int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params["discrete_vae"])
    )
    n_vae_enc = sum(
        int(np.prod(x.shape))
        for x in jax.tree_util.tree_leaves(params["discrete_vae"]["encoder"])
    )
    log(
        f"params: total {n_all:,} ({n_all / 1e6:.1f} M), dtypes {dtypes}; "
        f"transformer {n_all - n_vae:,}; discrete_vae {n_vae:,} "
        f"(of which VQ-GAN encoder {n_vae_enc:,}, rest {n_vae - n_vae_enc:,})"
    )
    log(f"top-level param groups: {list(params.keys())}")

    # ---- the runner's compiled path
    batch_fn = jax.jit(model.predict_batch_with_aux, static_argnums=list(range(3, 9)))

    def text_gen(batch):
        return batch_fn(
            params=params,
            batch=batch,
            text_length=TEXT_TOKENS,
            image_length=1,
            beam_search=True,
            num_decodes=1,
            return_all_decodes=True,
        )

    def image_gen(batch, beam_search):
        return batch_fn(
            params=params,
            batch=batch,
            text_length=1,
            image_length=256,
            beam_search=beam_search,
            num_decodes=1,
            return_all_decodes=True,
        )

    # ---- encoder alone, exactly the encode call inside predict_batch_with_aux
    @jax.jit
    def encode(params, batch):
        text = batch["text_encoder_inputs"]
        return module.apply(
            {"params": params},
            text,
            batch["image_encoder_inputs"],
            text > 0,
            batch["image_input_masks"],
            image_encoder_pos_ids=None,
            text_encoder_pos_ids=None,
            enable_dropout=False,
            method=module.encode,
        )

    # ---- VQ-GAN decode alone (the call predict_batch_with_aux makes)
    @jax.jit
    def vq_decode(params, codes):
        return module.apply({"params": params}, method=module.decode_code, code_b=codes)

    def check_text(bs):
        def f(out):
            tt = np.asarray(out["text_tokens"])
            assert tt.shape == (bs, 1, TEXT_TOKENS + 1), tt.shape
            txt = tt[:, 0, :TEXT_TOKENS]
            assert (txt < cfg.vocab_size).all(), "text token outside text vocab"
            assert (tt[:, 0, TEXT_TOKENS] >= cfg.vocab_size).all()
            log(
                f"    text_tokens shape {tt.shape}: {TEXT_TOKENS} text tokens per row + 1 image-stage token "
                f"(image_length=1); row0[:10]={txt[0, :10].tolist()}"
            )

        return f

    def check_image(out):
        img = np.asarray(out["image"])
        codes = np.asarray(out["image_tokens"])
        tt = np.asarray(out["text_tokens"])
        assert img.shape == (1, 1, 256, 256, 3), img.shape
        assert codes.shape == (1, 1, 256), codes.shape
        assert ((codes >= 0) & (codes < cfg.image_vocab_size)).all()
        assert np.isfinite(img).all()
        log(
            f"    image {img.shape} range [{img.min():.3f},{img.max():.3f}], image_tokens {codes.shape} "
            f"(codes[:6]={codes[0, 0, :6].tolist()}), text_tokens {tt.shape}"
        )

    def check_enc(bs):
        def f(out):
            (enc, pos), masks = out
            assert enc.shape == (bs, PROMPT_LEN + 576, cfg.emb_dim), enc.shape
            log(f"    encoded {enc.shape}, masks {masks.shape}")

        return f

    def check_vq(out):
        assert out.shape == (1, 256, 256, 3), out.shape
        log(f"    vqgan out {out.shape}")

    cases = {}
    batches = {bs: make_batch(bs, seed=bs) for bs in args.batch_sizes}
    for bs in args.batch_sizes:
        b = batches[bs]
        cases[f"encoder_b{bs}"] = Case(
            f"encoder_b{bs}", lambda b=b: encode(params, b), check_enc(bs)
        )
        cases[f"text_b{bs}"] = Case(
            f"text_b{bs}", lambda b=b: text_gen(b), check_text(bs)
        )
    if not args.skip_image:
        b1 = batches.get(1) or make_batch(1, seed=1)
        if "encoder_b1" not in cases:
            cases["encoder_b1"] = Case(
                "encoder_b1", lambda: encode(params, b1), check_enc(1)
            )
        codes = jnp.asarray(
            np.random.RandomState(7).randint(0, cfg.image_vocab_size, (1, 256)),
            jnp.int32,
        )
        cases["vqgan_b1"] = Case("vqgan_b1", lambda: vq_decode(params, codes), check_vq)
        cases["image_b1_greedy"] = Case(
            "image_b1_greedy", lambda: image_gen(b1, True), check_image
        )
        if not args.skip_image_sampled:
            cases["image_b1_topp"] = Case(
                "image_b1_topp", lambda: image_gen(b1, None), check_image
            )

    log("\nwarm-up (first call = trace + compile + run):")
    for c in cases.values():
        c.warm()
    log(f"\ntiming {args.repeats} round(s), round-robin:")
    for r in range(args.repeats):
        t = time.perf_counter()
        for c in cases.values():
            c.time_once()
        log(
            f"  round {r + 1}: {time.perf_counter() - t:.1f} s, load average {os.getloadavg()[0]:.2f}"
        )

    for c in cases.values():
        extra = 0
        while len(c.clean_times()) < args.repeats and extra < args.max_extra:
            c.time_once()
            extra += 1
            log(
                f"  extra call {c.name}: {c.times[-1]:.3f} s, other-proc load {c.foreign[-1]:.2f}"
            )

    eager = None
    if not args.skip_eager and 1 in batches:
        log(
            "\nun-jitted ModelRunner default (compiled=False): predict_batch_with_aux called directly, text b1"
        )
        b = batches[1]
        eager = Case(
            "text_b1_unjitted",
            lambda: model.predict_batch_with_aux(
                params=params,
                batch=b,
                text_length=TEXT_TOKENS,
                image_length=1,
                beam_search=True,
                num_decodes=1,
                return_all_decodes=True,
            ),
            check_text(1),
        )
        eager.warm()
        n = 0
        while (
            n < args.eager_repeats + args.max_extra
            and len(eager.clean_times()) < args.eager_repeats
        ):
            n += 1
            eager.time_once()
            log(f"  repeat: {eager.times[-1]:.2f} s")

    # ---------------------------------------------------------------- table
    log("\n" + "=" * 100)
    log(
        "ORIGINAL unified-io-inference, 'small', random float32 params, CPU "
        f"({os.cpu_count()} cores), jitted as ModelRunner(compiled=True)"
    )
    log(
        f"{'case':<20}{'first call s':>13}{'median s':>10}{'min s':>9}{'compile~ s':>11}"
        f"{'peak RSS first/timed MiB':>27}{'clean/all':>11}"
    )
    allc = list(cases.values()) + ([eager] if eager else [])
    for c in allc:
        log(
            f"{c.name:<20}{c.first:>13.2f}{c.med:>10.3f}{c.best:>9.3f}{c.first - c.med:>11.2f}"
            f"{c.first_rss:>14.0f} / {c.rss:<10.0f}{len(c.clean_times()):>5}/{len(c.times)}"
            + ("" if c.clean_times() else "  CONTAMINATED")
        )
    log(
        "(median/min over the clean timed calls, i.e. other processes used < 0.1 core meanwhile;\n"
        " compile~ = first call - median. All calls, 'seconds(other-proc cores)':)"
    )
    for c in allc:
        log(
            f"  {c.name:<18} "
            + "  ".join(f"{t:.3f}({f:.2f})" for t, f in zip(c.times, c.foreign))
        )
    log("-" * 100)
    for bs in args.batch_sizes:
        tot, enc = cases[f"text_b{bs}"].med, cases[f"encoder_b{bs}"].med
        log(
            f"text b{bs}: total {tot:.3f} s, encoder {enc:.3f} s, "
            f"{bs * TEXT_TOKENS / tot:.1f} tokens/s, ms/step (total-encoder)/32 = {(tot - enc) / 32 * 1e3:.1f} "
            f"[decoder actually runs 33 steps (32 text + 1 image-stage): /33 = {(tot - enc) / 33 * 1e3:.1f}]"
        )
    if not args.skip_image:
        enc, vq = cases["encoder_b1"].med, cases["vqgan_b1"].med
        for k in ("image_b1_greedy", "image_b1_topp"):
            if k in cases:
                tot = cases[k].med
                log(
                    f"{k}: total {tot:.3f} s, encoder {enc:.3f} s, vqgan {vq:.3f} s, "
                    f"ms/step (total-encoder-vqgan)/257 = {(tot - enc - vq) / 257 * 1e3:.1f} "
                    f"(1 text step + 256 image steps)"
                )
    if eager:
        tot, enc = eager.med, cases["encoder_b1"].med
        log(
            f"text b1 un-jitted: total {tot:.3f} s (min {eager.best:.3f}); (total - jitted encoder)/32 = "
            f"{(tot - enc) / 32 * 1e3:.1f} ms"
        )
    log(
        f"process peak RSS (max VmHWM observed over all cases, incl. init): {max(_PEAK[0], vm_hwm_mib()):.0f} MiB"
    )
    if args.json_out:
        import json

        figures = {}
        for bs in (1, 8):
            if f"text_b{bs}" in cases:
                tot, enc = cases[f"text_b{bs}"].med, cases[f"encoder_b{bs}"].med
                figures[f"text_b{bs}_seconds"] = tot
                figures[f"text_b{bs}_encoder"] = enc
                figures[f"text_b{bs}_step_ms"] = (tot - enc) / TEXT_TOKENS * 1e3
        if "image_b1_greedy" in cases:
            tot, vq = cases["image_b1_greedy"].med, cases["vqgan_b1"].med
            figures["image_b1_seconds"] = tot
            figures["image_b1_step_ms"] = (
                (tot - cases["encoder_b1"].med - vq) / 257 * 1e3
            )
            figures["vqgan_decode_seconds"] = vq
        with open(args.json_out, "w") as f:
            json.dump(figures, f, indent=1)
        log(f"figures written to {args.json_out}")


if __name__ == "__main__":
    main()
