"""Evaluation: run a method over a loader, map predictions back to original pixels, score them."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import heatnet
from heatnet.checkpoint import CheckpointError, codec_description, codec_from_description, load_checkpoint
from heatnet.config import ConfigError, from_plain
from heatnet.method import Method
from heatnet.samples import ImageError, has_samples, to_device_batch, to_original, warn_skipped
from heatnet.experiment import (ExperimentSource, experiment_source, load_experiment, module_from_sources,
                                source_differences)
from heatnet.metrics import LandmarkErrors
from heatnet.runtime import Precision
from heatnet.shipped import resolve_model
from heatnet.schemes import SCHEMES, LandmarkScheme


def mirror_predictions(points: torch.Tensor, size: int, scheme: LandmarkScheme) -> torch.Tensor:
    """Points predicted on a mirrored (B, C, S, S) input -> points on the original input."""
    mirrored = points[:, list(scheme.flip_map)].clone()
    mirrored[..., 0] = size - 1 - mirrored[..., 0]
    return mirrored


@dataclass
class Evaluation:
    errors: LandmarkErrors
    loss: float
    predictions: np.ndarray  # (N, K, 2) original pixels
    indices: np.ndarray  # (N,) dataset indices
    by_decoder: dict[str, LandmarkErrors]  # errors of each extra decoder on the same outputs
    skipped: list[str]  # samples whose image failed to decode, with the reason

    def summary(self) -> dict[str, float]:
        return {**self.errors.summary(), "loss": self.loss}


@torch.no_grad()
def evaluate(method: Method, loader, device: torch.device, decoder=None, flip_test: bool = False,
             precision: Precision | None = None, extra_decoders: dict | None = None,
             progress: str = "") -> Evaluation:
    """Metrics of `method` over `loader` with its codec's decoder (or `decoder`), under the
    training's precision policy; each of `extra_decoders` is scored on the same forward passes
    (no flip test for those). Samples that fail to decode are left out and warned of; a
    progress bar is shown when `progress` names what is evaluated."""
    precision = precision or Precision(device.type, None)
    model = method.model
    was_training = model.training
    model.eval()
    scheme = loader.dataset.scheme
    errors = LandmarkErrors(scheme)
    by_decoder = {name: LandmarkErrors(scheme) for name in extra_decoders or {}}
    losses, predictions, indices, skipped = [], [], [], []
    for batch in tqdm(loader, desc=progress, disable=not progress, leave=False, unit="batch", dynamic_ncols=True):
        skipped += batch["skipped"]
        if not has_samples(batch):
            continue
        images, points, visibility = to_device_batch(batch, device)
        with precision.autocast():
            outputs = model(images)
        losses.append(float(method.loss(outputs, points, visibility)) * len(images))
        pred, _ = method.decode(outputs, decoder)
        if flip_test:
            with precision.autocast():
                flipped_outputs = model(images.flip(-1))
            flipped, _ = method.decode(flipped_outputs, decoder)
            pred = 0.5 * (pred + mirror_predictions(flipped, images.shape[-1], scheme))
        affine = batch["affine"].to(device)
        original = to_original(pred, affine)
        truth = (batch["orig_points"], batch["orig_visibility"], batch["normaliser"])
        errors.add(original, *truth)
        for name, extra in (extra_decoders or {}).items():
            by_decoder[name].add(to_original(method.decode(outputs, extra)[0], affine), *truth)
        predictions.append(original.cpu().numpy())
        indices.append(batch["index"].numpy())
    model.train(was_training)
    warn_skipped(progress or "evaluation", skipped)
    if not indices:
        raise ImageError(f"no image of the {len(loader.dataset)} could be read; first: {skipped[0] if skipped else '-'}")
    count = sum(len(i) for i in indices)
    return Evaluation(errors, sum(losses) / max(count, 1), np.concatenate(predictions), np.concatenate(indices),
                      by_decoder, skipped)


def merge_evaluations(parts: list[Evaluation | None]) -> Evaluation:
    """One Evaluation from the shards that several processes evaluated (None: an empty shard),
    in dataset order, as one process evaluating everything would give it."""
    parts = [part for part in parts if part is not None]
    if len(parts) == 1:
        return parts[0]
    indices = np.concatenate([part.indices for part in parts])
    order = np.argsort(indices, kind="stable")

    def merged(errors: list[LandmarkErrors]) -> LandmarkErrors:
        result = LandmarkErrors(errors[0].scheme)
        result.add(*(np.concatenate(arrays)[order] for arrays in zip(*(e.arrays() for e in errors))))
        return result

    counts = [len(part.indices) for part in parts]
    return Evaluation(merged([part.errors for part in parts]),
                      sum(part.loss * count for part, count in zip(parts, counts)) / sum(counts),
                      np.concatenate([part.predictions for part in parts])[order], indices[order],
                      {name: merged([part.by_decoder[name] for part in parts]) for name in parts[0].by_decoder},
                      [reason for part in parts for reason in part.skipped])


def load_trained(checkpoint_path: str | Path, device: torch.device | str = "cpu", live_experiment: bool = False):
    """(method, settings, checkpoint state) from a heatnet checkpoint, from any directory.

    The model is rebuilt from the experiment sources stored in the checkpoint, so later edits to
    the files do not change it. `live_experiment` rebuilds from the experiment file on disk
    instead and warns of every difference. Either way the codec stored in the checkpoint is
    the one that decodes."""
    path = resolve_model(checkpoint_path)  # a shipped model's name or a run folder too
    state = load_checkpoint(path, map_location=device)
    stored = ExperimentSource(**state["experiment"])
    try:
        if live_experiment:
            module = load_experiment(stored.path)
            for line in source_differences(stored, experiment_source(module)):
                warnings.warn(f"{path}: {line}", stacklevel=2)
        else:
            module = module_from_sources(stored)
        settings = from_plain(type(module.settings), state["settings"], "its settings")  # may be a Settings subclass
        method = module.build(settings, SCHEMES[state["scheme"]])
    except ConfigError as e:
        written_by = state.get("heatnet_version", "?")
        hint = (f" (written by heatnet {written_by}, this is {heatnet.__version__}: --live-experiment rebuilds it "
                f"from the experiment file as it is now)" if written_by != heatnet.__version__ else "")
        raise CheckpointError(f"{path}: {e}{hint}") from None
    try:
        stored_codec = codec_from_description(state["codec"])
    except (CheckpointError, ConfigError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    if codec_description(method.codec) != codec_description(stored_codec):
        warnings.warn(f"{path}: the experiment now builds the codec {codec_description(method.codec)}; "
                      f"decoding with the stored {state['codec']}", stacklevel=2)
        method.loss.codec = stored_codec
    try:
        method.model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model that {stored.module} builds ({e})") from None
    method.model.to(device, memory_format=torch.channels_last)
    return method, settings, state
