"""The training loop, top to bottom:

    run = start_run("experiments/unet_kl.py", settings)   # or start_resumed(run_dir): heatnet.training.setup
    while not run.finished:
        train_epoch(run)         # optimizer steps to the end of the epoch or of the step budget
        validate_and_save(run)   # val metrics, best.pt (chosen on val), last.pt, early stopping
    finish(run)                  # the test split, once, on the chosen checkpoint -> metrics.json

`train` and `resume` do all of it. The protocol: only the validation split chooses (best.pt,
early stopping); the test split is read once, after training. The budget is a number of steps
fixed before the first one, and the learning rate is a function of the step, so a run, or a run
killed and resumed, ends with the same weights. Under torchrun the same code runs in every
process (heatnet.distributed): rank 0 writes, all train and evaluate.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from heatnet import tblog
from heatnet.checkpoint import load_checkpoint
from heatnet.config import Settings
from heatnet.samples import ImageError, LandmarkDataset, has_samples, warn_skipped
from heatnet.distributed import ShardSampler, World, step_seed, world_from_environment
from heatnet.evaluation import Evaluation, evaluate, merge_evaluations
from heatnet.files import SaveError
from heatnet.loading import make_dataset, make_loader
from heatnet.schedules import lr_factor
from heatnet.training.budget import ends_by_steps
from heatnet.training.result import RunResult, read_result
from heatnet.training.setup import Run, save_checkpoint, start_resumed, start_run
from heatnet.training.step import NonFiniteLoss, training_step


def train(experiment: str | Path, settings: Settings | None = None, run_dir: Path | None = None,
          runs_root: Path = Path("runs"), progress: bool = True) -> RunResult:
    """Train an experiment file with its settings, or `settings` (its own changed with
    dataclasses.replace); returns the result, also written to run_dir/metrics.json. Under
    torchrun, every process calls this; only rank 0 prints and writes."""
    return _run(lambda world: start_run(experiment, settings, run_dir, runs_root, world), progress)


def resume(path: Path, changes: dict[str, Any] | None = None, progress: bool = True) -> RunResult:
    """Continue a run folder (from its last.pt) or a checkpoint of it (from that file). A larger
    budget in `changes` (epochs, max_steps, time_budget_min) extends it, even once finished; a
    finished run without one trains nothing and returns its stored result."""
    return _run(lambda world: start_resumed(path, changes, world), progress)


def _run(start: Callable[[World], Run], progress: bool) -> RunResult:
    world = world_from_environment()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(sys.stdout if world.is_main else devnull):
        run = None
        try:
            run = start(world)
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


def _finished_result(run: Run) -> RunResult | None:
    """A finished run resumed without a larger budget: its stored result, nothing trained, the
    test split not read again. None when there is work left (or the test was never recorded)."""
    stored = read_result(run.run_dir) if run.finished else None
    if stored is None or not stored.finished:
        return None
    print(f"{run.run_dir}: finished ({run.progress.stopped_by}, {run.progress.step} steps); nothing to train, "
          f"and the test split is not read again. To continue it, give a larger --epochs, --max_steps or "
          f"--time_budget_min")
    return stored


def train_epoch(run: Run, show_progress: bool = True) -> None:
    """Optimizer steps from the saved position to the end of the epoch, or of the step budget."""
    s, p = run.s, run.progress
    last_batch = min(run.steps_per_epoch, run.total_steps - p.epoch * run.steps_per_epoch)
    # one bar over the whole budget, so its ETA is the run's (a time budget may end mid-epoch)
    epochs = math.ceil(run.total_steps / run.steps_per_epoch)
    bar = tqdm(total=run.total_steps, initial=p.step, desc=f"epoch {p.epoch + 1}/{epochs}",
               disable=not (show_progress and run.world.is_main),
               mininterval=2, dynamic_ncols=True, unit="step")
    run.method.model.train()
    tick = last_save = time.monotonic()
    # Reading a loss waits for the device: a GPU's losses stay on it and are read every logging interval
    read_every = log_interval(run) if run.device.type == "cuda" else 1
    skipped, unread, lr = [], UnreadLosses(), math.nan
    for batch in run.train_input.epoch(p.epoch, p.batch, p.step):
        if p.batch >= last_batch:
            break
        start = run.budget.get("schedule_from_step", 0)  # where a changed budget planned the schedule anew
        lr = s.lr * lr_factor(s.schedule, s.warmup_epochs, p.step - start, run.total_steps - start, run.steps_per_epoch)
        skipped += batch["skipped"]
        torch.manual_seed(step_seed(s.seed, run.world.rank, p.step))  # dropout draws follow from the position
        if has_samples(batch):  # else every image of the batch failed to decode: its step passes without an update
            try:
                loss = training_step(run.method, run.optimizer, run.scaler, run.precision, s.grad_clip, batch, lr,
                                     run.device, run.train_model)
            except NonFiniteLoss as e:
                raise diverged(run, e) from None
            unread.add(loss, len(batch["image"]))
            if run.average:
                run.average.update(p.step + 1)
        elif run.world.distributed:  # the other processes wait in their gradient exchange for this one
            raise ImageError(f"process {run.world.rank}: no image of its share of batch {p.batch} could be read; "
                             f"first: {batch['skipped'][0]}. Remove the bad images (tools/check_data.py lists them)")
        unread.skipped += len(batch["skipped"])
        p.step, p.batch = p.step + 1, p.batch + 1
        now = time.monotonic()
        p.train_time_s += now - tick  # this step and the wait for its batch
        p.epoch_time_s += now - tick
        tick = now
        bar.update()
        save_due = now - last_save > s.checkpoint_minutes * 60
        if p.step % read_every == 0 or save_due:
            loss = read_losses(run, unread, lr)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if save_due:
            save_checkpoint(run, "last.pt")
            tick = last_save = time.monotonic()
    read_losses(run, unread, lr)
    bar.close()
    warn_skipped(f"{s.dataset}/{s.train_split} epoch {p.epoch + 1}", skipped)


def log_interval(run: Run) -> int:
    """Steps between the training loss's TensorBoard points."""
    return min(10, run.steps_per_epoch)


