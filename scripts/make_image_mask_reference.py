"""Reference numbers of the ORIGINAL decoder on a padded image target.

Writes `tests/data/reference/uio_tiny/image_mask.npz`, the oracle of
`tests/models/unified_io/test_image_target_mask.py`: the original
(allenai/unified-io-inference, `uio/network.py`, `Transformer.decode`) run
teacher-forced on the `uio_tiny` reference model with padded text targets
AND padded image targets (`image_decoder_masks`), which build both its
causal self-attention mask and its encoder-decoder mask.

Inputs: the encoder inputs, text decoder inputs/targets and image decoder
inputs of `tests/data/reference/uio_tiny/io.npz` (not copied: the test reads
them from there), with

- `text_decoder_masks = text_decoder_targets > 0` (row 0: 7 of 8 valid,
  row 1: 4 of 8);
- `image_decoder_masks`: row 0 the original's target mask of a 480x640
  (landscape) image, i.e. the last quarter of the 256 codes (16x16 rows
  12..15) padded; row 1 that of a 500x333 (portrait) image, the 5 right
  columns of every code row padded (from
  `tests/data/reference/preprocess/io.npz`, `out/tgt_mask_*`). With
  trailing padding only (row 0) causal attention already hides the padded
  codes from every valid one; row 1's padding sits between valid codes, so
  there the mask changes the valid positions' logits.

Saved (float32 / int32; logits of each modality over its OWN ids only, to
keep the file small: the original fills the other modality's ids with
-1e10):

- `in/text_decoder_masks` [2, 8], `in/image_decoder_masks` [2, 256]
- `out/text_logits` [2, 8, vocab_size]: ids 0 .. vocab_size-1
- `out/image_logits` [2, 256, image_vocab_size]: ids vocab_size + code
- `meta/versions`: the versions the numbers were made with

The same call with `image_decoder_masks=None` (the original's default, all
ones) reproduces `io.npz`'s `out/dec_image_logits` (printed as a check, not
saved): that file already holds the unmasked numbers.

Padded query rows (mask 0) are in the file but meaningless: the original
masks such a row entirely, so it attends uniformly; compare valid rows only.

Not part of the test dependencies. To run (as benchmarks/original_generate.py):

    git clone https://github.com/allenai/unified-io-inference /path/uio-src
    python -m venv --system-site-packages venv && venv/bin/pip install flax einops
    JAX_PLATFORMS=cpu venv/bin/python scripts/make_image_mask_reference.py \
        --src /path/uio-src --commit "$(git -C /path/uio-src rev-parse --short HEAD)"

Made with the original at commit ee0bd9d, flax 0.12.8, einops 0.8.2, jax
0.10.2 (CPU, float32). Two names the original's type annotations use are
gone from current jax (`jax.numpy.DeviceArray`,
`jax.pxla.ShardedDeviceArray`); they are aliased to `jax.Array` before
importing it (annotations only).
"""

import argparse
import json
import os
import pathlib
import sys
import types

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "reference"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--src",
        required=True,
        help="a checkout of allenai/unified-io-inference (its `uio` package)",
    )
    ap.add_argument(
        "--commit",
        default="unknown",
        help="the checkout's commit, recorded in the file (e.g. ee0bd9d)",
    )
    ap.add_argument("--out", default=str(REFERENCE / "uio_tiny" / "image_mask.npz"))
    args = ap.parse_args()

    import flax
    import jax
    import jax.numpy as jnp
    from flax.serialization import from_bytes

    jnp.DeviceArray = jax.Array
    jax.pxla = types.SimpleNamespace(ShardedDeviceArray=jax.Array)
    sys.path.insert(0, os.path.abspath(args.src))
    from importlib.metadata import version

    from uio import network

    versions = (
        f"unified-io-inference {args.commit}; jax {jax.__version__}, "
        f"jaxlib {version('jaxlib')}, flax {flax.__version__}, "
        f"einops {version('einops')}, numpy {np.__version__}"
    )
    print(versions)

    tiny = REFERENCE / "uio_tiny"
    config = json.loads((tiny / "reference_config.json").read_text())

    def tuples(d):
        return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}

    cfg = network.UnifiedIOConfig(**tuples(config["model"]))
    vae_cfg = network.VAEConfig(**tuples(config["vqgan"]))
    module = network.Transformer(config=cfg, vae_config=vae_cfg)
    # The released checkpoints' format, read as `uio.utils.load_checkpoint`
    # does (that module is not imported: it needs torchvision).
    params = from_bytes(None, (tiny / "checkpoint.bin").read_bytes())
    params = jax.tree_util.tree_map(jnp.asarray, params)
    variables = {"params": params}

    io = np.load(tiny / "io.npz")
    pre = np.load(REFERENCE / "preprocess" / "io.npz")
    text_targets = io["in/text_decoder_targets"]
    text_inputs = io["in/text_decoder_inputs"]
    image_inputs = io["in/image_decoder_inputs"]
    image_targets = io["in/image_tokens"]
    text_masks = (text_targets > 0).astype(np.int32)
    image_masks = np.stack(
        [pre["out/tgt_mask_landscape"], pre["out/tgt_mask_portrait"]]
    ).astype(np.int32)
    assert (image_masks[0, :192] == 1).all() and (image_masks[0, 192:] == 0).all()

    text_enc = io["in/text_encoder_inputs"]
    encoded, encoder_masks = module.apply(
        variables,
        text_enc,
        io["in/image_encoder_inputs"],
        text_enc > 0,
        io["in/image_input_masks"],
        image_encoder_pos_ids=None,
        text_encoder_pos_ids=None,
        enable_dropout=False,
        method=module.encode,
    )

    def decode(image_decoder_masks):
        text_logits, image_logits, _ = module.apply(
            variables,
            encoded,
            encoder_masks,
            text_inputs,
            image_inputs,
            text_targets,
            image_targets,
            text_decoder_masks=text_masks,
            image_decoder_masks=image_decoder_masks,
            enable_dropout=False,
            method=module.decode,
        )
        return np.asarray(text_logits, np.float32), np.asarray(image_logits, np.float32)

    text_logits, image_logits = decode(image_masks)
    unmasked_text, unmasked_image = decode(None)

    # This run reproduces the stored reference (same original, same inputs).
    valid_text = text_masks.astype(bool)
    print(
        "unmasked vs io.npz dec_image_logits: max |diff| "
        f"{np.abs(unmasked_image - io['out/dec_image_logits']).max():.3g}; "
        "text (valid rows) "
        f"{np.abs(unmasked_text - io['out/dec_text_logits'])[valid_text].max():.3g}"
    )
    valid = image_masks.astype(bool)
    for row in range(2):
        d = np.abs(image_logits[row] - unmasked_image[row])[valid[row]].max()
        print(
            f"row {row}: masked vs unmasked image logits, valid rows: max |diff| {d:.3g}"
        )
    print(
        "text logits masked vs unmasked, valid rows: max |diff| "
        f"{np.abs(text_logits - unmasked_text)[valid_text].max():.3g}"
    )

    vocab = cfg.vocab_size
    np.savez_compressed(
        args.out,
        **{
            "in/text_decoder_masks": text_masks,
            "in/image_decoder_masks": image_masks,
            "out/text_logits": text_logits[..., :vocab],
            "out/image_logits": image_logits[..., vocab:],
            "meta/versions": np.array(versions),
        },
    )
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
