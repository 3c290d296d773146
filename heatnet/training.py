"""Training, in stages that read top to bottom:

    run = start_run("experiments/unet_kl.py", ["--epochs=3"])  # settings, data, model; or resume
    while not run.finished:
        train_epoch(run)         # optimizer steps to the end of the epoch or of the step budget
        validate_and_save(run)   # val metrics, best.pt (chosen on val), last.pt, early stopping
    finish(run)                  # the test split, once, on the chosen checkpoint -> metrics.json

`train(...)` does all of it. The protocol: only the validation split chooses (best.pt, early
stopping); the test split is read once, after training. The budget is a number of steps fixed
before the first one (a wall-clock budget is converted once, by timing a few steps on a copy,
and recorded), and the learning rate is a function of the step, so a run, or a run killed and
resumed, ends with the same weights.

Writes runs/<experiment>/<time>/: settings.json, experiment.py, run.json (git commit, command,
device, processes, budget), TensorBoard events, metrics.json, best.pt and last.pt. Under torchrun
the same code runs in every process (heatnet.distributed): rank 0 writes, all train and evaluate.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from heatnet import tblog
from heatnet.averaging import WeightAverage
from heatnet.checkpoint import (CheckpointError, check_compatible, load_checkpoint, load_matching_weights, make_checkpoint,
                                save_atomic)
from heatnet.config import ConfigError, Method, Settings, apply_overrides, from_plain, settings_dict, to_plain
from heatnet.data import ImageError, LandmarkDataset, has_samples, warn_skipped
from heatnet.distributed import ShardSampler, World, step_seed, world_from_environment
from heatnet.evaluation import Evaluation, evaluate, merge_evaluations, to_device_batch
from heatnet.experiment import ExperimentSource, build_method, experiment_source, load_experiment, module_from_sources
from heatnet.files import SaveError, check_writable, lock_folder, write_atomic
from heatnet.loading import EpochSampler, make_dataset, make_loader
from heatnet.runtime import (Precision, choose_precision, restore_rng_state, rng_state, seed_everything, set_threads,
                             tune_allocator)
from heatnet.schedules import lr_factor
from heatnet.errors import HeatnetError


class NonFiniteLoss(HeatnetError, RuntimeError):
    """Training diverged; the last good checkpoint is kept."""

    same_in_every_process = False


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
class Run:
    s: Settings
    run_dir: Path
    experiment: ExperimentSource
    method: Method
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    precision: Precision
    device: torch.device
    train_set: LandmarkDataset
    val_set: LandmarkDataset | None
    total_steps: int
    budget: dict  # how the step budget was fixed
    progress: Progress
    writer: SummaryWriter | tblog.NoEvents  # events are written by rank 0 only
    lock: IO | None  # held open by rank 0: no second training writes into run_dir
    world: World = World()
    train_model: torch.nn.Module | None = None  # what a training step calls: DistributedDataParallel over the model
    average: WeightAverage | None = None  # --ema_decay: the weights' moving average

    def __post_init__(self) -> None:
        self.train_model = self.train_model or self.method.model

    @property
    def inference_method(self) -> Method:
        """What validation, best.pt and the test split use: the weight average when there is one."""
        return Method(self.average.model, self.method.loss) if self.average else self.method

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_set) // self.s.batch_size

    @property
    def finished(self) -> bool:
        return bool(self.progress.stopped_by)


def make_optimizer(model: torch.nn.Module, s: Settings) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)


def training_step(method: Method, optimizer, scaler, precision: Precision, grad_clip: float, batch: dict,
                  lr: float, device: torch.device, model: torch.nn.Module | None = None) -> float:
    """One optimizer step on a batch; returns its loss. Raises NonFiniteLoss before the update.
    `model` (default: the method's) runs the forward pass: a DistributedDataParallel wrapper
    averages the gradients of all processes during backward."""
    images, points, visibility = to_device_batch(batch, device)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with precision.autocast():
        outputs = (model or method.model)(images)  # (B, K, H, W) heatmaps or (B, K, 2) coordinates
    loss = method.loss(outputs, points, visibility)
    if not torch.isfinite(loss):
        raise NonFiniteLoss(f"loss became {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler else loss).backward()
    if scaler:
        scaler.unscale_(optimizer)  # clip the true gradients
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(method.model.parameters(), grad_clip)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.item()


def measure_samples_per_s(method: Method, s: Settings, train_set, device, precision: Precision,
                          warmup: int = 3, steps: int = 10, world: World = World()) -> float:
    """Training throughput (data loading included) timed on a copy of the model and optimizer;
    the run's own weights and random generators are left as they were. In a distributed run
    each process times its share of the global batch (gradient exchange not included) and the
    rate is of global batches; every process gets rank 0's figure."""
    saved = rng_state()
    probe = copy.deepcopy(method)
    optimizer, scaler = make_optimizer(probe.model, s), precision.grad_scaler()
    loader = make_loader(train_set, s, EpochSampler(len(train_set), s.seed, 0, 0, world, s.batch_size), drop_last=True,
                         batch_size=world.local_batch(s.batch_size))
    batches = (batch for _ in range(warmup + steps) for batch in loader)
    batches = (batch for batch in batches if has_samples(batch))
    for i, batch in zip(range(warmup + steps), batches):
        if i == warmup:
            start = time.perf_counter()
        training_step(probe, optimizer, scaler, precision, s.grad_clip, batch, s.lr * 1e-3, device)
    rate = steps * s.batch_size / (time.perf_counter() - start)
    restore_rng_state(saved)
    return world.broadcast(rate)


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if commit.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def new_run_dir(experiment: str, runs_root: Path = Path("runs")) -> Path:
    run_dir = runs_root / Path(experiment).stem / time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while run_dir.exists():
        run_dir = run_dir.with_name(run_dir.name.split("_")[0] + f"_{n}")
        n += 1
    return run_dir


# What a resumed run may change: its budget (which extends it) and how this machine runs it.
BUDGET_SETTINGS = ("epochs", "max_steps", "time_budget_min")
RESUMABLE_SETTINGS = (*BUDGET_SETTINGS, "data_root", "workers", "threads", "device", "amp", "checkpoint_minutes",
                      "keep_last", "log_images")


def _settings_and_experiment(experiment, overrides, resume_state) -> tuple[Settings, ExperimentSource, object]:
    """A new run's settings come from its experiment file; a resumed one's from its checkpoint,
    rebuilt from the experiment sources it stored, where only RESUMABLE_SETTINGS may change."""
    if resume_state is None:
        module = load_experiment(experiment)
        return apply_overrides(module.settings, overrides), experiment_source(module), module
    stored = ExperimentSource(**resume_state["experiment"])
    if experiment is not None and Path(experiment).resolve() != Path(stored.path):
        raise ConfigError(f"--resume: that run trained {stored.path}, not {Path(experiment).resolve()}; "
                          f"leave the experiment out to resume it")
    module = module_from_sources(stored)
    trained = from_plain(type(module.settings), resume_state["settings"])  # the experiment's own Settings subclass
    settings = apply_overrides(trained, overrides)
    fixed = [name for name in changed_settings(settings, trained) if name not in RESUMABLE_SETTINGS]
    if fixed:
        raise ConfigError(f"--resume: {', '.join('--' + name for name in fixed)} cannot change in a resumed run (it "
                          f"trained with {', '.join(f'{n}={to_plain(getattr(trained, n))}' for n in fixed)}); only "
                          f"{', '.join('--' + name for name in RESUMABLE_SETTINGS)} may. Start a new run instead "
                          f"(--init_from=RUN/best.pt starts from its weights)")
    return settings, stored, module


def changed_settings(settings: Settings, reference: Settings) -> list[str]:
    """Names of the fields whose values differ between two settings."""
    return [f.name for f in dataclasses.fields(settings) if getattr(settings, f.name) != getattr(reference, f.name)]


def start_run(experiment: str | Path | None, overrides: list[str] | None = None, run_dir: Path | None = None,
              resume: Path | None = None, runs_root: Path = Path("runs"), world: World = World()) -> Run:
    """Set-up: settings, data, model and optimizer; the run folder is made only once all of
    that worked, so a configuration error leaves nothing behind, and it is locked for this
    process. With `resume` (a run folder, or one of its checkpoints), everything is restored from
    that checkpoint (a folder: its last.pt, or, when that is lost, the weights and position of
    best.pt), and a larger budget extends the run. In a distributed run (`world`) every process
    sets up alike and joins the process group; rank 0 alone makes, locks and writes the folder,
    and tells the others its name."""
    state, lock = None, None
    if resume is not None:
        run_dir, state, lock = _open_for_resume(Path(resume), world)
    elif run_dir is not None and _checkpoints(Path(run_dir)):
        raise ConfigError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, "
                          f"or choose another --run-dir")
    if world.is_main:
        check_writable(run_dir or runs_root, "run folder")
    s, source, module = _settings_and_experiment(experiment, overrides or [], state)
    world.local_batch(s.batch_size)  # a global batch that does not split evenly is a ConfigError now
    device = world.device(s.device)
    tune_allocator()
    set_threads(s.threads)
    seed_everything(s.seed)
    world = world.start(device)
    precision = choose_precision(device, s.amp)
    train_set = make_dataset(s, s.train_split, s.train_limit, augment=True, complete_only=s.complete_only)
    val_set = make_dataset(s, s.val_split, s.val_limit) if s.val_split else None
    method = build_method(module, s, train_set.scheme, source.module, check_unused=state is None)
    if world.distributed and device.type == "cuda":  # batch statistics over the global batch, as on one GPU
        method.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method.model)
    method.model.to(device, memory_format=torch.channels_last)
    optimizer, scaler = make_optimizer(method.model, s), precision.grad_scaler()
    steps_per_epoch = len(train_set) // s.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"{len(train_set)} training samples is fewer than one batch of {s.batch_size}; "
                          f"lower --batch_size or raise --train_limit")
    measure = lambda: measure_samples_per_s(method, s, train_set, device, precision, world=world)  # noqa: E731
    if state is not None:
        check_compatible(state, train_set.scheme, run_dir)
        progress = _restore_training(state, method, optimizer, scaler)
        print(f"resumed {run_dir} at epoch {progress.epoch + 1}, batch {progress.batch}, step {progress.step}")
        s, budget = _extend_budget(s, state, progress, steps_per_epoch, measure, run_dir if world.is_main else None)
    else:
        progress, budget = Progress(), {"epochs": s.epochs, "max_steps": s.max_steps}
        if s.time_budget_min and not s.max_steps:
            rate = measure()
            s = dataclasses.replace(s, max_steps=steps_for_minutes(s.time_budget_min, rate, s.batch_size))
            budget.update(time_budget_min=s.time_budget_min, measured_samples_per_s=rate, max_steps=s.max_steps)
            print(f"time budget {s.time_budget_min:g} min at {rate:.1f} samples/s measured -> {s.max_steps} steps")
        if s.init_from:
            loaded, skipped = load_matching_weights(method.model, load_checkpoint(Path(s.init_from))["model"])
            print(f"initialised {len(loaded)} tensors from {s.init_from}; {len(skipped)} left as built")
        budget["total_steps"] = total_steps(s, steps_per_epoch)
        if world.is_main:
            run_dir, lock = _make_run_dir(run_dir, source, runs_root)
            _write_run_files(run_dir, s, source, device, precision, budget, len(train_set), len(val_set or []), world)
        run_dir = world.broadcast(run_dir)
    average = WeightAverage(method.model, s.ema_decay) if s.ema_decay else None
    if average and state is not None:
        average.model.load_state_dict(state["model"])
    writer = SummaryWriter(str(run_dir)) if world.is_main else tblog.NoEvents()
    run = Run(s, run_dir, source, method, optimizer, scaler, precision, device, train_set, val_set,
              budget["total_steps"], budget, progress, writer, lock, world, world.wrap(method.model, device), average)
    if state is not None and "rng" in state["training"]:  # last: building the model and data drew from them
        restore_rng_state(state["training"]["rng"])
    return run


