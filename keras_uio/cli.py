"""The `keras-uio` command.

`keras-uio info` lists the presets and runs the tiny one; `keras-uio convert
CHECKPOINT.bin OUT_DIR` turns an original checkpoint into a preset folder.
"""

import argparse
import os
import sys
import time


def _info(args):
    import keras
    import numpy as np

    from keras_uio.models.unified_io.unified_io_backbone import UnifiedIOBackbone
    from keras_uio.models.unified_io.unified_io_presets import backbone_presets
    from keras_uio.models.unified_io.unified_io_presets import (
        count_backbone_parameters,
    )
    from keras_uio.models.vqgan.vqgan import VQGAN
    from keras_uio.models.vqgan.vqgan import count_vqgan_parameters
    from keras_uio.models.vqgan.vqgan_presets import backbone_presets as vq_presets

    print(f"keras-uio on Keras {keras.__version__}, backend {keras.config.backend()}")
    print(f"{'preset':<12}{'transformer':>16}{'VQ-GAN':>14}{'total':>16}  description")
    for name, entry in backbone_presets.items():
        vq_name = entry["metadata"]["vqgan"]
        transformer = count_backbone_parameters(entry["config"])
        vqgan = count_vqgan_parameters(vq_presets[vq_name]["config"])
        print(
            f"{name:<12}{transformer:>16,}{vqgan:>14,}{transformer + vqgan:>16,}"
            f"  {entry['metadata']['description']}"
        )
    print(
        "Transformer counts exclude the original's two unused decoder "
        "`cross_position_{q,k}_linear` kernels (2 * emb * heads * head_dim)."
    )
    print("\nForward pass of uio_tiny (random weights):")
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    backbone = UnifiedIOBackbone.from_preset("uio_tiny", load_weights=False)
    vqgan = VQGAN(**vq_presets["vqgan_tiny"]["config"])
    built = time.perf_counter()
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, 256, 256, 3)).astype("float32")
    codes = np.asarray(vqgan.encode(image))
    image_inputs = np.concatenate(
        [[[backbone.image_start_id]], codes[:, :-1] + backbone.vocabulary_size], 1
    )
    outputs = backbone.predict(
        {
            "text_encoder_inputs": np.array([[37, 52, 14, 1]], "int32"),
            "image_encoder_inputs": rng.normal(size=(1, 384, 384, 3)).astype(
                "float32"
            ),
            "image_input_masks": np.ones((1, 576), "int32"),
            "text_decoder_inputs": np.array([[0, 61, 9]], "int32"),
            "text_decoder_masks": np.ones((1, 3), "int32"),
            "image_decoder_inputs": image_inputs.astype("int32"),
        },
        verbose=0,
    )
    done = time.perf_counter()
    for key, value in outputs.items():
        print(f"  {key}: shape {tuple(value.shape)}, finite {np.isfinite(value).any()}")
    print(f"  VQ-GAN codes: {codes.shape}, first {codes[0, :6].tolist()}")
    print(f"  built in {built - start:.1f} s, ran in {done - built:.1f} s")
    return 0


def _convert(args):
    from keras_uio.convert.convert_checkpoint import convert_checkpoint

    start = time.perf_counter()
    backbone, vqgan = convert_checkpoint(
        args.checkpoint,
        args.output_dir,
        vocabulary=args.vocabulary,
        dtype=args.dtype,
    )
    print(
        f"Converted {args.checkpoint} -> {args.output_dir} in "
        f"{time.perf_counter() - start:.1f} s: transformer "
        f"{backbone.count_params():,} parameters, VQ-GAN "
        f"{vqgan.count_params():,}."
    )
    print(
        "Load it with keras_uio.UnifiedIOBackbone.from_preset("
        f"{args.output_dir!r}) and keras_uio.VQGAN.from_preset("
        f"{os.path.join(args.output_dir, 'vqgan')!r})."
    )
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-uio", description="Unified-IO for Keras 3."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser(
        "info", help="List presets and run a forward pass of the tiny one."
    )
    info.set_defaults(run=_info)
    convert = commands.add_parser(
        "convert", help="Convert an original Unified-IO .bin checkpoint."
    )
    convert.add_argument("checkpoint", help="e.g. small_1000k.bin")
    convert.add_argument("output_dir", help="preset folder to write")
    convert.add_argument(
        "--vocabulary", default=None, help="T5 spiece.model to bundle"
    )
    convert.add_argument(
        "--dtype",
        default=None,
        help="dtype policy of the saved weights, e.g. bfloat16 (default float32)",
    )
    convert.set_defaults(run=_convert)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"keras-uio {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
