"""A run's set-up: a new run from an experiment and its settings, or a resumed one from its
checkpoint; the run folder and its files (settings.json, experiment.py, run.json); checkpoints.

The run folder is made only once set-up worked, so a configuration error leaves nothing behind,
and it is locked for the process that trains into it. In a distributed run (`world`) every
process sets up alike and joins the process group; rank 0 alone makes, locks and writes the
folder, and tells the others its name.
"""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import torch
from torch.utils.tensorboard import SummaryWriter

from heatnet import tblog
from heatnet.averaging import WeightAverage
from heatnet.checkpoint import (CheckpointError, check_compatible, load_checkpoint, load_matching_weights,
                                make_checkpoint, save_atomic)
from heatnet.config import ConfigError, Settings, from_plain, settings_dict, to_plain
from heatnet.method import Method
from heatnet.samples import LandmarkDataset
from heatnet.distributed import World
from heatnet.experiment import ExperimentSource, build_method, experiment_source, load_experiment, module_from_sources
from heatnet.files import SaveError, check_writable, lock_folder, write_atomic
from heatnet.loading import TrainingInput, make_dataset
from heatnet.runtime import Precision, choose_precision, restore_rng_state, rng_state, seed_everything, set_threads, \
    tune_allocator
from heatnet.training.budget import measure_samples_per_s, steps_for_minutes, total_steps
from heatnet.training.step import make_optimizer


