"""Evaluate a checkpoint on a dataset split: metrics table, per-region errors, cumulative error
curve PNG, predictions CSV (original pixels) and metrics JSON.

    python tools/evaluate.py runs/unet_kl/<time>/best.pt                       # its own val split
    python tools/evaluate.py runs/w300_unet_kl/<time>/last.pt --dataset 300w --split test --flip-test
    python tools/evaluate.py CHECKPOINT --decoder dark --out results/eval
"""
import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from heatnet.checkpoint import CheckpointError, check_compatible
from heatnet.codecs import DECODERS
from heatnet.datasets import DatasetError
from heatnet.drawing import error_curve_figure
from heatnet.evaluation import evaluate, load_trained
from heatnet.formats import Record, write_ytf_csv
from heatnet.runtime import choose_device, set_threads, tune_allocator
from heatnet.training import make_dataset, make_loader


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--dataset", help="default: the one it was trained on")
    parser.add_argument("--split", help="default: its validation split")
    parser.add_argument("--data-root")
    parser.add_argument("--decoder", choices=sorted(DECODERS), help="default: the experiment's")
    parser.add_argument("--flip-test", action="store_true", help="average with the mirrored input's prediction")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, help="output folder (default: beside the checkpoint)")
    args = parser.parse_args()
    tune_allocator()
    set_threads(args.threads)
    device = choose_device()
    try:
        method, s, state = load_trained(args.checkpoint, device)
        same_data = args.dataset in (None, s.dataset) and args.split in (None, s.val_split)
        s = replace(s, dataset=args.dataset or s.dataset, val_split=args.split or s.val_split,
                    data_root=args.data_root or s.data_root, batch_size=args.batch_size)
        dataset = make_dataset(s, s.val_split, s.val_limit if same_data else 0)
        check_compatible(state, dataset.scheme, args.checkpoint)
    except (CheckpointError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    decoder = DECODERS[args.decoder] if args.decoder else None
    result = evaluate(method, make_loader(dataset, s), device, decoder, args.flip_test, amp=s.amp)
    metrics = result.summary()
    out = args.out or args.checkpoint.parent / f"eval_{s.dataset}_{s.val_split}"
    out.mkdir(parents=True, exist_ok=True)
    title = f"{args.checkpoint} on {s.dataset}/{s.val_split} ({len(dataset)} images)"
    print(f"{title}\n\n| metric | value |\n|---|---|")
    for key, value in metrics.items():
        print(f"| {key} | {value:.4g} |")
    per_image = result.errors.per_image()
    error_curve_figure({Path(args.checkpoint).parent.name: per_image}, title=f"{s.dataset}/{s.val_split}").savefig(out / "error_curve.png", dpi=120)
    names = [dataset.source.name_of(int(i)) for i in result.indices]
    records = [Record(Path(n), p.astype(np.float32), np.ones(len(p), np.float32)) for n, p in zip(names, result.predictions)]
    write_ytf_csv(out / "predictions.csv", records)
    (out / "metrics.json").write_text(json.dumps({"checkpoint": str(args.checkpoint), "dataset": s.dataset,
                                                  "split": s.val_split, "decoder": args.decoder, "flip_test": args.flip_test,
                                                  "metrics": metrics, "per_point_nme": result.errors.per_point().tolist(),
                                                  "per_image_nme": per_image.tolist()}, indent=1))
    print(f"\nwrote {out}/metrics.json, predictions.csv, error_curve.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