def total_steps(s: Settings, steps_per_epoch: int) -> int:
    """The step budget: the epochs, or max_steps when that comes first."""
    return min(s.epochs * steps_per_epoch, s.max_steps or math.inf)


def steps_for_minutes(minutes: float, samples_per_s: float, batch_size: int) -> int:
    """A time budget as optimizer steps at a measured training rate (at least one)."""
    return max(1, round(minutes * 60 * samples_per_s / batch_size))


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


def _restore_training(state: dict, method: Method, optimizer, scaler) -> Progress:
    """The trained weights, optimizer and scaler states from a checkpoint; its position."""
    training = state["training"]
    method.model.load_state_dict(training.get("weights", state["model"]))  # "weights": under a weight average
    optimizer_state = training.get("optimizer")
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
        if scaler is not None and training["scaler"]:
            scaler.load_state_dict(training["scaler"])
    return Progress(**training["progress"])


def _extend_budget(s: Settings, state: dict, progress: Progress, steps_per_epoch: int, measure,
                   run_dir: Path | None) -> tuple[Settings, dict]:
    """A resumed run's budget: as stored, or, when --epochs, --max_steps or --time_budget_min
    changed it, the new total, with the learning-rate schedule planned anew from the current step
    over the remaining steps (recorded in the budget, run.json and the output). A finished run
    resumed with a larger budget continues; one with the same budget stays finished."""
    budget = dict(state["training"]["budget"])
    trained = from_plain(type(s), state["settings"])
    if s.time_budget_min != trained.time_budget_min and s.max_steps == trained.max_steps:
        rate = budget.get("measured_samples_per_s") or measure()  # the rate the run's budget was converted at
        s = dataclasses.replace(s, max_steps=steps_for_minutes(s.time_budget_min, rate, s.batch_size))
        budget.update(time_budget_min=s.time_budget_min, measured_samples_per_s=rate)
    old_total, new_total = budget["total_steps"], total_steps(s, steps_per_epoch)
    if new_total == old_total:
        return s, budget
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
    return s, budget


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
    if (run_dir / "last.pt").is_file() or not (run_dir / "best.pt").is_file():
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