@dataclass
class Progress:
    """What --resume restores besides weights, optimizer and random generators."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches done in the current epoch
    step: int = 0
    best_nme: float = math.inf
    best_epoch: int = 0
    history: list = field(default_factory=list)
    epoch_loss_sum: float = 0.0  # over the current epoch's samples so far
    epoch_samples: int = 0
    epoch_time_s: float = 0.0
    epoch_skipped: int = 0  # training samples whose image failed to decode this epoch
    samples: int = 0  # samples trained on (images that failed to decode are not counted)
    train_time_s: float = 0.0  # optimizer steps and data loading only: not validation or saving
    stopped_by: str = ""


@dataclass
class RunSetup:
    """What set-up builds before the run folder exists: settings, model, optimizer, data."""

    s: Settings
    method: Method
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    precision: Precision
    device: torch.device
    train_set: LandmarkDataset
    val_set: LandmarkDataset | None
    world: World
    train_input: TrainingInput  # the training batches, by the workers path or the device path

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_set) // self.s.batch_size

    def measure_rate(self) -> float:
        return measure_samples_per_s(self.method, self.s, self.train_input, self.device, self.precision, world=self.world)


@dataclass
class Run(RunSetup):
    """A run in training: its set-up, folder, budget and position."""

    run_dir: Path
    experiment: ExperimentSource
    budget: dict  # how the step budget was fixed: total_steps, and its conversions and extensions
    progress: Progress
    writer: SummaryWriter | tblog.NoEvents  # events are written by rank 0 only
    lock: IO | None  # held open by rank 0: no second training writes into run_dir
    train_model: torch.nn.Module | None = None  # what a training step calls: DistributedDataParallel over the model
    average: WeightAverage | None = None  # --ema_decay: the weights' moving average

    def __post_init__(self) -> None:
        self.train_model = self.train_model or self.method.model

    @property
    def inference_method(self) -> Method:
        """What validation, best.pt and the test split use: the weight average when there is one."""
        return Method(self.average.model, self.method.loss) if self.average else self.method

    @property
    def total_steps(self) -> int:
        return self.budget["total_steps"]

    @property
    def finished(self) -> bool:
        return bool(self.progress.stopped_by)


def _build(s: Settings, module, source: ExperimentSource, world: World, check_unused: bool) -> RunSetup:
    """Device, threads, seeds, data, model, optimizer: everything but the run folder."""
    world.local_batch(s.batch_size)  # a global batch that does not split evenly is a ConfigError now
    device = world.device(s.device)
    tune_allocator()
    set_threads(s.threads)
    seed_everything(s.seed)
    world = world.start(device)
    precision = choose_precision(device, s.amp)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed input sizes: let cuDNN pick its fastest kernels
    train_set = make_dataset(s, s.train_split, s.train_limit, augment=True, complete_only=s.complete_only)
    val_set = make_dataset(s, s.val_split, s.val_limit) if s.val_split else None
    method = build_method(module, s, train_set.scheme, source.module, check_unused)
    if world.distributed and device.type == "cuda":  # batch statistics over the global batch, as on one GPU
        method.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method.model)
    method.model.to(device, memory_format=torch.channels_last)
    if len(train_set) < s.batch_size:
        raise ConfigError(f"{len(train_set)} training samples is fewer than one batch of {s.batch_size}; "
                          f"lower --batch_size or raise --train_limit")
    return RunSetup(s, method, make_optimizer(method.model, s), precision.grad_scaler(), precision, device, train_set,
                    val_set, world, TrainingInput(train_set, s, device, world))


def _assemble(parts: RunSetup, run_dir: Path, source: ExperimentSource, budget: dict, progress: Progress,
              lock: IO | None, state: dict | None = None) -> Run:
    s, world = parts.s, parts.world
    average = WeightAverage(parts.method.model, s.ema_decay) if s.ema_decay else None
    if average and state is not None:
        average.model.load_state_dict(state["model"])
    writer = SummaryWriter(str(run_dir)) if world.is_main else tblog.NoEvents()
    set_up = {f.name: getattr(parts, f.name) for f in dataclasses.fields(RunSetup)}
    train_model = world.wrap(parts.method.model, parts.device)
    run = Run(**set_up, run_dir=run_dir, experiment=source, budget=budget, progress=progress, writer=writer,
              lock=lock, train_model=torch.compile(train_model) if s.compile else train_model, average=average)
    if state is not None and "rng" in state["training"]:  # last: building the model and data drew from them
        restore_rng_state(state["training"]["rng"])
    return run


def start_run(experiment: str | Path, settings: Settings | None = None, run_dir: Path | None = None,
              runs_root: Path = Path("runs"), world: World = World()) -> Run:
    """A new run of an experiment file, with its own settings or `settings` (the experiment's
    settings changed with dataclasses.replace); a time budget is converted into steps here."""
    if run_dir is not None and _checkpoints(Path(run_dir)):
        raise ConfigError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, "
                          f"or choose another --run-dir")
    if world.is_main:
        check_writable(run_dir or runs_root, "run folder")
    module = load_experiment(experiment)
    s = module.settings if settings is None else settings
    if not isinstance(s, type(module.settings)):
        raise ConfigError(f"{experiment}: its settings are a {type(module.settings).__name__}, "
                          f"not a {type(s).__name__}")
    source = experiment_source(module)
    parts = _build(s, module, source, world, check_unused=True)
    budget = {"epochs": s.epochs, "max_steps": s.max_steps}
    if s.time_budget_min and not s.max_steps:
        rate = parts.measure_rate()
        parts.s = s = dataclasses.replace(s, max_steps=steps_for_minutes(s.time_budget_min, rate, s.batch_size))
        budget.update(time_budget_min=s.time_budget_min, measured_samples_per_s=rate, max_steps=s.max_steps)
        print(f"time budget {s.time_budget_min:g} min at {rate:.1f} samples/s measured -> {s.max_steps} steps")
    if s.init_from:
        loaded, skipped = load_matching_weights(parts.method.model, load_checkpoint(Path(s.init_from))["model"])
        print(f"initialised {len(loaded)} tensors from {s.init_from}; {len(skipped)} left as built")
    budget["total_steps"] = total_steps(s, parts.steps_per_epoch)
    lock = None
    if world.is_main:
        run_dir, lock = _make_run_dir(run_dir, source, runs_root)
        _write_run_files(run_dir, parts, source, budget)
    run_dir = world.broadcast(run_dir)
    return _assemble(parts, run_dir, source, budget, Progress(), lock)


# What a resumed run may change: its budget (which extends it) and how this machine runs it.
BUDGET_SETTINGS = ("epochs", "max_steps", "time_budget_min")
RESUMABLE_SETTINGS = (*BUDGET_SETTINGS, "data_root", "workers", "threads", "device", "amp", "checkpoint_minutes",
                      "keep_last", "log_images", "device_cache_gb", "compile")


def start_resumed(resume: Path, changes: dict[str, Any] | None = None, world: World = World()) -> Run:
    """A run continued from a checkpoint: `resume` is a run folder (its last.pt; when that is
    lost, the weights and position of best.pt) or a checkpoint file of it, never another file.
    `changes` may set RESUMABLE_SETTINGS only; a larger budget extends the run."""
    run_dir, state, lock = _open_for_resume(Path(resume), world)
    stored = ExperimentSource(**state["experiment"])
    module, trained = _trained(state)
    s = dataclasses.replace(trained, **(changes or {}))
    fixed = [name for name in changed_settings(s, trained) if name not in RESUMABLE_SETTINGS]
    if fixed:
        raise ConfigError(f"--resume: {', '.join('--' + name for name in fixed)} cannot change in a resumed run (it "
                          f"trained with {', '.join(f'{n}={to_plain(getattr(trained, n))}' for n in fixed)}); only "
                          f"{', '.join('--' + name for name in RESUMABLE_SETTINGS)} may. Start a new run instead "
                          f"(--init_from=RUN/best.pt starts from its weights)")
    parts = _build(s, module, stored, world, check_unused=False)
    check_compatible(state, parts.train_set.scheme, run_dir)
    progress = _restore_training(state, parts)
    print(f"resumed {run_dir} at epoch {progress.epoch + 1}, batch {progress.batch}, step {progress.step}")
    budget = _extend_budget(parts, trained, state["training"]["budget"], progress, run_dir if world.is_main else None)
    return _assemble(parts, run_dir, stored, budget, progress, lock, state)


def trained_settings(resume: Path) -> Settings:
    """The settings a run (its folder or a checkpoint of it) trained with, as its experiment's own
    Settings subclass: what --resume's overrides are parsed against."""
    resume = Path(resume)
    if not resume.exists():
        raise ConfigError(f"--resume {resume}: no such run folder or checkpoint")
    with warnings.catch_warnings():  # start_resumed warns of a missing last.pt
        warnings.simplefilter("ignore")
        return _trained(_resume_file_state(resume) if resume.is_file() else _resume_state(resume))[1]


