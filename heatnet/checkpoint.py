"""Checkpoints: written atomically, loaded with weights_only=True (loading cannot run code).

Every checkpoint holds the model weights, the resolved settings, the experiment (its path,
module name and the source of every experiment module it imports: enough to rebuild the model
after the files changed), the landmark scheme, the codec settings used to decode, and the
heatnet version, all as tensors and plain values, and the run's position (progress, budget).
`last.pt` adds the rest of the training state for --resume (optimizer, gradient scaler, random
generators); `best.pt` leaves it out (a third of the size with AdamW).
"""
from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path

import torch

import heatnet
from heatnet.codecs import AxisHeatmaps, CoordinatesWithScale, GaussianHeatmap, HeatmapOffsets, NormalisedCoordinates
from heatnet.config import from_plain, settings_dict, to_plain
from heatnet.experiment import ExperimentSource
from heatnet.files import write_atomic
from heatnet.errors import HeatnetError


class CheckpointError(HeatnetError, ValueError):
    """A checkpoint is missing, unreadable or does not fit what it is used with."""


CODECS = (GaussianHeatmap, NormalisedCoordinates, CoordinatesWithScale, AxisHeatmaps, HeatmapOffsets)


def codec_description(codec) -> dict:
    """Plain-value description of a codec: its class name and fields (the decoder as its repr)."""
    return {"type": type(codec).__name__, **{f.name: to_plain(getattr(codec, f.name)) for f in dataclasses.fields(codec)}}


def codec_from_description(description: dict):
    """The codec a checkpoint decoded with, rebuilt from codec_description's output; a field the
    codec gained since the checkpoint was written takes its default (what the codec did then)."""
    fields = dict(description)
    kinds = {cls.__name__: cls for cls in CODECS}
    kind = fields.pop("type")
    if kind not in kinds:
        raise CheckpointError(f"unknown codec {kind!r} in checkpoint")
    return from_plain(kinds[kind], fields, "stored codec")


def save_atomic(state: dict, path: Path) -> None:
    """torch.save through heatnet.files.write_atomic: the old checkpoint stays until the new one
    is complete; SaveError when it cannot be written."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getbuffer())


def make_checkpoint(model, settings, experiment: ExperimentSource, scheme, codec, training: dict | None = None) -> dict:
    """A checkpoint's contents; `training`: the position, plus optimizer and random states for last.pt."""
    state = {
        "model": model.state_dict(),
        "settings": settings_dict(settings),
        "experiment": dataclasses.asdict(experiment),
        "scheme": scheme.name,
        "num_points": scheme.num_points,
        "codec": codec_description(codec),
        "heatnet_version": heatnet.__version__,
    }
    if training is not None:
        state["training"] = training
    return state


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if not is_zip:  # every checkpoint torch.save writes is a zip archive
        raise CheckpointError(f"{path}: not a heatnet checkpoint (not a PyTorch file)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's message advises weights_only=False, which can run any code in the file: never that
        raise CheckpointError(f"{path}: not a heatnet checkpoint: it holds Python objects that heatnet does not "
                              f"load (heatnet checkpoints hold only tensors and plain values)") from None
    except Exception as e:  # torch raises several types for truncated or damaged archives
        raise CheckpointError(f"{path}: not a heatnet checkpoint (a damaged checkpoint: {type(e).__name__})") from None
    if not isinstance(state, dict) or "model" not in state or "scheme" not in state:
        raise CheckpointError(f"{path}: not a heatnet checkpoint (no model weights or landmark scheme)")
    if "experiment" not in state:
        raise CheckpointError(f"{path}: written by an older heatnet that did not store its experiment's sources; "
                              f"retrain it with this version")
    return state


def check_compatible(state: dict, scheme, path: Path | str = "checkpoint") -> None:
    if state["scheme"] != scheme.name or state["num_points"] != scheme.num_points:
        raise CheckpointError(f"{path}: trained for {state['num_points']} points ({state['scheme']}), "
                              f"but the data uses {scheme.num_points} ({scheme.name})")


def load_matching_weights(model: torch.nn.Module, weights: dict) -> tuple[list[str], list[str]]:
    """Copy the tensors whose names and shapes match (initialising from another heatnet run);
    returns (loaded, skipped) names."""
    own = model.state_dict()
    loaded = [k for k, v in weights.items() if k in own and own[k].shape == v.shape]
    model.load_state_dict({k: weights[k] for k in loaded}, strict=False)
    return loaded, [k for k in own if k not in loaded]
