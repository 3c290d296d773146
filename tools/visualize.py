"""Look at data and models, saved as PNG:

    dataset   samples with points coloured by region, as loaded and after augmentation
    heatmaps  a model's predicted heatmaps (all points' maximum) over validation crops, with its points
    filters   a model's learned first-layer convolution filters
    scatter   predicted against true coordinates (x and y) over a split
    curves    cumulative error curves (test split) of several runs in one plot
    learning  training loss and validation NME by epoch of several runs
    predictions  the best and the worst images of a split: truth (green) and prediction (red), NME on each

    python tools/visualize.py dataset --dataset synthetic --out results/synthetic.png
    python tools/visualize.py dataset --dataset 300w --split train --data-root ../shared/datasets --out results/300w.png
    python tools/visualize.py heatmaps --checkpoint heatnet/data/heatnet_300w_68.pt --data-root ../shared/datasets --out results/heatmaps.png
    python tools/visualize.py filters --checkpoint runs/imm_unet_kl/<time>/best.pt --out results/filters.png
    python tools/visualize.py scatter --checkpoint runs/w300_unet_kl/<time>/best.pt --split val --out results/scatter.png
    python tools/visualize.py curves --runs runs/a/<time> runs/b/<time> --out results/curves.png
    python tools/visualize.py learning --runs runs/a/<time> runs/b/<time> --out results/learning.png
    python tools/visualize.py predictions --checkpoint runs/imm_points_cnn/<time>/best.pt --split test --count 8 --out results/pred.png
"""
import argparse
import sys
from pathlib import Path


def dataset_view(name: str, split: str, root, count: int, size: int, seed: int):
    """Two rows per group: plain crops, then the same samples augmented (H x W x 3 uint8).
    Images that do not decode are left out with a warning."""
    import numpy as np

    from heatnet.augment import Augmentation
    from heatnet.data import LandmarkDataset, ImageError, warn_skipped
    from heatnet.datasets import load_split
    from heatnet.drawing import draw_points, grid

    source = load_split(name, split, root)
    picks = np.random.default_rng(seed).choice(len(source), size=min(count, len(source)), replace=False)
    plain = LandmarkDataset(source, size, seed=seed)
    augmented = LandmarkDataset(source, size, augmentation=Augmentation(), seed=seed)
    cells, skipped = [], []
    columns = 8
    for start in range(0, len(picks), columns):
        for ds in (plain, augmented):
            for i in picks[start : start + columns]:
                try:
                    item = ds[int(i)]
                except ImageError as e:
                    skipped.append(str(e))
                    continue
                image = item["image"].permute(1, 2, 0).numpy()
                cells.append(draw_points(image, item["points"].numpy(), item["visibility"].numpy(), source.scheme,
                                         radius=2, scale=2))
            if cells:
                cells += [np.full_like(cells[-1], 255)] * ((-len(cells)) % columns)
    warn_skipped(f"{name}/{split}", list(dict.fromkeys(skipped)))  # each one failed in both rows: once each
    if not cells:
        raise ImageError(f"{name}/{split}: none of the {len(picks)} images picked could be read")
    return grid(cells, columns)


def load_model_and_split(checkpoint: Path, split: str, root, count: int):
    """(method, settings, dataset) of a checkpoint and the first `count` samples of one of its
    dataset's splits (0: all)."""
    from dataclasses import replace

    from heatnet.evaluation import load_trained
    from heatnet.loading import make_dataset

    method, s, _ = load_trained(checkpoint)
    s = replace(s, data_root=str(root) if root else s.data_root, workers=0)
    return method, s, make_dataset(s, split, count)