def _write_run_files(run_dir: Path, s: Settings, source: ExperimentSource, device, precision: Precision,
                     budget: dict, train_samples: int, val_samples: int, world: World) -> None:
    (run_dir / "settings.json").write_text(json.dumps(settings_dict(s), indent=2))
    (run_dir / "experiment.py").write_text(source.sources[source.module])
    (run_dir / "run.json").write_text(json.dumps({
        "experiment": source.path, "git_commit": _git_commit(), "command": sys.argv, "device": str(device),
        "precision": str(precision.dtype or torch.float32), "torch": torch.__version__, "budget": budget,
        "processes": world.size, "backend": world.backend or "none (one process)",
        "train_samples": train_samples, "val_samples": val_samples}, indent=2))


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


def train_epoch(run: Run, show_progress: bool = True) -> None:
    """Optimizer steps from the saved position to the end of the epoch, or of the step budget."""
    s, p = run.s, run.progress
    last_batch = min(run.steps_per_epoch, run.total_steps - p.epoch * run.steps_per_epoch)
    run.train_set.set_epoch(p.epoch)
    sampler = EpochSampler(len(run.train_set), s.seed, p.epoch, p.batch * s.batch_size, run.world, s.batch_size)
    loader = make_loader(run.train_set, s, sampler, drop_last=True, batch_size=run.world.local_batch(s.batch_size))
    # one bar over the whole budget, so its ETA is the run's (a time budget may end mid-epoch)
    epochs = math.ceil(run.total_steps / run.steps_per_epoch)
    bar = tqdm(total=run.total_steps, initial=p.step, desc=f"epoch {p.epoch + 1}/{epochs}",
               disable=not (show_progress and run.world.is_main),
               mininterval=2, dynamic_ncols=True, unit="step")
    run.method.model.train()
    tick = last_save = time.monotonic()
    skipped, loss = [], math.nan
    for batch in loader:
        if p.batch >= last_batch:
            break
        start = run.budget.get("schedule_from_step", 0)  # where a changed budget planned the schedule anew
        lr = s.lr * lr_factor(s.schedule, s.warmup_epochs, p.step - start, run.total_steps - start, run.steps_per_epoch)
        skipped += batch["skipped"]
        torch.manual_seed(step_seed(s.seed, run.world.rank, p.step))  # dropout draws follow from the position
        count, loss_sum = 0, 0.0
        if has_samples(batch):  # else every image of the batch failed to decode: its step passes without an update
            try:
                loss = training_step(run.method, run.optimizer, run.scaler, run.precision, s.grad_clip, batch, lr,
                                     run.device, run.train_model)
            except NonFiniteLoss as e:
                raise NonFiniteLoss(f"{e} at epoch {p.epoch + 1}, step {p.step}; the last good checkpoint "
                                    f"{run.run_dir / 'last.pt'} is kept. Try a lower --lr or --grad_clip.") from None
            count, loss_sum = len(batch["image"]), loss * len(batch["image"])
            if run.average:
                run.average.update(p.step + 1)
        elif run.world.distributed:  # the other processes wait in their gradient exchange for this one
            raise ImageError(f"process {run.world.rank}: no image of its share of batch {p.batch} could be read; "
                             f"first: {batch['skipped'][0]}. Remove the bad images (tools/check_data.py lists them)")
        # the loss and counts of the whole global batch, the same in every process (and so in last.pt)
        loss_sum, count, bad = run.world.sum([loss_sum, count, len(batch["skipped"])], run.device)
        loss = loss_sum / count if count else math.nan
        p.epoch_loss_sum, p.epoch_samples, p.epoch_skipped = p.epoch_loss_sum + loss_sum, p.epoch_samples + int(count), \
            p.epoch_skipped + int(bad)
        p.samples += int(count)
        p.step, p.batch = p.step + 1, p.batch + 1
        now = time.monotonic()
        p.train_time_s += now - tick  # this step and the wait for its batch
        p.epoch_time_s += now - tick
        tick = now
        bar.update()
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if p.step % min(10, run.steps_per_epoch) == 0 and count:
            run.writer.add_scalar("train/loss", loss, p.step)
            run.writer.add_scalar("train/lr", lr, p.step)
        if now - last_save > s.checkpoint_minutes * 60:
            save_checkpoint(run, "last.pt")
            tick = last_save = time.monotonic()
    bar.close()
    warn_skipped(f"{s.dataset}/{s.train_split} epoch {p.epoch + 1}", skipped)