class UnreadLosses:
    """The losses of the steps since the last read: a sum on the device, counts on the host."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.loss_sum: torch.Tensor | float = 0.0
        self.samples = self.skipped = 0

    def add(self, loss: torch.Tensor, samples: int) -> None:
        self.loss_sum = self.loss_sum + loss.double() * samples
        self.samples += samples


def diverged(run: Run, error: Exception) -> NonFiniteLoss:
    """NonFiniteLoss saying where, and whether a good checkpoint is kept (none before the first save)."""
    p = run.progress
    last = run.run_dir / "last.pt"
    kept = (f"the last good checkpoint {last} is kept" if last.exists() else
            "no checkpoint had been saved yet, so nothing is kept")
    return NonFiniteLoss(f"{error} at epoch {p.epoch + 1}, step {p.step}; {kept}. Try a lower --lr or --grad_clip.")


def read_losses(run: Run, unread: UnreadLosses, lr: float) -> float:
    """Add the unread steps' losses and counts (summed over all processes) to the run's progress,
    log their mean loss, and raise NonFiniteLoss if it is not finite; returns the mean."""
    p = run.progress
    loss_sum, count, bad = run.world.sum([float(unread.loss_sum), unread.samples, unread.skipped], run.device)
    loss = loss_sum / count if count else math.nan
    if count and not math.isfinite(loss):  # on a GPU, up to read_every steps after it happened
        raise diverged(run, NonFiniteLoss(f"loss became {loss} (mean of the steps read now)"))
    p.epoch_loss_sum, p.epoch_samples, p.epoch_skipped = p.epoch_loss_sum + loss_sum, p.epoch_samples + int(count), \
        p.epoch_skipped + int(bad)
    p.samples += int(count)
    if p.step % log_interval(run) == 0 and count:
        run.writer.add_scalar("train/loss", loss, p.step)
        run.writer.add_scalar("train/lr", lr, p.step)
    unread.clear()
    return loss


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
        p.stopped_by = "step budget" if ends_by_steps(s, run.total_steps, run.steps_per_epoch) else "epochs"
    elif s.early_stop_patience and run.val_set is not None and p.epoch - p.best_epoch >= s.early_stop_patience:
        p.stopped_by = "early stopping"
    save_checkpoint(run, "last.pt")


def finish(run: Run, show_progress: bool = True) -> RunResult:
    """Evaluate the test split once, on the chosen checkpoint; write metrics.json."""
    s = run.s
    chosen = "best.pt" if run.val_set is not None and (run.run_dir / "best.pt").is_file() else "last.pt"
    chosen = run.world.broadcast(chosen)  # as rank 0, which wrote the files, sees them
    result = run_result(run, chosen)
    if s.test_split:
        model = run.inference_method.model
        if run.world.is_main:  # and from rank 0 to the others: no shared file system needed
            model.load_state_dict(load_checkpoint(run.run_dir / chosen)["model"])
        run.world.broadcast_weights(model)
        test_set = make_dataset(s, s.test_split, s.test_limit)
        evaluation = evaluate_split(run, test_set, f"{s.dataset}/{s.test_split}" if show_progress else "")
        result.test = {"split": s.test_split, "checkpoint": chosen, "normaliser": test_set.source.normaliser.value,
                       "flip_test": s.flip_test, **evaluation.summary(), "skipped": evaluation.skipped,
                       "per_image_nme": evaluation.errors.per_image().tolist()}
        print(f"test ({s.dataset}/{s.test_split}, {chosen}): NME {result.test['nme_%']:.2f}%")
    if run.world.is_main:
        result.write(run.run_dir)
        if not s.keep_last and chosen != "last.pt":
            (run.run_dir / "last.pt").unlink()
        tblog.log_hparams(run.writer, s, result)
    run.writer.close()
    return result


def run_result(run: Run, chosen: str, stopped_by: str = "") -> RunResult:
    """The run's result so far, without the test."""
    p = run.progress
    rule = "lowest validation NME" if chosen == "best.pt" else "last checkpoint (no validation split)"
    return RunResult(str(run.run_dir), stopped_by or p.stopped_by, p.step, p.samples, p.train_time_s, p.best_nme,
                     p.best_epoch, {"checkpoint": chosen, "rule": rule}, run.budget, p.history)


def write_unfinished(run: Run, stopped_by: str) -> None:
    """metrics.json for a run stopped before its end (Ctrl-C, a failed save): what it has done so
    far, so it can be read without resuming; --resume continues it and rewrites the file."""
    if run.world.is_main:
        with contextlib.suppress(OSError):  # after a failed save the disk may still be full
            run_result(run, "last.pt", stopped_by).write(run.run_dir)


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
