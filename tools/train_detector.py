"""Train heatnet's own face detector (heatnet.centre_detector): faces of the training splits of
300-W, IMM and ytf68 pasted into scenes at every roll and size (heatnet.scenes); the 300-W
validation photos, turned, choose the checkpoint. Run it again with the same --out to resume.

    python tools/train_detector.py --data-root ../shared/datasets --out results/detector --steps 7000
    python tools/compare_detectors.py --detectors results/detector/best.pt,blazeface --rotations 0,90,180

TensorBoard: `tensorboard --logdir results/detector`.
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", help="default: $HEATNET_DATA")
    parser.add_argument("--out", type=Path, required=True, help="run folder (last.pt, best.pt, TensorBoard events)")
    parser.add_argument("--datasets", default="300w,imm,ytf68", help="training splits of these datasets give the faces")
    parser.add_argument("--steps", type=int, default=7000, help="training steps (the cosine schedule's length)")
    parser.add_argument("--batch-size", type=int, default=32, help="scenes per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW's peak learning rate")
    parser.add_argument("--size", type=int, default=128, help="scene side, pixels (a multiple of 32)")
    parser.add_argument("--val-every", type=int, default=500, help="steps between validations (and saves of last.pt)")
    parser.add_argument("--val-limit", type=int, default=0, help="the first N validation photos only (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the scenes and the network's initial weights")
    parser.add_argument("--threads", type=int, default=0, help="PyTorch threads (0: its choice)")
    parser.add_argument("--no-progress", action="store_true", help="no loss line every 50 steps (validations still print)")
    args = parser.parse_args()

    import torch  # imported after parsing: --help answers at once

    from heatnet.datasets import load_split
    from heatnet.samples import FirstN
    from heatnet.training.detector import DetectorRun, train_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.data_root) if args.data_root else None
    sources = [load_split(name.strip(), "train", root) for name in args.datasets.split(",") if name.strip()]
    val = load_split("300w", "val", root)
    val = FirstN(val, args.val_limit) if args.val_limit else val
    run = DetectorRun(args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr, size=args.size,
                      seed=args.seed, val_every=args.val_every)
    best = train_detector(run, sources, val, progress=not args.no_progress)
    print(f"best: {best} -> {args.out / 'best.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
