"""Check a dataset split before training: every sample that would be skipped, with its reason.

    python tools/check_data.py --dataset 300w --split train --data-root ../shared/datasets
    python tools/check_data.py --dataset ytf68 --split test            # data root from $HEATNET_DATA

Reads every annotation, checks every image header (as training does at start-up), then decodes
every image (as the data loader does, where a truncated JPEG first shows). Lists each skipped
sample with its reason and the images that have no annotation, then the counts. Exit code 0
when every sample is usable, 1 when some would be skipped, 2 when the split cannot be loaded.
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="a name in heatnet.datasets.DATASETS")
    parser.add_argument("--split", default="train", help="train, val or test")
    parser.add_argument("--data-root", type=Path, help="default: $HEATNET_DATA")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()

    from tqdm import tqdm  # imported after parsing: --help answers at once

    from heatnet.samples import ImageError
    from heatnet.datasets import BadSamples, DatasetError, load_split

    name = f"{args.dataset}/{args.split}"
    bad = BadSamples(name, quiet=True)
    try:
        source = load_split(args.dataset, args.split, args.data_root, bad=bad)
    except DatasetError:
        for line in bad.problems:  # every reason, before the one-line error
            print(f"  {line}")
        raise
    at_load = len(bad.problems)
    undecodable = []
    for index in tqdm(range(len(source)), desc=f"decoding {name}", disable=args.no_progress, unit="image"):
        try:
            source[index]
        except ImageError as e:
            undecodable.append(str(e))
    for title, lines in (("skipped when the split is loaded", bad.problems),
                         ("skipped by the data loader (the image does not decode)", undecodable),
                         ("images without annotation (not used)", [str(p) for p in bad.unannotated])):
        if lines:
            print(f"{title}:")
            for line in lines:
                print(f"  {line}")
    usable = len(source) - len(undecodable)
    print(f"{name}: {usable} usable sample(s); skipped {at_load} at load and {len(undecodable)} that do not decode; "
          f"{len(bad.unannotated)} image(s) without annotation")
    return 1 if at_load or undecodable else 0


if __name__ == "__main__":
    sys.exit(main())