def validate_and_save(run: Run, show_progress: bool = True) -> None:
    """End of an epoch (or of the budget): validate, keep best.pt by val NME, save last.pt,
    and decide whether to stop."""
    s, p = run.s, run.progress
    rate = p.epoch_samples / max(p.epoch_time_s, 1e-9)
    entry = {"epoch": p.epoch + 1, "step": p.step, "train_loss": p.epoch_loss_sum / max(p.epoch_samples, 1),
             "samples_per_s": rate, "train_skipped": p.epoch_skipped}
    run.writer.add_scalar("train/epoch_loss", entry["train_loss"], p.step)
    run.writer.add_scalar("train/samples_per_s", rate, p.step)
    improved = False
    if run.val_set is not None:
        result = evaluate_split(run, run.val_set, f"{s.dataset}/{s.val_split}" if show_progress else "")
        entry.update(result.summary(), val_skipped=len(result.skipped))
        if run.world.is_main:
            tblog.log_validation(run.writer, run.inference_method, run.val_set, result, entry, p.step, run.device,
                                 s.log_images)
        improved = entry["nme_%"] < p.best_nme
        print(f"epoch {entry['epoch']}: train loss {entry['train_loss']:.4f}, val NME {entry['nme_%']:.2f}%, "
              f"MAE {entry['mae_px']:.2f} px, {rate:.1f} img/s")
    else:
        print(f"epoch {entry['epoch']}: train loss {entry['train_loss']:.4f}, {rate:.1f} img/s (no validation split)")
    p.history.append(entry)
    p.epoch, p.batch, p.epoch_loss_sum, p.epoch_samples, p.epoch_time_s, p.epoch_skipped = p.epoch + 1, 0, 0.0, 0, 0.0, 0
    if improved:
        p.best_nme, p.best_epoch = entry["nme_%"], p.epoch
        save_checkpoint(run, "best.pt")
    if p.step >= run.total_steps:
        p.stopped_by = "step budget" if run.total_steps < s.epochs * run.steps_per_epoch else "epochs"
    elif s.early_stop_patience and run.val_set is not None and p.epoch - p.best_epoch >= s.early_stop_patience:
        p.stopped_by = "early stopping"
    save_checkpoint(run, "last.pt")


