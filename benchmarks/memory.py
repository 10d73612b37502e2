"""Peak memory of converting and loading each Unified-IO size.

For every selected size this script
  1. writes a synthetic checkpoint in the original format (flax msgpack: a map
     of nested maps whose leaves are msgpack ExtType 1 holding
     `[shape, dtype_name, bytes]`), with every parameter name and shape of the
     released `{small,base,large,xl}_1000k.bin` (transformer names and shapes
     derived analytically from the preset config, VQ-GAN ones from the
     converter's `vqgan_variable_map`); tensors are streamed to disk from a
     reused random block, so the writer needs ~100 MB whatever the size;
  2. runs `keras-uio convert FILE OUT [--dtype D]` in a fresh subprocess;
  3. runs `UnifiedIOBackbone.from_preset(OUT)` in a fresh subprocess;
and reports the wall time and peak RSS (`ru_maxrss` from `wait4`, so the
child's own peak) of each step, next to the RSS of a bare `import keras_uio`
and the size of the weights. Files are deleted afterwards unless `--keep`.

Usage:
    KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 python benchmarks/memory.py
    ... --sizes small base large xl --xl-dtype bfloat16 --workdir /work/tmp
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SIZES = ("small", "base", "large", "xl")
_BLOCK_ELEMENTS = 1 << 24  # 64 MB of float32 reused for every tensor.


# --- transformer layout ------------------------------------------------------
def transformer_shapes(config):
    """`{path_tuple: shape}` of an original checkpoint's transformer part."""
    e = config["hidden_dim"]
    hd = config["num_heads"] * config["head_dim"]
    h = config["num_heads"]
    f = config["intermediate_dim"]
    p = config["patch_size"]
    grid = config["image_size"] // p
    vocab = config["vocabulary_size"] + config["image_vocabulary_size"]
    segments = config["num_segments"]
    shapes = {("token_embedder", "embedding"): (vocab, e)}

    def attention(prefix):
        return {
            prefix + ("query", "kernel"): (e, hd),
            prefix + ("key", "kernel"): (e, hd),
            prefix + ("value", "kernel"): (e, hd),
            prefix + ("out", "kernel"): (hd, e),
        }

    def mlp(prefix):
        return {
            prefix + ("wi_0", "kernel"): (e, f),
            prefix + ("wi_1", "kernel"): (e, f),
            prefix + ("wo", "kernel"): (f, e),
        }

    def relpos(stack):
        return {
            (stack, "relpos_bias", "rel_embedding"): (h, 32),
            (stack, "relpos_bias", "image_rel_embedding"): (h, 256),
            (stack, "pe_pre_ln", "scale"): (e,),
        }

    enc_positions = config["max_encoder_text_length"] + grid * grid
    shapes.update(
        {
            ("encoder", "encoder_norm", "scale"): (e,),
            ("encoder", "image_projection", "kernel"): (p * p * 3, e),
            ("encoder", "img_emb_pre_ln", "scale"): (e,),
            ("encoder", "txt_emb_pre_ln", "scale"): (e,),
            ("encoder", "position_embedding", "embedding"): (enc_positions, e),
            ("encoder", "position_q_linear", "kernel"): (e, hd),
            ("encoder", "position_k_linear", "kernel"): (e, hd),
            ("encoder", "segment_embedding", "embedding"): (segments, e),
        }
    )
    shapes.update(relpos("encoder"))
    for i in range(config["num_encoder_layers"]):
        prefix = ("encoder", f"layers_{i}")
        shapes.update(attention(prefix + ("attention",)))
        shapes.update(mlp(prefix + ("mlp",)))
        shapes[prefix + ("pre_attention_layer_norm", "scale")] = (e,)
        shapes[prefix + ("pre_mlp_layer_norm", "scale")] = (e,)
    dec_positions = (
        config["max_decoder_text_length"] + config["max_decoder_image_length"]
    )
    shapes.update(
        {
            ("decoder", "cross_position_q_linear", "kernel"): (e, hd),
            ("decoder", "cross_position_k_linear", "kernel"): (e, hd),
            ("decoder", "self_position_q_linear", "kernel"): (e, hd),
            ("decoder", "self_position_k_linear", "kernel"): (e, hd),
            ("decoder", "decoder_norm", "scale"): (e,),
            ("decoder", "pre_ln", "scale"): (e,),
            ("decoder", "position_embedding", "embedding"): (dec_positions, e),
            ("decoder", "segments_embedding", "embedding"): (segments, e),
        }
    )
    shapes.update(relpos("decoder"))
    for i in range(config["num_decoder_layers"]):
        prefix = ("decoder", f"layers_{i}")
        shapes.update(attention(prefix + ("self_attention",)))
        shapes.update(attention(prefix + ("encoder_decoder_attention",)))
        shapes.update(mlp(prefix + ("mlp",)))
        for norm in (
            "pre_self_attention_layer_norm",
            "pre_cross_attention_layer_norm",
            "pre_mlp_layer_norm",
        ):
            shapes[prefix + (norm, "scale")] = (e,)
    return shapes


