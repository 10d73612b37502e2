"""Text-to-image agreement of the bundled model: greedy against top-p.

The original runner draws with top-p 0.9 sampling, which is also
`predict_tasks`' default for image tasks and the demo's way; `greedy=True`
draws deterministically instead. This prints the demo's text-to-image
agreement (colour, shape, both; the model reads back its own drawing) on
the first `--num-images` easy-vqa test captions, greedy and with top-p 0.9
for each seed (a seed's draws depend on the row in the batch, so seed 0
here draws other samples than the demo's seed 0, where masks share the
batch).

Usage:
    KERAS_BACKEND=jax python benchmarks/drawing_sampling.py --num-images 200 --seeds 0 1 2 3
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


COLUMNS = (
    "text_to_image_color_agreement",
    "text_to_image_shape_agreement",
    "text_to_image_agreement",
)


def agreement(model, records, batch_size=100, **decoding):
    """`demo.drawing_agreement` of the drawings of `records` captions."""
    from keras_uio import demo

    examples = [{"task": "text_to_image", "description": r["caption"]} for r in records]
    results = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        results += [
            {"text_to_image": [out]} for out in model.predict_tasks(chunk, **decoding)
        ]
    demo.read_back(model, results, batch_size)
    return demo.drawing_agreement(records, results)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="uio_tiny_easyvqa")
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = parser.parse_args(argv)

    from keras_uio import UnifiedIO
    from keras_uio.data import easy_vqa

    model = UnifiedIO.from_preset(args.preset)
    records = easy_vqa.load_records("test", limit=args.num_images)
    runs = [("greedy", {"greedy": True})] + [
        (f"top-p 0.9, seed {seed}", {"greedy": False, "seed": seed})
        for seed in args.seeds
    ]
    print(f"{args.preset}, first {args.num_images} easy-vqa test captions:")
    print("| drawing | colour | shape | both |")
    print("|---|---|---|---|")
    for name, decoding in runs:
        found = agreement(model, records, **decoding)
        cells = " | ".join(f"{found[k]:.3f}" for k in COLUMNS)
        print(f"| {name} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