def heatmaps_view(checkpoint: Path, split: str, root, count: int):
    """Each crop with the maximum over points of its predicted heatmaps, and the decoded points."""
    import numpy as np
    import torch

    from heatnet.data import collate, has_samples
    from heatnet.drawing import draw_points, grid, heatmap_overlay
    from heatnet.evaluation import to_device_batch

    method, s, dataset = load_model_and_split(checkpoint, split, root, count)
    batch = collate(dataset.__getitems__(list(range(len(dataset)))))
    if not has_samples(batch):
        raise ValueError(f"{s.dataset}/{split}: none of the images could be read")
    images, _, _ = to_device_batch(batch, torch.device("cpu"))
    with torch.no_grad():
        outputs = method.model.eval()(images)
        points, _ = method.decode(outputs)
    if outputs.dim() != 4:
        raise ValueError(f"{checkpoint}: a regression model has no heatmaps")
    maps = method.loss.activate(outputs).amax(dim=1).numpy()  # (B, H, W)
    crops = batch["image"].permute(0, 2, 3, 1).numpy()
    crops = np.repeat(crops, 3, axis=3) if crops.shape[3] == 1 else crops
    cells = [draw_points(heatmap_overlay(crop, heatmap), p, radius=1, colour=(255, 255, 255), scale=2)
             for crop, heatmap, p in zip(crops, maps, points.numpy())]
    return grid(cells, 4)