def vqgan_shapes(vqgan_preset="vqgan_imagenet_f16_16384"):
    """`{path_tuple: shape}` of the checkpoint's `discrete_vae` part."""
    from keras_uio.convert.vqgan_weights import VAE_SCOPE
    from keras_uio.convert.vqgan_weights import vqgan_variable_map
    from keras_uio.models.vqgan.vqgan import VQGAN
    from keras_uio.models.vqgan.vqgan_presets import vqgan_presets

    vqgan = VQGAN(**vqgan_presets[vqgan_preset]["config"])
    return {
        (VAE_SCOPE,) + tuple(path): tuple(variable.shape)
        for path, variable in vqgan_variable_map(vqgan).items()
    }


def self_check():
    """The analytic layout must equal the reference tiny checkpoint's."""
    from keras_uio.convert.checkpoint import read_checkpoint_shapes
    from keras_uio.models.unified_io.unified_io_presets import unified_io_presets

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(
        here, "..", "tests", "data", "reference", "uio_tiny", "checkpoint.bin"
    )
    if not os.path.isfile(path):
        print("(self-check skipped: no reference tiny checkpoint)")
        return
    expected = {
        p: tuple(s)
        for p, s in read_checkpoint_shapes(path).items()
        if p[0] != "discrete_vae"
    }
    got = transformer_shapes(unified_io_presets["uio_tiny"]["config"])
    if got != expected:
        missing = sorted(set(expected) - set(got))[:3]
        extra = sorted(set(got) - set(expected))[:3]
        wrong = [p for p in expected if p in got and got[p] != expected[p]][:3]
        raise SystemExit(
            f"layout self-check failed: missing {missing}, extra {extra}, "
            f"wrong shapes {wrong}"
        )
    print("layout self-check: the analytic names/shapes match uio_tiny's checkpoint")


# --- msgpack writer ----------------------------------------------------------
def _map_header(n):
    if n < 16:
        return bytes([0x80 | n])
    if n < 1 << 16:
        return b"\xde" + n.to_bytes(2, "big")
    return b"\xdf" + n.to_bytes(4, "big")


def _array_header(n):
    if n < 16:
        return bytes([0x90 | n])
    return b"\xdc" + n.to_bytes(2, "big")


def _str(s):
    data = s.encode("utf-8")
    if len(data) < 32:
        return bytes([0xA0 | len(data)]) + data
    if len(data) < 256:
        return b"\xd9" + bytes([len(data)]) + data
    return b"\xda" + len(data).to_bytes(2, "big") + data


def _uint(n):
    if n < 128:
        return bytes([n])
    if n < 1 << 8:
        return b"\xcc" + bytes([n])
    if n < 1 << 16:
        return b"\xcd" + n.to_bytes(2, "big")
    return b"\xce" + n.to_bytes(4, "big")


def _bin_header(n):
    if n < 1 << 8:
        return b"\xc4" + bytes([n])
    if n < 1 << 16:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


def _write_leaf(out, shape, block):
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * 4
    record = (
        _array_header(3)
        + _array_header(len(shape))
        + b"".join(_uint(d) for d in shape)
        + _str("float32")
        + _bin_header(nbytes)
    )
    ext_len = len(record) + nbytes
    out.write(b"\xc9" + ext_len.to_bytes(4, "big") + b"\x01" + record)
    done = 0
    while done < count:
        n = min(count - done, block.size)
        out.write(block[:n].data)
        done += n
    return nbytes


def write_checkpoint(path, shapes, seed=0):
    """Streams a synthetic checkpoint; returns its parameter count."""
    tree = {}
    for p, shape in shapes.items():
        node = tree
        for key in p[:-1]:
            node = node.setdefault(key, {})
        node[p[-1]] = shape
    rng = np.random.default_rng(seed)
    block = (rng.standard_normal(_BLOCK_ELEMENTS, dtype=np.float32) * 0.02).astype(
        np.float32
    )

    def write(out, node):
        out.write(_map_header(len(node)))
        for key in sorted(node):
            out.write(_str(key))
            value = node[key]
            if isinstance(value, dict):
                write(out, value)
            else:
                _write_leaf(out, value, block)

    with open(path, "wb", buffering=1 << 22) as out:
        write(out, tree)
    return sum(int(np.prod(s, dtype=np.int64)) for s in shapes.values())


# --- measurement -------------------------------------------------------------
def run_measured(cmd, env, log_path):
    """Runs `cmd`; returns (wall seconds, peak RSS MiB of that child, rc)."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    return wall, usage.ru_maxrss / 1024.0, rc


def tail(path, n=15):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


LOAD_SNIPPET = """
import sys, time
start = time.perf_counter()
import keras_uio
backbone = keras_uio.UnifiedIOBackbone.from_preset(sys.argv[1])
print(f"loaded {backbone.count_params():,} parameters, dtype "
      f"{backbone.dtype_policy.name}, in {time.perf_counter() - start:.1f} s")
