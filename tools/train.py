"""Train an experiment.

    python tools/train.py experiments/unet_kl.py [--key=value ...]
    python tools/train.py experiments/unet_kl.py --dataset=300w --data_root=../shared/datasets --val_split=test
    python tools/train.py experiments/unet_kl.py --resume runs/unet_kl/20261122-120000

Settings are the fields of heatnet.config.Settings; `--dataset NAME` and `--data-root PATH` are
accepted as shorthands. Progress goes to the terminal and TensorBoard (`tensorboard --logdir runs`).
"""
import argparse
import sys
from pathlib import Path

from heatnet.checkpoint import CheckpointError
from heatnet.config import ConfigError
from heatnet.datasets import DatasetError
from heatnet.models import ModelConfigError
from heatnet.training import NonFiniteLoss, train


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--resume", type=Path, default=None, help="run folder whose last.pt to continue")
    parser.add_argument("--run-dir", type=Path, default=None, help="where to write the run (default runs/<exp>/<time>)")
    parser.add_argument("--dataset", default=None, help="shorthand for --dataset=NAME")
    parser.add_argument("--data-root", default=None, help="shorthand for --data_root=PATH")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args, overrides = parser.parse_known_args()
    if args.dataset:
        overrides.append(f"--dataset={args.dataset}")
    if args.data_root:
        overrides.append(f"--data_root={args.data_root}")
    try:
        result = train(args.experiment, overrides, run_dir=args.run_dir, resume=args.resume,
                       progress=not args.no_progress)
    except (ConfigError, DatasetError, ModelConfigError, CheckpointError, NonFiniteLoss) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    final = result["final"]
    print(f"done ({result['stopped_by']}): val NME {final.get('nme', float('nan')):.2f}% "
          f"(best {result['best_nme']:.2f}% at epoch {result['best_epoch']}), run: {result['run_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
