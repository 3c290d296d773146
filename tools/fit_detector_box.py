"""Measure how a face detector's boxes relate to the landmark boxes heatnet models are trained
on (centre offset and size, medians over the faces it finds), and its misses.

    python tools/fit_detector_box.py --detector haar --data-root ../shared/datasets
    python tools/fit_detector_box.py --detector dlib_hog --dataset 300w --split train --limit 500

The printed BoxFit goes into the detector's class in heatnet/detect.py.
"""
import argparse
import sys
import time

from heatnet.cli import tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", default="blazeface", help="a name in heatnet.detect.DETECTORS (blazeface: the default detector)")
    parser.add_argument("--dataset", default="300w", help="a named 68-point dataset")
    parser.add_argument("--split", default="train", help="fit on training images, never on a test split")
    parser.add_argument("--data-root", help="default: $HEATNET_DATA")
    parser.add_argument("--limit", type=int, default=0, help="the first N images only")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args = parser.parse_args()

    from pathlib import Path  # imported after parsing: --help answers at once

    from heatnet.datasets import load_split
    from heatnet.detect import fit_box, make_detector

    detector = make_detector(args.detector)
    source = load_split(args.dataset, args.split, Path(args.data_root) if args.data_root else None)
    start = time.perf_counter()
    fit, matched, missed = fit_box(detector, source, args.limit)
    seconds = time.perf_counter() - start
    print(f"{args.detector} on {args.dataset}/{args.split}: {matched} faces matched, {missed} missed "
          f"({100 * missed / (matched + missed):.1f} %), {1000 * seconds / (matched + missed):.1f} ms per image")
    print(f"box_fit = {fit!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