def finish(run: Run, show_progress: bool = True) -> dict:
    """Evaluate the test split once, on the chosen checkpoint; write metrics.json."""
    s = run.s
    chosen = "best.pt" if run.val_set is not None and (run.run_dir / "best.pt").is_file() else "last.pt"
    chosen = run.world.broadcast(chosen)  # as rank 0, which wrote the files, sees them
    result = run_summary(run, chosen)
    if s.test_split:
        model = run.inference_method.model
        if run.world.is_main:  # and from rank 0 to the others: no shared file system needed
            model.load_state_dict(load_checkpoint(run.run_dir / chosen)["model"])
        run.world.broadcast_weights(model)
        test_set = make_dataset(s, s.test_split, s.test_limit)
        evaluation = evaluate_split(run, test_set, f"{s.dataset}/{s.test_split}" if show_progress else "")
        result["test"] = {"split": s.test_split, "checkpoint": chosen, "normaliser": test_set.source.normaliser.value,
                          "flip_test": s.flip_test, **evaluation.summary(), "skipped": evaluation.skipped,
                          "per_image_nme": evaluation.errors.per_image().tolist()}
        print(f"test ({s.dataset}/{s.test_split}, {chosen}): NME {result['test']['nme_%']:.2f}%")
    if run.world.is_main:
        write_atomic(run.run_dir / "metrics.json", json.dumps(result, indent=2).encode())
        if not s.keep_last and chosen != "last.pt":
            (run.run_dir / "last.pt").unlink()
        tblog.log_hparams(run.writer, s, result)
    run.writer.close()
    return result