def _trained(state: dict) -> tuple[ModuleType, Settings]:
    module = module_from_sources(ExperimentSource(**state["experiment"]))
    return module, from_plain(type(module.settings), state["settings"])  # the experiment's own Settings subclass


def changed_settings(settings: Settings, reference: Settings) -> list[str]:
    """Names of the fields whose values differ between two settings."""
    return [f.name for f in dataclasses.fields(settings) if getattr(settings, f.name) != getattr(reference, f.name)]


def _open_for_resume(resume: Path, world: World) -> tuple[Path, dict, IO | None]:
    """The run folder, checkpoint state and (rank 0) lock of --resume FOLDER or --resume FILE."""
    run_dir = resume.parent if resume.is_file() else resume
    if not run_dir.is_dir():
        raise ConfigError(f"--resume {resume}: no such run folder or checkpoint")
    lock = None
    if world.is_main:
        lock = lock_folder(run_dir)
        for stale in run_dir.glob(".*.tmp-*"):  # left by a save that was killed mid-write
            stale.unlink()
    # every process reads it: the run folder must be visible to all
    state = _resume_file_state(resume) if resume.is_file() else _resume_state(run_dir)
    return run_dir, state, lock


def _restore_training(state: dict, parts: RunSetup) -> Progress:
    """The trained weights, optimizer and scaler states from a checkpoint; its position."""
    training = state["training"]
    parts.method.model.load_state_dict(training.get("weights", state["model"]))  # "weights": under a weight average
    if training.get("optimizer") is not None:
        parts.optimizer.load_state_dict(training["optimizer"])
        if parts.scaler is not None and training["scaler"]:
            parts.scaler.load_state_dict(training["scaler"])
    return Progress(**training["progress"])


