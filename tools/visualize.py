"""Look at data: a grid of samples with points coloured by region, as loaded and after
augmentation, saved as PNG.

    python tools/visualize.py dataset --dataset synthetic --out docs/synthetic.png
    python tools/visualize.py dataset --dataset 300w --split train --data-root ../shared/datasets --out docs/300w_augmented.png
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from heatnet.augment import Augmentation
from heatnet.data import LandmarkDataset
from heatnet.datasets import DatasetError, load_split
from heatnet.drawing import draw_points, grid


def dataset_view(name: str, split: str, root, count: int, size: int, seed: int) -> np.ndarray:
    """Two rows per group: plain crops, then the same samples augmented."""
    source = load_split(name, split, root)
    picks = np.random.default_rng(seed).choice(len(source), size=min(count, len(source)), replace=False)
    plain = LandmarkDataset(source, size, seed=seed)
    augmented = LandmarkDataset(source, size, augmentation=Augmentation(), seed=seed)
    cells = []
    columns = 8
    for start in range(0, len(picks), columns):
        for ds in (plain, augmented):
            for i in picks[start : start + columns]:
                item = ds[int(i)]
                image = item["image"].permute(1, 2, 0).numpy()
                cells.append(draw_points(image, item["points"].numpy(), item["visibility"].numpy(), source.scheme,
                                         radius=2, scale=2))
            cells += [np.full_like(cells[-1], 255)] * ((-len(cells)) % columns)
    return grid(cells, columns)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("view", choices=["dataset"])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--split", default="train")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("dataset.png"))
    args = parser.parse_args()
    try:
        image = dataset_view(args.dataset, args.split, args.data_root, args.count, args.size, args.seed)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), image[:, :, ::-1])
    print(f"wrote {args.out} ({image.shape[1]} x {image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
