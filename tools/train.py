"""Train an experiment.

    python tools/train.py experiments/unet_kl.py [--key=value ...]
    python tools/train.py experiments/w300_unet_js.py --data-root ../shared/datasets --sigma=2 --decoder=Dark
    python tools/train.py --resume runs/unet_kl/20261122-120000      # continue from its last.pt
    python tools/train.py --resume runs/unet_kl/20261122-120000 --epochs=20   # extend a finished run
    torchrun --nproc-per-node 4 tools/train.py experiments/w300_unet_js.py   # DistributedDataParallel

Settings are `--key=value`: those every experiment shares (heatnet.config.Settings) and its
method's (`tools/train.py EXPERIMENT --help` lists them with the experiment's values); `--dataset
NAME` and `--data-root PATH` are shorthands. The validation split chooses best.pt; the test split is read
once, at the end, on that checkpoint. Progress goes to the terminal and TensorBoard
(`tensorboard --logdir runs`).
"""
import argparse
import os
import sys
from pathlib import Path

from heatnet.cli import tool


@tool
def main() -> int:
    from heatnet.config import Settings, settings_help  # torch-free: --help answers at once

    experiment = next((Path(a) for a in sys.argv[1:] if a.endswith(".py") and Path(a).is_file()), None)
    if experiment and {"-h", "--help"} & set(sys.argv):  # the experiment's values and its method's settings
        from heatnet.experiment import experiment_help
        epilog = experiment_help(experiment)  # cached: torch is imported only when the sources change
    else:
        epilog = settings_help(Settings)
    parser = argparse.ArgumentParser(description=__doc__, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path, nargs="?", help="experiment file (not needed with --resume)")
    parser.add_argument("--resume", type=Path, default=None,
                        help="run folder (its last.pt) or a checkpoint of it to continue from; a larger "
                             "--epochs / --max_steps / --time_budget_min extends a finished run")
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

    from heatnet.config import ConfigError, parse_overrides
    from heatnet.experiment import experiment_settings
    from heatnet.training import resume, train, trained_settings

    if args.resume is not None:
        if args.experiment is not None or args.run_dir is not None:
            raise ConfigError(f"--resume continues the run in its own folder with the experiment it trained; leave "
                              f"{args.experiment or '--run-dir'} out")
        changes = parse_overrides(type(trained_settings(args.resume)), overrides, owner=f"the run {args.resume}")
        result = resume(args.resume, changes, progress=not args.no_progress)
    else:
        result = train(args.experiment, experiment_settings(args.experiment, overrides), args.run_dir,
                       progress=not args.no_progress)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 reports
        print(f"done ({result.stopped_by}, {result.steps} steps): "
              + (f"val NME {result.final['nme_%']:.2f}% (best {result.best_nme:.2f}% at epoch {result.best_epoch}), "
                 if "nme_%" in result.final else "")
              + (f"test NME {result.test['nme_%']:.2f}% on {result.selection['checkpoint']}, " if result.test else "")
              + f"run: {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
