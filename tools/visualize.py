"""Look at data and models, saved as PNG:

    dataset   samples with points coloured by region, as loaded and after augmentation
    heatmaps  a model's predicted heatmaps (all points' maximum) over validation crops, with its points
    filters   a model's learned first-layer convolution filters
    scatter   predicted against true coordinates (x and y) over a split
    curves    cumulative error curves (test split) of several runs in one plot
    learning  training loss and validation NME by epoch of several runs
    rolls     faces found and NME against the angle photos were turned by (tools/evaluate.py --rotations)
    predictions  the best and the worst images of a split: truth (green) and prediction (red), NME on each

    python tools/visualize.py dataset --dataset synthetic --out results/synthetic.png
    python tools/visualize.py dataset --dataset 300w --split train --data-root ../shared/datasets --out results/300w.png
    python tools/visualize.py heatmaps --checkpoint heatnet/assets/heatnet_300w_68.pt --data-root ../shared/datasets --out results/heatmaps.png
    python tools/visualize.py filters --checkpoint runs/imm_unet_js/<time>/best.pt --out results/filters.png
    python tools/visualize.py scatter --checkpoint runs/w300_unet_js/<time>/best.pt --split val --out results/scatter.png
    python tools/visualize.py curves --runs runs/a/<time> runs/b/<time> --out results/curves.png
    python tools/visualize.py learning --runs runs/a/<time> runs/b/<time> --out results/learning.png
    python tools/visualize.py rolls --reports results/rolls_fast results/rolls_mediapipe --out results/rolls.png
    python tools/visualize.py predictions --checkpoint runs/imm_points_cnn/<time>/best.pt --split test --count 8 --out results/pred.png
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import fail, tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("view", choices=["dataset", "heatmaps", "filters", "scatter", "curves", "learning", "predictions",
                                         "rolls"])
    parser.add_argument("--checkpoint", type=Path, help="heatmaps, filters, scatter, predictions: a heatnet checkpoint")
    parser.add_argument("--runs", type=Path, nargs="+", help="curves, learning: finished run folders")
    parser.add_argument("--reports", type=Path, nargs="+", help="rolls: folders holding a roll_robustness.json")
    parser.add_argument("--dataset", default="synthetic", help="dataset: a name in heatnet.datasets.DATASETS")
    parser.add_argument("--split", help="default: train for dataset, the run's validation split for the model views")
    parser.add_argument("--data-root", type=Path, help="default: $HEATNET_DATA")
    parser.add_argument("--count", type=int, default=16, help="samples shown (scatter: 16x as many)")
    parser.add_argument("--size", type=int, default=128, help="dataset: crop side, pixels")
    parser.add_argument("--seed", type=int, default=0, help="dataset: the augmentation draws")
    parser.add_argument("--out", type=Path, default=Path("results/dataset.png"), help="the PNG or JPEG to write")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args = parser.parse_args()
    if args.count < 1 or args.size < 8:
        fail(f"--count must be at least 1 and --size at least 8 px, got {args.count} and {args.size}")

    import cv2  # imported after parsing: --help answers at once

    from heatnet.files import check_writable
    from heatnet.views import (curves_view, dataset_view, filters_view, heatmaps_view, learning_view,
                               predictions_view, rolls_view, scatter_view)

    if not cv2.haveImageWriter(str(args.out)):
        fail(f"--out {args.out}: not an image file name OpenCV can write (use .png or .jpg)")
    check_writable(args.out.parent)
    if args.view in ("heatmaps", "filters", "scatter", "predictions") and args.checkpoint is None:
        fail(f"the {args.view} view needs --checkpoint")
    if args.view in ("curves", "learning") and not args.runs:
        fail(f"the {args.view} view needs --runs RUN [RUN ...]")
    if args.view == "rolls" and not args.reports:
        fail("the rolls view needs --reports FOLDER [FOLDER ...]")
    split = args.split or ("train" if args.view == "dataset" else "val")
    if args.view == "dataset":
        image = dataset_view(args.dataset, split, args.data_root, args.count, args.size, args.seed)
    elif args.view == "heatmaps":
        image = heatmaps_view(args.checkpoint, split, args.data_root, args.count)
    elif args.view == "filters":
        image = filters_view(args.checkpoint)
    elif args.view == "predictions":
        image = predictions_view(args.checkpoint, split, args.data_root, args.count)
    else:
        figures = {"scatter": lambda: scatter_view(args.checkpoint, split, args.data_root, args.count * 16),
                   "curves": lambda: curves_view(args.runs), "learning": lambda: learning_view(args.runs),
                   "rolls": lambda: rolls_view(args.reports)}
        figure = figures[args.view]()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.out, dpi=120)
        print(f"wrote {args.out}")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), image[:, :, ::-1]):
        fail(f"{args.out}: could not write the image")
    print(f"wrote {args.out} ({image.shape[1]} x {image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
