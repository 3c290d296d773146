"""Train an experiment.

    python tools/train.py experiments/unet_kl.py [--key=value ...]
    python tools/train.py experiments/w300_unet_kl.py --data-root ../shared/datasets --sigma=2 --decoder=Dark
    python tools/train.py --resume runs/unet_kl/20261122-120000      # continue from its last.pt
    python tools/train.py --resume runs/unet_kl/20261122-120000 --epochs=20   # extend a finished run
    torchrun --nproc-per-node 4 tools/train.py experiments/w300_unet_kl.py   # DistributedDataParallel

Settings are the fields of heatnet.config.Settings (`--key=value`); `--dataset NAME` and
`--data-root PATH` are shorthands. The validation split chooses best.pt; the test split is read
once, at the end, on that checkpoint. Progress goes to the terminal and TensorBoard
(`tensorboard --logdir runs`).
"""
import argparse
import os
import sys
from pathlib import Path


def main() -> int:
    from heatnet.settings_help import settings_help  # reads the settings' source: no torch import

    parser = argparse.ArgumentParser(description=__doc__, epilog=settings_help(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path, nargs="?", help="experiment file (not needed with --resume)")
    parser.add_argument("--resume", type=Path, default=None, help="run folder (its last.pt) or a checkpoint of it to continue from; "
                        "a larger --epochs / --max_steps / --time_budget_min extends a finished run")
    parser.add_argument("--run-dir", type=Path, default=None, help="where to write the run (default runs/<exp>/<time>)")
    parser.add_argument("--dataset", default=None, help="shorthand for --dataset=NAME")
    parser.add_argument("--data-root", default=None, help="shorthand for --data_root=PATH")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args, overrides = parser.parse_known_args()
    if args.experiment is None and args.resume is None:
        parser.error("give an experiment file, or --resume RUN")
    if args.dataset:
        overrides.append(f"--dataset={args.dataset}")
    if args.data_root:
        overrides.append(f"--data_root={args.data_root}")

    from heatnet.checkpoint import CheckpointError  # imported after parsing: --help answers at once
    from heatnet.config import ConfigError
    from heatnet.data import ImageError
    from heatnet.datasets import DatasetError
    from heatnet.files import SaveError
    from heatnet.models import ModelConfigError
    from heatnet.training import NonFiniteLoss, train

    is_main = os.environ.get("RANK", "0") == "0"  # under torchrun, only rank 0 reports what every process finds
    try:
        result = train(args.experiment, overrides, run_dir=args.run_dir, resume=args.resume, progress=not args.no_progress)
    except (ConfigError, DatasetError, ModelConfigError, CheckpointError) as e:
        if is_main:
            print(f"error: {e}", file=sys.stderr)
        return 2
    except (NonFiniteLoss, SaveError, ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if not is_main:
        return 0
    final, test = result["final"], result.get("test")
    print(f"done ({result['stopped_by']}, {result['steps']} steps): "
          + (f"val NME {final['nme_%']:.2f}% (best {result['best_nme']:.2f}% at epoch {result['best_epoch']}), "
             if "nme_%" in final else "")
          + (f"test NME {test['nme_%']:.2f}% on {result['selection']['checkpoint']}, " if test else "")
          + f"run: {result['run_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
