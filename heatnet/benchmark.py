"""The benchmark: each method trained over seeds under one step budget and tested once per run;
model cost (parameters, FLOPs, latency), decoders compared on validation and the codec's own
error floor. heatnet.benchmark_report writes the tables; tools/benchmark.py is the command line
over both."""
from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from heatnet.codecs import DECODERS, GaussianHeatmap
from heatnet.benchmark_report import mean_and_spread
from heatnet.config import ConfigError, Settings
from heatnet.method import Method
from heatnet.samples import has_samples, to_device_batch, to_original
from heatnet.distributed import world_from_environment
from heatnet.evaluation import evaluate, load_trained
from heatnet.loading import make_dataset, make_loader
from heatnet.metrics import LandmarkErrors
from heatnet.runtime import choose_device
from heatnet.experiment import load_experiment
from heatnet.training import Budget, train_seeds, with_budget


def model_cost(method: Method, size: int, channels: int, device: torch.device,
               batches: tuple[int, ...] = (1, 32), repeats: int = 5) -> dict[str, float]:
    """The input side (px), parameters (M), forward GFLOPs per image, and median latency (ms per
    batch, decode included) at each batch size on `device`."""
    model = method.model.eval()
    out = {"input_px": float(size), "params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    with torch.no_grad():
        x = torch.rand(1, channels, size, size, device=device)
        with FlopCounterMode(display=False) as counter:
            model(x)
        out["gflops"] = counter.get_total_flops() / 1e9
        for b in batches:
            x = torch.rand(b, channels, size, size, device=device).contiguous(memory_format=torch.channels_last)
            method.decode(model(x))  # warm-up
            times = []
            for _ in range(repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                method.decode(model(x))
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            out[f"latency_b{b}_ms"] = 1000 * float(np.median(times))
    return out


def onnxruntime_ms(method: Method, settings: Settings, threads: int = 2, repeats: int = 30) -> float:
    """Median ms per face of the method's ONNX graph (network and decoder) in onnxruntime on the
    CPU, batch 1, `threads` threads; NaN without onnxruntime."""
    try:
        from heatnet.export import onnx_session

        session = onnx_session(method, settings, threads=threads)
    except ImportError:
        return float("nan")
    from heatnet.profiling import call_seconds

    x = np.random.default_rng(0).random((1, settings.channels, settings.input_size, settings.input_size), np.float32)
    return 1000 * float(np.median(call_seconds(lambda: session.run(None, {"images": x}), repeats)))


@torch.no_grad()
def confidence_rank_correlation(method: Method, loader, device: torch.device) -> float:
    """How well a head's per-point scores rank its errors: Spearman's correlation between the
    score and minus the error (crop pixels) over every visible point of `loader`, one pass, no
    flip test. 1: the surest points are the best; 0: the scores say nothing. Heatmaps give their
    peak, RLE its 1 - sigma, plain regression a constant (NaN)."""
    from scipy.stats import spearmanr

    model = method.model.eval()
    scores, errors = [], []
    for batch in loader:
        if not has_samples(batch):
            continue
        images, points, visibility = to_device_batch(batch, device)
        pred, score = method.decode(model(images))
        visible = visibility > 0
        scores.append(score[visible].cpu().numpy())
        errors.append((pred - points).norm(dim=-1)[visible].cpu().numpy())
    scores, errors = np.concatenate(scores), np.concatenate(errors)
    if np.ptp(scores) == 0:
        return float("nan")
    return float(spearmanr(scores, -errors).statistic)

@torch.no_grad()
def codec_floor(codec: GaussianHeatmap, loader, decoder=None) -> float:
    """NME (%) of encoding the ground truth and decoding it again: what the codec alone costs."""
    errors = LandmarkErrors(loader.dataset.scheme)
    for batch in filter(has_samples, loader):
        targets, _ = codec.encode(batch["points"], batch["visibility"])
        decoded, _ = codec.decode(targets, decoder)
        errors.add(to_original(decoded, batch["affine"]), batch["orig_points"], batch["orig_visibility"], batch["normaliser"])
    return errors.summary()["nme_%"]


def common_settings(dataset: str, data_root: str | None, input_size: int | None, quick: bool) -> dict[str, Any]:
    """The settings every method of a benchmark trains with: the dataset and the benchmark's data
    rules; `input_size` None keeps each experiment's own; `quick` is the smoke profile."""
    changes = {"dataset": dataset, "train_limit": 0, "log_images": 4,
               "keep_last": False}  # each run keeps best.pt (what the tables measure), not the optimizer state
    if input_size:
        changes["input_size"] = input_size
    if data_root:
        changes["data_root"] = data_root
    if quick:
        changes.update(input_size=64, train_limit=96, val_limit=48, test_limit=48, workers=0)
    return changes


def method_settings(experiment: str | Path, changes: dict[str, Any], budget: Budget) -> Settings:
    """An experiment's own settings with the benchmark's common changes and its budget."""
    return with_budget(dataclasses.replace(load_experiment(experiment).settings, **changes), budget)


def run_method(experiment: str | Path, settings: Settings, seeds: Sequence[int], runs_dir: Path,
               progress: bool = True) -> dict:
    """Train one method for each of `seeds` (e.g. range(3)) under the same step budget
    (heatnet.training.train_seeds); per seed the test metrics of the checkpoint validation chose; on
    the first seed the decoders compared on the validation split, the codec floor and the model's
    cost (rank 0 of a torchrun; {} on the others). Progress bars only on a terminal, and only with
    `progress`."""
    if not settings.test_split:
        raise ConfigError(f"{experiment}: the benchmark needs a test split (--test_split is empty)")
    rows, curves = [], []
    device = choose_device()
    runs = train_seeds(experiment, settings, seeds, runs_dir, progress=progress and sys.stderr.isatty())
    if not world_from_environment().is_main:  # under torchrun the other processes only help train
        return {}
    for seed, run in zip(seeds, runs):
        rows.append({"val_nme_%": run.validation_nme, **{k: v for k, v in run.test.items() if isinstance(v, float)},
                     "steps": float(run.steps), "samples": float(run.samples), "train_time_s": run.train_time_s,
                     "samples_per_s": run.samples / max(run.train_time_s, 1e-9)})
        curves.append(np.array(run.test["per_image_nme"]))
        print(f"{Path(experiment).stem} seed {seed}: test NME {run.test['nme_%']:.2f}% after {run.steps} steps "
              f"({run.train_time_s:.0f} s training)")
    first = runs[0]
    method, s, _ = load_trained(Path(first.run_dir) / first.selection["checkpoint"], device)
    cost = {**model_cost(method, s.input_size, s.channels, device), "onnxruntime_ms": onnxruntime_ms(method, s)}
    extras = {"cost": cost, "budget": first.budget,
              "normaliser": first.test["normaliser"], "selection": first.selection, "decoders": {}}
    if s.val_split:
        loader = make_loader(make_dataset(s, s.val_split, s.val_limit), s)
        cost["score_error_rank"] = confidence_rank_correlation(method, loader, device)
    if isinstance(method.codec, GaussianHeatmap) and s.val_split:
        evaluation = evaluate(method, loader, device, extra_decoders=DECODERS)
        extras["decoders"] = {**{d: e.summary()["nme_%"] for d, e in evaluation.by_decoder.items()},
                              "codec floor": codec_floor(method.codec, loader)}
    for row in rows:
        row.update(extras["cost"])
    return {"rows": rows, "seeds": list(seeds), "stats": mean_and_spread(rows), "curve": curves[0],
            "step_budget": first.budget["total_steps"], **extras}


def dlib_result(dataset: str, split: str, root: Path | None, limit: int = 0) -> dict:
    """dlib's 68-point predictor on the same test images (the first `limit`, 0: all) and
    normaliser, from the same ground-truth crops (turned into the dlib HOG box of each face), as
    a benchmark row."""
    from heatnet.samples import FirstN
    from heatnet.datasets import load_split
    from heatnet.predict import DlibPredictor, evaluate_ground_truth_crops

    source = load_split(dataset, split, root)
    source = FirstN(source, limit) if limit else source
    if source.scheme.num_points != 68:
        raise ConfigError(f"--dlib: dlib's predictor gives 68 points; {dataset} has {source.scheme.num_points}")
    errors = evaluate_ground_truth_crops(DlibPredictor(), source)
    row = errors.summary()  # all floats
    return {"rows": [row], "seeds": [0], "stats": mean_and_spread([row]), "curve": errors.per_image(), "step_budget": 0,
            "budget": {"trained": "by dlib, on all of 300-W (its test images included)"},
            "normaliser": source.normaliser.value, "decoders": {}}


# the report's columns: (key, header, format)