# How a run that did not reach its end stopped: its metrics.json holds the history so far, no test.
UNFINISHED = ("interrupted", "save failed")


def run_summary(run: Run, chosen: str, stopped_by: str = "") -> dict:
    """metrics.json's contents without the test: the history, position and budget."""
    p = run.progress
    return {"final": p.history[-1] if p.history else {}, "best_nme": p.best_nme, "best_epoch": p.best_epoch,
            "selection": {"checkpoint": chosen, "rule": "lowest validation NME" if chosen == "best.pt"
                          else "last checkpoint (no validation split)"},
            "stopped_by": stopped_by or p.stopped_by, "steps": p.step, "samples": p.samples,
            "train_time_s": p.train_time_s, "budget": run.budget, "history": p.history, "run_dir": str(run.run_dir)}


def write_unfinished(run: Run, stopped_by: str) -> None:
    """metrics.json for a run stopped before its end (Ctrl-C, a failed save): what it has done so
    far, so it can be read without resuming; --resume continues it and rewrites the file."""
    if run.world.is_main:
        with contextlib.suppress(OSError):  # after a failed save the disk may still be full
            write_atomic(run.run_dir / "metrics.json", json.dumps(run_summary(run, "last.pt", stopped_by), indent=2).encode())


def evaluate_split(run: Run, dataset: LandmarkDataset, progress: str = "") -> Evaluation:
    """The run's model over a split; in a distributed run each process evaluates every N-th
    sample and all get the merged result (in dataset order, as one process would)."""
    s, world = run.s, run.world
    sampler = ShardSampler(len(dataset), world) if world.distributed else None
    local = None
    if sampler is None or len(sampler):
        local = evaluate(run.inference_method, make_loader(dataset, s, sampler), run.device, flip_test=s.flip_test,
                         precision=run.precision, progress=progress if world.is_main else "")
    return merge_evaluations(world.gather(local))


