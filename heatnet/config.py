"""Experiments: a Python file with `settings` (a `Settings`) and `build(settings, scheme) -> Method`.

    settings = Settings(epochs=12, lr=2e-3)
    def build(s, scheme):
        codec = GaussianHeatmap(s.input_size, stride=4, sigma=2.0)
        return Method(HeatmapModel(scheme.num_points, smp.Unet, "resnet18", s.channels), HeatmapKL(codec))

A variant imports its base and replaces what differs. Scalar settings are overridden on the
command line as --key=value, converted to the field's type; an unknown key lists the valid ones.
"""
from __future__ import annotations

import dataclasses
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

SCHEDULES = ("cosine", "step", "exponential", "constant")


class ConfigError(ValueError):
    """An experiment or override is wrong; the message says what to do."""


@dataclass
class Settings:
    # data
    dataset: str = "synthetic"  # a name in heatnet.datasets.DATASETS
    data_root: str = ""  # empty: $HEATNET_DATA
    train_split: str = "train"
    val_split: str = "val"
    train_limit: int = 0  # use only the first N training samples (0: all)
    val_limit: int = 0
    input_size: int = 128
    channels: int = 3  # 1 for grayscale input
    box_scale: float = 1.25  # crop side = box_scale x the longer side of the landmark box
    augment: bool = True
    rotation_deg: float = 30.0
    strict_data: bool = False  # fail on the first bad sample instead of skipping it
    # optimisation
    batch_size: int = 16
    epochs: int = 10
    time_budget_min: float = 0.0  # stop training after this many minutes (0: no limit)
    lr: float = 1e-3
    weight_decay: float = 1e-4  # AdamW; 0 gives Adam
    schedule: str = "cosine"  # one of SCHEDULES
    warmup_epochs: float = 0.5
    step_epochs: int = 10  # step schedule: multiply by gamma every step_epochs
    gamma: float = 0.1  # step / exponential (per epoch) decay
    grad_clip: float = 5.0  # max gradient norm (0: off)
    early_stop_patience: int = 0  # epochs without a better val NME before stopping (0: off)
    # run
    seed: int = 0
    threads: int = 0  # torch intra-op threads (0: all cores)
    workers: int = 2  # data-loader processes
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    device: str = ""  # empty: cuda when available, else cpu
    init_from: str = ""  # heatnet checkpoint whose matching weights initialise the model
    checkpoint_minutes: float = 5.0  # also save `last.pt` mid-epoch this often
    log_images: int = 8  # validation images drawn to TensorBoard per epoch

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")


@dataclass
class Method:
    """A model and its loss; the loss holds the codec that makes targets and decodes outputs."""

    model: nn.Module
    loss: nn.Module

    @property
    def codec(self):
        return self.loss.codec

    def decode(self, outputs: torch.Tensor, decoder=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Model outputs -> (points (B, K, 2) in input pixels, scores (B, K))."""
        return self.codec.decode(self.loss.activate(outputs), decoder)


def _convert(key: str, text: str, kind: type):
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--{key} expects true/false, got {text!r}")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"--{key} expects {kind.__name__}, got {text!r}") from None


def apply_overrides(settings: Settings, overrides: list[str]) -> Settings:
    """`--key=value` strings onto a copy of `settings`, type-checked."""
    fields = {f.name: f for f in dataclasses.fields(settings)}
    types = {name: type(getattr(settings, name)) for name in fields}
    changes = {}
    for item in overrides:
        if not item.startswith("--") or "=" not in item:
            raise ConfigError(f"override {item!r} should look like --key=value")
        key, text = item[2:].split("=", 1)
        key = key.replace("-", "_")
        if key not in fields:
            raise ConfigError(f"unknown setting --{key}; valid: {', '.join(sorted(fields))}")
        changes[key] = _convert(key, text, types[key])
    return dataclasses.replace(settings, **changes)


def load_experiment(path: str | Path) -> ModuleType:
    """Import an experiment file as a module (its folder's parent goes on sys.path, so a variant
    can `from experiments.unet_kl import settings, build`)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"experiment file {path} not found (try one of experiments/*.py)")
    root = str(path.parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    name = f"{path.parent.name}.{path.stem}"
    try:
        module = importlib.import_module(name)
    except ImportError:  # not inside an importable folder: load the file on its own
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    if Path(getattr(module, "__file__", "")).resolve() != path:
        raise ConfigError(f"{path}: imported {module.__file__} instead; is there a name clash?")
    for attribute in ("settings", "build"):
        if not hasattr(module, attribute):
            raise ConfigError(f"{path} defines no `{attribute}`; an experiment needs `settings` and `build`")
    return module