def filters_view(checkpoint: Path):
    """The first convolution's filters, each scaled to its own range, 8x enlarged (RGB filters in
    colour; others as the mean over input channels)."""
    import cv2
    import numpy as np
    import torch

    from heatnet.drawing import grid
    from heatnet.evaluation import load_trained

    method, _, _ = load_trained(checkpoint)
    conv = next(m for m in method.model.modules() if isinstance(m, torch.nn.Conv2d))
    weights = conv.weight.detach().float().numpy()  # (O, I, k, k)
    cells = []
    for kernel in weights:
        kernel = kernel.transpose(1, 2, 0) if kernel.shape[0] == 3 else kernel.mean(0)[:, :, None].repeat(3, 2)
        kernel = (kernel - kernel.min()) / max(float(kernel.max() - kernel.min()), 1e-12)
        size = 8 * kernel.shape[0]
        cell = cv2.resize((255 * kernel).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        cells.append(cv2.copyMakeBorder(cell, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    return grid(cells, 8)


def scatter_view(checkpoint: Path, split: str, root, count: int):
    """Predicted against true x and y (original pixels) over the split's samples."""
    import torch

    from heatnet.drawing import plt
    from heatnet.evaluation import evaluate
    from heatnet.loading import make_loader

    method, s, dataset = load_model_and_split(checkpoint, split, root, count)
    result = evaluate(method, make_loader(dataset, s), torch.device("cpu"))
    pred, truth, visibility, _ = result.errors.arrays()
    visible = visibility > 0
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    for axis, name, ax in ((0, "x", axes[0]), (1, "y", axes[1])):
        t, p = truth[..., axis][visible], pred[..., axis][visible]
        ax.scatter(t, p, s=2, alpha=0.3)
        low, high = min(t.min(), p.min()), max(t.max(), p.max())
        ax.plot([low, high], [low, high], "k--", linewidth=1)
        ax.set_xlabel(f"true {name} (px)")
        ax.set_ylabel(f"predicted {name} (px)")
    fig.suptitle(f"{checkpoint} on {s.dataset}/{split}: NME {result.errors.summary()['nme_%']:.2f} %")
    fig.tight_layout()
    return fig


def curves_view(runs: list[Path]):
    """The test split's cumulative error curves of several run folders."""
    import json

    import numpy as np

    from heatnet.drawing import error_curve_figure

    curves = {}
    for run in runs:
        metrics = run / "metrics.json" if run.is_dir() else run
        if not metrics.is_file():
            raise ValueError(f"{run}: no metrics.json (give finished run folders)")
        result = json.loads(metrics.read_text())
        if "test" not in result:
            raise ValueError(f"{metrics}: the run has no test block")
        curves[run.parent.name + "/" + run.name if run.is_dir() else str(run)] = np.array(result["test"]["per_image_nme"])
    return error_curve_figure(curves, title="test split")


def learning_view(runs: list[Path]):
    """Training loss and validation NME by epoch of several run folders."""
    import json
    import os

    from heatnet.drawing import learning_curves_figure

    histories = {}
    common = Path(os.path.commonpath([run.resolve() for run in runs]))
    for run in runs:
        if not (run / "metrics.json").is_file():
            raise ValueError(f"{run}: no metrics.json (give finished run folders)")
        # named by what tells the runs apart: sweep/runs/point/seed0 -> "sweep: point/seed0"
        name = str(run.resolve().relative_to(common)).replace("/runs/", ": ") if len(runs) > 1 else run.name
        histories[name] = json.loads((run / "metrics.json").read_text())["history"]
    return learning_curves_figure(histories)


def predictions_view(checkpoint: Path, split: str, root, count: int):
    """The `count` // 2 best and the rest worst images of the split by NME: crops with the truth
    (green) and the prediction (red), the image's NME written on it."""
    import cv2
    import numpy as np
    import torch

    from heatnet.drawing import draw_points, grid
    from heatnet.evaluation import evaluate
    from heatnet.geometry import apply_affine
    from heatnet.loading import make_loader

    method, s, dataset = load_model_and_split(checkpoint, split, root, 0)
    result = evaluate(method, make_loader(dataset, s), torch.device("cpu"))
    per_image = result.errors.per_image()  # (N,) fractions, in result.indices order
    order = np.argsort(per_image)
    best, worst = order[: count // 2], order[::-1][: count - count // 2]
    cells = []
    for position in [*best, *worst]:
        item = dataset[int(result.indices[position])]
        crop = item["image"].permute(1, 2, 0).numpy()
        scale = max(1, 256 // crop.shape[0])
        truth = item["points"].numpy()
        predicted = apply_affine(result.predictions[position].astype(np.float64), item["affine"].numpy().astype(np.float64))
        cell = draw_points(draw_points(crop, truth, colour=(40, 200, 40), scale=scale), predicted * scale + (scale - 1) / 2,
                           colour=(230, 30, 30))
        cv2.putText(cell, f"{100 * per_image[position]:.1f}%", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 0), 1, cv2.LINE_AA)
        cells.append(cell)
    return grid(cells, max(1, count // 2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("view", choices=["dataset", "heatmaps", "filters", "scatter", "curves", "learning", "predictions"])
    parser.add_argument("--checkpoint", type=Path, help="heatmaps, filters, scatter, predictions: a heatnet checkpoint")
    parser.add_argument("--runs", type=Path, nargs="+", help="curves, learning: finished run folders")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--split", help="default: train for dataset, the run's validation split for the model views")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--count", type=int, default=16, help="samples shown (scatter: 16x as many)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/dataset.png"))
    args = parser.parse_args()
    if args.count < 1 or args.size < 8:
        print(f"error: --count must be at least 1 and --size at least 8 px, got {args.count} and {args.size}",
              file=sys.stderr)
        return 2

    import cv2  # imported after parsing: --help answers at once

    from heatnet.checkpoint import CheckpointError
    from heatnet.config import ConfigError
    from heatnet.data import ImageError
    from heatnet.datasets import DatasetError
    from heatnet.files import check_writable

    try:
        if not cv2.haveImageWriter(str(args.out)):
            raise ConfigError(f"--out {args.out}: not an image file name OpenCV can write (use .png or .jpg)")
        check_writable(args.out.parent)
        if args.view in ("heatmaps", "filters", "scatter", "predictions") and args.checkpoint is None:
            raise ConfigError(f"the {args.view} view needs --checkpoint")
        if args.view in ("curves", "learning") and not args.runs:
            raise ConfigError(f"the {args.view} view needs --runs RUN [RUN ...]")
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
                       "curves": lambda: curves_view(args.runs), "learning": lambda: learning_view(args.runs)}
            figure = figures[args.view]()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(args.out, dpi=120)
            print(f"wrote {args.out}")
            return 0
    except (ConfigError, DatasetError, ImageError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), image[:, :, ::-1]):
        print(f"error: {args.out}: could not write the image", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({image.shape[1]} x {image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
