"""Fit the 68-point shape model that the synthetic faces draw from, from the 300-W training shapes.

    python tools/make_shape_model.py [--data-root ../shared/datasets] [--out heatnet/assets/shape_model_68.npz]

Each training shape is used with its mirror image too (re-indexed by the iBUG flip map), so the
model is left-right symmetric.
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=None, help="default: $HEATNET_DATA")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "heatnet/assets/shape_model_68.npz",
                        help="the .npz to write (default: the shipped one)")
    parser.add_argument("--modes", type=int, default=12, help="PCA modes kept")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args = parser.parse_args()

    import numpy as np  # imported after parsing: --help answers at once

    from heatnet.datasets import load_split
    from heatnet.schemes import IBUG68
    from heatnet.shape_model import ShapeModel

    source = load_split("300w", "train", args.data_root)
    shapes = np.stack([r.points for r in source.records]).astype(np.float64)  # (N, 68, 2)
    mirrored = shapes[:, IBUG68.flip_map] * np.array([-1.0, 1.0])
    model = ShapeModel.fit(np.concatenate([shapes, mirrored]), args.modes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    explained = model.stddev**2 / model.stddev[0] ** 2
    print(f"{len(shapes)} shapes (+ mirrors) -> {args.out}; mode variances relative to the first: "
          + " ".join(f"{v:.3f}" for v in explained))
    return 0


if __name__ == "__main__":
    sys.exit(main())