def _extend_budget(parts: RunSetup, trained: Settings, stored: dict, progress: Progress, run_dir: Path | None) -> dict:
    """A resumed run's budget: as stored, or, when --epochs, --max_steps or --time_budget_min
    changed it, the new total, with the learning-rate schedule planned anew from the current step
    over the remaining steps (recorded in the budget, run.json and the output). A finished run
    resumed with a larger budget continues; one with the same budget stays finished."""
    s, budget = parts.s, dict(stored)
    if s.time_budget_min != trained.time_budget_min and s.max_steps == trained.max_steps:
        rate = budget.get("measured_samples_per_s") or parts.measure_rate()  # the rate the budget was converted at
        parts.s = s = dataclasses.replace(s, max_steps=steps_for_minutes(s.time_budget_min, rate, s.batch_size))
        budget.update(time_budget_min=s.time_budget_min, measured_samples_per_s=rate)
    old_total, new_total = budget["total_steps"], total_steps(s, parts.steps_per_epoch)
    if new_total == old_total:
        return budget
    if new_total <= progress.step:
        raise ConfigError(f"--resume: the run is at step {progress.step}, and the new budget ends at step "
                          f"{new_total}; give a larger --epochs, --max_steps or --time_budget_min")
    budget.update(epochs=s.epochs, max_steps=s.max_steps, total_steps=new_total, schedule_from_step=progress.step)
    budget["extensions"] = budget.get("extensions", []) + [
        {"at_step": progress.step, "previous_total_steps": old_total, "total_steps": new_total}]
    progress.stopped_by = ""
    print(f"budget changed: {old_total} -> {new_total} steps; the learning-rate schedule is planned anew from "
          f"step {progress.step} over the remaining {new_total - progress.step}")
    if run_dir is not None:
        record = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
        write_atomic(run_dir / "run.json", json.dumps({**record, "budget": budget}, indent=2).encode())
    return budget


def new_run_dir(experiment: str, runs_root: Path = Path("runs")) -> Path:
    run_dir = runs_root / Path(experiment).stem / time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while run_dir.exists():
        run_dir = run_dir.with_name(run_dir.name.split("_")[0] + f"_{n}")
        n += 1
    return run_dir


def _make_run_dir(run_dir: Path | None, source: ExperimentSource, runs_root: Path) -> tuple[Path, IO]:
    run_dir = Path(run_dir) if run_dir else new_run_dir(source.path, runs_root)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_folder(run_dir)
    if _checkpoints(run_dir):  # another training started here while this one set up
        lock.close()
        raise ConfigError(f"{run_dir} already holds a run; choose another --run-dir")
    _clear_unsaved_start(run_dir)
    return run_dir, lock


def _checkpoints(run_dir: Path) -> list[Path]:
    return [path for path in (run_dir / "last.pt", run_dir / "best.pt") if path.is_file()]


def _clear_unsaved_start(run_dir: Path) -> None:
    """A run stopped before its first checkpoint left files but nothing to resume: start over
    there, without its TensorBoard events mixed into the new run's."""
    if (run_dir / "run.json").exists():
        print(f"{run_dir}: the run there stopped before its first checkpoint; starting it over")
        for events in run_dir.glob("events.out.tfevents.*"):
            events.unlink()