"""

IMPORT_SNIPPET = (
    "import keras_uio, keras_hub, jax; jax.numpy.zeros(1).block_until_ready()"
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=["small", "base"])
    parser.add_argument(
        "--dtype",
        default=None,
        help="--dtype passed to `keras-uio convert` (default: float32) for "
        "every size but XL",
    )
    parser.add_argument(
        "--xl-dtype", default="bfloat16", help="--dtype for XL (default bfloat16)"
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="where to write checkpoints and presets (needs ~2.3x the "
        "checkpoint size free; default: a temporary folder under /work/tmp "
        "or the system temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the files")
    args = parser.parse_args(argv)

    from keras_uio.models.unified_io.unified_io_presets import unified_io_presets

    self_check()
    base = args.workdir
    if base is None:
        base = "/work/tmp" if os.path.isdir("/work") else None
        if base:
            os.makedirs(base, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="uio_memory_", dir=base)
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "jax"))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cli = shutil.which("keras-uio")
    convert_cmd = [cli] if cli else [sys.executable, "-m", "keras_uio.cli"]
    print(
        f"workdir {workdir}; {os.cpu_count()} cpus; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )

    wall, rss, _ = run_measured(
        [sys.executable, "-c", IMPORT_SNIPPET], env, os.path.join(workdir, "import.log")
    )
    print(
        f"baseline: `import keras_uio` (+ jax, keras_hub) peak RSS {rss:.0f} MiB, {wall:.1f} s"
    )

    print("writing the VQ-GAN layout ...", flush=True)
    vq_shapes = vqgan_shapes()
    rows = []
    try:
        for size in args.sizes:
            config = unified_io_presets[f"uio_{size}"]["config"]
            shapes = transformer_shapes(config)
            shapes.update(vq_shapes)
            ckpt = os.path.join(workdir, f"{size}_1000k.bin")
            out = os.path.join(workdir, f"uio_{size}")
            dtype = args.xl_dtype if size == "xl" else args.dtype
            start = time.perf_counter()
            params = write_checkpoint(ckpt, shapes)
            gb = os.path.getsize(ckpt) / 1e9
            print(
                f"[{size}] wrote {ckpt} ({params / 1e6:.2f}M parameters, "
                f"{gb:.2f} GB) in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
            cmd = convert_cmd + ["convert", ckpt, out]
            if dtype:
                cmd += ["--dtype", dtype]
            log = os.path.join(workdir, f"{size}_convert.log")
            c_wall, c_rss, rc = run_measured(cmd, env, log)
            if rc != 0:
                print(f"[{size}] convert FAILED (rc {rc}):\n{tail(log)}")
                rows.append((size, dtype, params, gb, c_wall, c_rss, None, None, None))
                continue
            os.remove(ckpt)  # free the disk before loading.
            preset_gb = dir_size(out) / 1e9
            print(
                f"[{size}] convert --dtype {dtype or 'float32'}: {c_wall:.1f} s, "
                f"peak RSS {c_rss:.0f} MiB; preset {preset_gb:.2f} GB",
                flush=True,
            )
            log = os.path.join(workdir, f"{size}_load.log")
            l_wall, l_rss, rc = run_measured(
                [sys.executable, "-c", LOAD_SNIPPET, out], env, log
            )
            if rc != 0:
                print(f"[{size}] load FAILED (rc {rc}):\n{tail(log)}")
                l_wall = l_rss = None
            else:
                print(
                    f"[{size}] from_preset: {l_wall:.1f} s, peak RSS {l_rss:.0f} "
                    f"MiB ({tail(log, 1).strip()})",
                    flush=True,
                )
            rows.append(
                (size, dtype, params, gb, c_wall, c_rss, preset_gb, l_wall, l_rss)
            )
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print("summary (peak RSS = max resident set of the fresh subprocess)")
    print(
        f"{'size':<6} {'dtype':<9} {'params':>9} {'ckpt GB':>8} "
        f"{'convert s':>9} {'convert RSS':>12} {'preset GB':>9} "
        f"{'load s':>7} {'load RSS':>10}"
    )
    for size, dtype, params, gb, c_wall, c_rss, p_gb, l_wall, l_rss in rows:
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        print(
            f"{size:<6} {dtype or 'float32':<9} {params / 1e6:>8.1f}M {gb:>8.2f} "
            f"{fmt(c_wall, '.1f'):>9} {fmt(c_rss, '.0f'):>8} MiB "
            f"{fmt(p_gb, '.2f'):>9} {fmt(l_wall, '.1f'):>7} "
            f"{fmt(l_rss, '.0f'):>6} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
