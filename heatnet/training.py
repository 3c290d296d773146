"""The training loop: one explicit function, read top to bottom.

    run = train("experiments/unet_kl.py", overrides=["--epochs=3"])

Writes runs/<experiment>/<time>/ with settings.json, a copy of the experiment file, run.json
(git commit, command, device), TensorBoard events, metrics.json, best.pt and last.pt.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from heatnet.augment import Augmentation
from heatnet.checkpoint import (check_compatible, load_checkpoint, load_matching_weights, make_checkpoint,
                                save_atomic)
from heatnet.config import ConfigError, Method, Settings, apply_overrides, load_experiment
from heatnet.data import FirstN, LandmarkDataset
from heatnet.datasets import load_split
from heatnet.evaluation import evaluate, to_device_batch
from heatnet.runtime import choose_device, seed_everything, set_threads, tune_allocator
from heatnet import tblog


class NonFiniteLoss(RuntimeError):
    """Training diverged; the last good checkpoint is kept."""


class EpochSampler(torch.utils.data.Sampler):
    """A permutation fixed by (seed, epoch), from sample `start` on: a resumed epoch sees the
    same order as an uninterrupted one."""

    def __init__(self, length: int, seed: int, epoch: int, start: int = 0):
        self.length, self.seed, self.epoch, self.start = length, seed, epoch, start

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=g)[self.start :].tolist())

    def __len__(self) -> int:
        return self.length - self.start


def lr_factor(s: Settings, epoch_progress: float, progress: float) -> float:
    """Multiplier of the base LR: linear warm-up over `warmup_epochs`, then the schedule.
    `progress` in [0, 1] is the larger of the step and wall-clock fractions of the budget."""
    warm = min(1.0, (epoch_progress + 1e-9) / s.warmup_epochs) if s.warmup_epochs > 0 else 1.0
    if s.schedule == "cosine":
        decay = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    elif s.schedule == "step":
        decay = s.gamma ** int(epoch_progress // s.step_epochs)
    elif s.schedule == "exponential":
        decay = s.gamma**epoch_progress
    else:
        decay = 1.0
    return warm * decay


def make_dataset(s: Settings, split: str, limit: int = 0, augment: bool = False) -> LandmarkDataset:
    """One split of the settings' dataset as fixed-size crops (the first `limit` samples when
    limit > 0), with the training augmentation when `augment` and the settings allow it."""
    source = load_split(s.dataset, split, Path(s.data_root) if s.data_root else None, s.strict_data)
    if limit:
        source = FirstN(source, limit)
    augmentation = Augmentation(rotation_deg=s.rotation_deg) if augment and s.augment else None
    return LandmarkDataset(source, s.input_size, s.channels, s.box_scale, augmentation, s.seed)


def make_loader(dataset, s: Settings, sampler=None, drop_last: bool = False):
    return torch.utils.data.DataLoader(
        dataset, batch_size=s.batch_size, sampler=sampler, num_workers=s.workers, drop_last=drop_last,
        pin_memory=torch.cuda.is_available(), persistent_workers=False,
        multiprocessing_context="fork" if s.workers and sys.platform == "linux" else None)


def build_method(module, s: Settings, scheme) -> Method:
    method = module.build(s, scheme)
    method.model.check_input_size(s.input_size)
    return method


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if commit.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def new_run_dir(experiment: Path, runs_root: Path = Path("runs")) -> Path:
    run_dir = runs_root / experiment.stem / time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while run_dir.exists():
        run_dir = run_dir.with_name(run_dir.name.split("_")[0] + f"_{n}")
        n += 1
    run_dir.mkdir(parents=True)
    return run_dir


def train(experiment: str | Path, overrides: list[str] | None = None, run_dir: Path | None = None,
          resume: Path | None = None, runs_root: Path = Path("runs"), progress: bool = True) -> dict:
    """Train an experiment; returns the final metrics (also in run_dir/metrics.json)."""
    experiment = Path(experiment).resolve()  # checkpoints record where to rebuild the model from
    module = load_experiment(experiment)
    experiment_source = experiment.read_text()
    state = None
    if resume is not None:
        run_dir = Path(resume)
        for stale in run_dir.glob(".*.tmp-*"):  # left by a save that was killed mid-write
            stale.unlink()
        state = load_checkpoint(run_dir / "last.pt")
        s = apply_overrides(Settings(**state["settings"]), overrides or [])
    else:
        s = apply_overrides(module.settings, overrides or [])
        run_dir = Path(run_dir) if run_dir else new_run_dir(experiment, runs_root)
        run_dir.mkdir(parents=True, exist_ok=True)
    tune_allocator()
    set_threads(s.threads)
    seed_everything(s.seed)
    device = choose_device(s.device)
    amp = s.amp and device.type == "cuda"

    train_set = make_dataset(s, s.train_split, s.train_limit, augment=True)
    val_set = make_dataset(s, s.val_split, s.val_limit)
    scheme = train_set.scheme
    method = build_method(module, s, scheme)
    model = method.model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    epoch, start_batch, step, best, best_epoch, history = 0, 0, 0, math.inf, -1, []
    elapsed_before = 0.0
    if state is not None:
        check_compatible(state, scheme, run_dir / "last.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, start_batch, step = state["epoch"], state["batch"], state["step"]
        best, best_epoch, history = state["best_nme"], state["best_epoch"], json.loads(state["history"])
        elapsed_before = state["elapsed_s"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed {run_dir} at epoch {epoch}, batch {start_batch}")
    else:
        if s.init_from:
            init = load_checkpoint(Path(s.init_from))
            loaded, skipped = load_matching_weights(model, init["model"])
            print(f"initialised {len(loaded)} tensors from {s.init_from}; {len(skipped)} left as built")
        (run_dir / "settings.json").write_text(json.dumps(dataclasses.asdict(s), indent=2))
        shutil.copy(experiment, run_dir / "experiment.py")
        (run_dir / "run.json").write_text(json.dumps({
            "experiment": str(experiment), "git_commit": _git_commit(), "command": sys.argv,
            "device": str(device), "torch": torch.__version__, "train_samples": len(train_set),
            "val_samples": len(val_set)}, indent=2))
    steps_per_epoch = len(train_set) // s.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"{len(train_set)} training samples is fewer than one batch of {s.batch_size}; "
                          f"lower --batch_size or raise --train_limit")
    total_steps = steps_per_epoch * s.epochs
    log_every = min(10, steps_per_epoch)  # train scalars every 10 steps, or each epoch when shorter
    budget_s = s.time_budget_min * 60
    writer = SummaryWriter(str(run_dir))
    val_loader = make_loader(val_set, s)

    def checkpoint(name: str, batch: int) -> None:
        save_atomic(make_checkpoint(
            model, s, experiment, experiment_source, scheme, method.codec, optimizer=optimizer.state_dict(), epoch=epoch,
            batch=batch, step=step, best_nme=best, best_epoch=best_epoch, history=json.dumps(history),
            elapsed_s=elapsed_before + time.monotonic() - started, torch_rng=torch.get_rng_state()),
            run_dir / name)

    started = time.monotonic()
    last_save = started
    stop_reason = "epochs"
    batches_done = start_batch
    try:
        while epoch < s.epochs:
            train_set.set_epoch(epoch)
            sampler = EpochSampler(len(train_set), s.seed, epoch, start_batch * s.batch_size)
            loader = make_loader(train_set, s, sampler, drop_last=True)
            model.train()
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{s.epochs}", initial=start_batch, total=steps_per_epoch,
                       disable=not progress, mininterval=2, dynamic_ncols=True, unit="batch")
            seen, epoch_start, loss_sum = 0, time.monotonic(), 0.0
            for batch, data in enumerate(bar, start=start_batch):
                images, points, visibility = to_device_batch(data, device)
                elapsed = elapsed_before + time.monotonic() - started
                progress_frac = max(step / total_steps, elapsed / budget_s if budget_s else 0.0)
                lr = s.lr * lr_factor(s, step / steps_per_epoch, progress_frac)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    outputs = model(images)
                loss = method.loss(outputs, points, visibility)
                if not torch.isfinite(loss):
                    raise NonFiniteLoss(
                        f"loss became {loss.item()} at epoch {epoch + 1}, step {step}; the last good checkpoint "
                        f"{run_dir / 'last.pt'} is kept. Try a lower --lr or --grad_clip.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if s.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
                optimizer.step()
                step += 1
                batches_done = batch + 1
                seen += len(images)
                loss_sum += loss.item() * len(images)
                rate = seen / max(time.monotonic() - epoch_start, 1e-9)
                bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.1f}", refresh=False)
                if step % log_every == 0:
                    writer.add_scalar("train/loss", loss.item(), step)
                    writer.add_scalar("train/lr", lr, step)
                if budget_s and elapsed > budget_s:
                    stop_reason = "time budget"
                    break
                if time.monotonic() - last_save > s.checkpoint_minutes * 60:
                    checkpoint("last.pt", batches_done)
                    last_save = time.monotonic()
            bar.close()
            writer.add_scalar("train/epoch_loss", loss_sum / max(seen, 1), step)
            writer.add_scalar("train/samples_per_s", rate if seen else 0.0, step)
            result = evaluate(method, val_loader, device, amp=amp)
            metrics = result.summary()
            history.append({"epoch": epoch + 1, "step": step, "train_loss": loss_sum / max(seen, 1),
                            "samples_per_s": rate if seen else 0.0, **metrics})
            tblog.log_validation(writer, method, val_set, result, metrics, step, device, s.log_images)
            print(f"epoch {epoch + 1}: train loss {loss_sum / max(seen, 1):.4f}, val NME {metrics['nme']:.2f}%, "
                  f"MAE {metrics['mae_px']:.2f} px, {rate if seen else 0:.1f} img/s")
            epoch += 1
            start_batch = batches_done = 0
            if metrics["nme"] < best:
                best, best_epoch = metrics["nme"], epoch
                checkpoint("best.pt", 0)
            checkpoint("last.pt", 0)
            last_save = time.monotonic()
            if stop_reason == "time budget":
                break
            if s.early_stop_patience and epoch - best_epoch >= s.early_stop_patience:
                stop_reason = "early stopping"
                break
    except KeyboardInterrupt:
        checkpoint("last.pt", batches_done)
        writer.close()
        print(f"\ninterrupted: saved {run_dir / 'last.pt'}; continue with --resume {run_dir}")
        raise
    final = {"final": history[-1] if history else {}, "best_nme": best, "best_epoch": best_epoch,
             "stopped_by": stop_reason, "train_time_s": elapsed_before + time.monotonic() - started,
             "history": history, "run_dir": str(run_dir)}
    (run_dir / "metrics.json").write_text(json.dumps(final, indent=2))
    tblog.log_hparams(writer, s, final)
    writer.close()
    return final