def _resume_state(run_dir: Path) -> dict:
    """last.pt's state; when it is missing, best.pt's (weights and position, not the optimizer:
    the continued run differs from an uninterrupted one, and says so)."""
    if not (run_dir / "last.pt").is_file() and not (run_dir / "best.pt").is_file():
        raise CheckpointError(f"{run_dir}: nothing to resume: the run was stopped before its first save "
                              f"(no last.pt or best.pt); start it again")
    if (run_dir / "last.pt").is_file():
        return load_checkpoint(run_dir / "last.pt")
    state = load_checkpoint(run_dir / "best.pt")
    if "training" not in state:
        raise CheckpointError(f"{run_dir}: no last.pt, and its best.pt (from an older heatnet) holds no training "
                              f"position; start a new run with --init_from={run_dir / 'best.pt'}")
    progress = state["training"]["progress"]
    warnings.warn(f"{run_dir}: no last.pt; resuming from best.pt (epoch {progress['epoch']}, step {progress['step']}) "
                  f"with a fresh optimizer state, so the result will differ from an uninterrupted run", stacklevel=3)
    return state


def _resume_file_state(path: Path) -> dict:
    """--resume FILE: that checkpoint's state, never another file's. A best.pt holds the weights
    and position but no optimizer state, and the result then differs from an uninterrupted run."""
    state = load_checkpoint(path)
    if "training" not in state:
        raise CheckpointError(f"--resume {path}: this checkpoint holds no training position (an exported or older "
                              f"one); start a new run from its weights with --init_from={path}")
    if "optimizer" not in state["training"]:
        progress = state["training"]["progress"]
        warnings.warn(f"{path}: resuming from it (epoch {progress['epoch']}, step {progress['step']}) with a fresh "
                      f"optimizer state, so the result will differ from an uninterrupted run", stacklevel=3)
    return state


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if commit.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _write_run_files(run_dir: Path, parts: RunSetup, source: ExperimentSource, budget: dict) -> None:
    (run_dir / "settings.json").write_text(json.dumps(settings_dict(parts.s), indent=2))
    (run_dir / "experiment.py").write_text(source.sources[source.module])
    (run_dir / "run.json").write_text(json.dumps({
        "experiment": source.path, "git_commit": _git_commit(), "command": sys.argv, "device": str(parts.device),
        "input": parts.train_input.describe(), "precision": str(parts.precision.dtype or torch.float32), "torch": torch.__version__, "budget": budget,
        "processes": parts.world.size, "backend": parts.world.backend or "none (one process)",
        "train_samples": len(parts.train_set), "val_samples": len(parts.val_set or [])}, indent=2))


def save_checkpoint(run: Run, name: str) -> None:
    """last.pt: everything --resume needs; best.pt: the weights, how to rebuild them, and the
    run's position (--resume falls back to it when last.pt is lost). Under a weight average, a
    checkpoint's model is the average, and last.pt also keeps the trained weights. A failed save
    keeps the previous file and stops the run with a message naming the newest good checkpoint.
    Rank 0 saves; the other processes hold the same weights and position."""
    if not run.world.is_main:
        return
    training = {"progress": dataclasses.asdict(run.progress), "budget": run.budget}
    if name == "last.pt":
        training.update(optimizer=run.optimizer.state_dict(), scaler=run.scaler.state_dict() if run.scaler else None,
                        rng=rng_state())
        if run.average:
            training["weights"] = run.method.model.state_dict()
    state = make_checkpoint(run.inference_method.model, run.s, run.experiment, run.train_set.scheme, run.method.codec,
                            training)
    try:
        save_atomic(state, run.run_dir / name)
    except SaveError as e:
        kept = sorted(_checkpoints(run.run_dir), key=lambda path: path.stat().st_mtime)
        raise SaveError(e.errno, f"{e.strerror}; the newest good checkpoint is {kept[-1] if kept else 'none yet'}; "
                        f"free space, then --resume {run.run_dir}") from None