def train(experiment: str | Path | None, overrides: list[str] | None = None, run_dir: Path | None = None,
          resume: Path | None = None, runs_root: Path = Path("runs"), progress: bool = True) -> dict:
    """Train an experiment (or resume a run folder); returns the final metrics (also in
    run_dir/metrics.json). Under torchrun, every process calls this; only rank 0 prints."""
    world = world_from_environment()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(sys.stdout if world.is_main else devnull):
        run = None
        try:
            run = start_run(experiment, overrides, run_dir, resume, runs_root, world)
            done = _finished_result(run)
            if done is not None:
                return done
            while not run.finished:
                train_epoch(run, progress)
                validate_and_save(run, progress)
            return finish(run, progress)
        except KeyboardInterrupt:
            if run is not None:
                save_checkpoint(run, "last.pt")
                write_unfinished(run, "interrupted")
                print(f"\ninterrupted: saved {run.run_dir / 'last.pt'}; continue with --resume {run.run_dir}")
            raise
        except SaveError:
            if run is not None:
                write_unfinished(run, "save failed")
            raise
        finally:
            if run is not None:
                run.writer.close()
                if run.lock:
                    run.lock.close()


def _finished_result(run: Run) -> dict | None:
    """A finished run resumed without a larger budget: its stored metrics, nothing trained, the
    test split not read again. None when there is work left (or the test was never recorded)."""
    metrics = run.run_dir / "metrics.json"
    if not run.finished or not metrics.is_file():
        return None
    result = json.loads(metrics.read_text())
    if result.get("stopped_by") in UNFINISHED:
        return None
    print(f"{run.run_dir}: finished ({run.progress.stopped_by}, {run.progress.step} steps); nothing to train, "
          f"and the test split is not read again. To continue it, give a larger --epochs, --max_steps or "
          f"--time_budget_min")
    return result


def train_seeds(experiment: str | Path, overrides: list[str], seeds: int, runs_dir: Path,
                progress: bool = False) -> list[dict]:
    """Train seeds 0..seeds-1 into runs_dir/seed<N> under one step budget: a time budget is
    converted into steps on seed 0 and replayed on the others. A seed whose run finished is read
    back from its metrics.json and one that was interrupted is resumed, so a killed benchmark or
    sweep continues where it stopped. Returns each run's metrics (see `finish`)."""
    results, steps = [], None
    for seed in range(seeds):
        run_dir = Path(runs_dir) / f"seed{seed}"
        finished = (run_dir / "metrics.json").is_file() and \
            json.loads((run_dir / "metrics.json").read_text())["stopped_by"] not in UNFINISHED
        if finished:
            result = json.loads((run_dir / "metrics.json").read_text())
        elif (run_dir / "last.pt").is_file():
            result = train(None, [], resume=run_dir, progress=progress)
        else:
            fixed = [f"--max_steps={steps}"] if steps else []
            result = train(experiment, overrides + [f"--seed={seed}"] + fixed, run_dir=run_dir, progress=progress)
        steps = steps or result["budget"]["total_steps"]
        results.append(result)
    return results

