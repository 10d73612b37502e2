"""Roofline helpers: this machine's memory bandwidth and matmul rate, and
the bytes and FLOPs of Unified-IO's parts counted from the model.

Two probes, each a jitted JAX function timed after a first (compiling) call:

- `bandwidth_probe`: the sum of a 256 MiB float32 array. It reads every
  byte once and writes one number, so bytes / time is the rate at which
  this machine streams memory into the cores (a decode step streams its
  weights the same way).
- `matmul_probe`: a 2048x2048 float32 matmul, `2 * n**3` FLOPs.

Counts (all float32 unless the model's variables say otherwise):

- `decode_step_bytes`: bytes one generate step reads, from the backbone's
  variables: every decoder-layer weight except the cross-attention key and
  value kernels (they are applied once to the encoder output, before the
  loop), the final norm, the phase's output table (`vocabulary_size` text
  rows, or `image_vocabulary_size` image rows, x `hidden_dim`), and the
  caches the step attends over: cross-attention keys and values
  (`batch x encoder_length x 2 x heads*head_dim` per layer) and the
  self-attention cache (`batch x total_length x 2 x heads*head_dim` per
  layer; the compiled loop reads all of it, masked). Activations are
  ignored (a few KB per row).
- `encoder_flops`: `forward.encoder_flops` (matmuls only, 2 FLOPs per
  multiply-add).
- `vqgan_decode_flops` / `vqgan_encode_flops`: convolutions and attention
  products of the VQ-GAN, from its config: a `k x k` convolution from
  `c_in` to `c_out` channels on an `h x w` output costs
  `2 * h * w * k * k * c_in * c_out`; an attention block on `n = h * w`
  positions of `c` channels costs `4 * 2 * n * c * c` (q, k, v, output
  1x1 convolutions) plus `2 * 2 * n * n * c` (scores and weighted sum);
  the encoder's nearest-code search is a `[n, z] x [z, codebook]`
  product. Group norms, activations, resampling and lookups are left out
  (well under 1% here).

Run alone it prints the two probes:
    KERAS_BACKEND=jax python benchmarks/roofline.py
"""

import os
import statistics
import sys
import time

import numpy as np
from forward import encoder_flops  # noqa: F401  (re-exported for callers)


# --- probes --------------------------------------------------------------------
def _timed(fn, args, repeats):
    import jax

    jax.block_until_ready(fn(*args))  # compile + warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return times


def bandwidth_probe(mib=256, repeats=5):
    """Memory read rate in GB/s (median of `repeats`): a jitted sum."""
    import jax
    import jax.numpy as jnp

    n = mib * 2**20 // 4
    x = jnp.asarray(np.random.default_rng(0).standard_normal(n, np.float32))
    times = _timed(jax.jit(jnp.sum), (x,), repeats)
    return n * 4 / statistics.median(times) / 1e9


def matmul_probe(size=2048, repeats=5):
    """float32 matmul rate in GFLOP/s (median of `repeats`)."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((size, size), np.float32))
    b = jnp.asarray(rng.standard_normal((size, size), np.float32))
    times = _timed(jax.jit(jnp.matmul), (a, b), repeats)
    return 2.0 * size**3 / statistics.median(times) / 1e9


# --- bytes of a decode step ------------------------------------------------------
def _nbytes(variable):
    return int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize


def decode_step_bytes(backbone, batch, encoder_length, total_length, image_phase):
    """`(total, parts)`: bytes one decode step reads (see the module doc)."""
    cross_kv = ("/cross_attention/key/", "/cross_attention/value/")
    weights = sum(
        _nbytes(v)
        for v in backbone.weights
        if v.path.startswith(("decoder_layer", "decoder_norm"))
        and not any(part in v.path for part in cross_kv)
    )
    embeddings = [v for v in backbone.weights if v.path.startswith("token_embedding")]
    itemsize = np.dtype(embeddings[0].dtype).itemsize
    rows = backbone.image_vocabulary_size if image_phase else backbone.vocabulary_size
    table = rows * backbone.hidden_dim * itemsize
    width = 2 * backbone.num_heads * backbone.head_dim * itemsize
    layers = backbone.num_decoder_layers
    cross = batch * encoder_length * width * layers
    cache = batch * total_length * width * layers
    parts = {"weights": weights, "table": table, "cross_kv": cross, "self_kv": cache}
    return sum(parts.values()), parts


# --- FLOPs of the VQ-GAN ------------------------------------------------------------
def _conv(size, k, c_in, c_out):
    return 2 * size * size * k * k * c_in * c_out


def _res_block(size, c_in, c_out):
    flops = _conv(size, 3, c_in, c_out) + _conv(size, 3, c_out, c_out)
    if c_in != c_out:
        flops += _conv(size, 1, c_in, c_out)
    return flops


def _attention(size, c):
    n = size * size
    return 4 * 2 * n * c * c + 2 * 2 * n * n * c


def _vqgan_parts(vqgan):
    c = vqgan.get_config()
    widths = [c["channels"] * m for m in c["channel_multipliers"]]
    sizes = [c["image_size"] // 2**i for i in range(len(widths))]
    grid = sizes[-1]
    middle = 2 * _res_block(grid, widths[-1], widths[-1])
    middle += _attention(grid, widths[-1])
    return c, widths, sizes, grid, middle


def vqgan_decode_flops(vqgan, batch):
    """Convolution and attention FLOPs of `vqgan.decode` on `batch` images."""
    c, widths, sizes, grid, middle = _vqgan_parts(vqgan)
    z = c["z_channels"]
    flops = _conv(grid, 1, z, z)  # post_quant_conv
    flops += _conv(grid, 3, z, widths[-1]) + middle
    width = widths[-1]
    for level in reversed(range(len(widths))):
        for _ in range(c["num_res_blocks"] + 1):
            flops += _res_block(sizes[level], width, widths[level])
            width = widths[level]
            if sizes[level] in c["attention_resolutions"]:
                flops += _attention(sizes[level], width)
        if level:
            # upsample conv, computed as four 2x2 convolutions at the input
            # resolution (vqgan_upsample.py): 16/36 of a 3x3 at the output's
            flops += 4 * _conv(sizes[level], 2, width, width)
    flops += _conv(sizes[0], 3, width, c["out_channels"])
    return batch * flops


def vqgan_encode_flops(vqgan, batch):
    """Convolution, attention and code-search FLOPs of `vqgan.encode`."""
    c, widths, sizes, grid, middle = _vqgan_parts(vqgan)
    z = c["z_channels"]
    flops = _conv(sizes[0], 3, c["in_channels"], c["channels"])
    width = c["channels"]
    for level, out in enumerate(widths):
        for _ in range(c["num_res_blocks"]):
            flops += _res_block(sizes[level], width, out)
            width = out
            if sizes[level] in c["attention_resolutions"]:
                flops += _attention(sizes[level], width)
        if level != len(widths) - 1:
            flops += _conv(sizes[level + 1], 3, width, width)  # stride 2
    flops += middle + _conv(grid, 3, width, z)
    flops += _conv(grid, 1, z, z)  # quant_conv
    flops += 2 * grid * grid * z * c["codebook_size"]  # nearest-code search
    return batch * flops


def main():
    import jax

    print(f"jax {jax.__version__}, devices {jax.devices()}, cpus {os.cpu_count()}")
    print(f"memory read (jitted sum of 256 MiB): {bandwidth_probe():.1f} GB/s")
    print(f"matmul (2048^2 float32): {matmul_probe():.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
