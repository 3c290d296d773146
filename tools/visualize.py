"""Look at data: a grid of samples with points coloured by region, as loaded and after
augmentation, saved as PNG.

    python tools/visualize.py dataset --dataset synthetic --out results/synthetic.png
    python tools/visualize.py dataset --dataset 300w --split train --data-root ../shared/datasets --out results/300w.png
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("view", choices=["dataset"])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--split", default="train")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/dataset.png"))
    args = parser.parse_args()
    if args.count < 1 or args.size < 8:
        print(f"error: --count must be at least 1 and --size at least 8 px, got {args.count} and {args.size}",
              file=sys.stderr)
        return 2

    import cv2  # imported after parsing: --help answers at once

    from heatnet.config import ConfigError
    from heatnet.data import ImageError
    from heatnet.datasets import DatasetError
    from heatnet.files import check_writable

    try:
        if not cv2.haveImageWriter(str(args.out)):
            raise ConfigError(f"--out {args.out}: not an image file name OpenCV can write (use .png or .jpg)")
        check_writable(args.out.parent)
        image = dataset_view(args.dataset, args.split, args.data_root, args.count, args.size, args.seed)
    except (ConfigError, DatasetError, ImageError) as e:
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
