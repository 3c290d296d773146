"""Settings of a run, and how text (the command line, settings.json, checkpoints) becomes them.

    settings = Settings(epochs=12, lr=2e-3, architecture=smp.FPN, decoder=Dark())
    def build(s, scheme):
        codec = GaussianHeatmap(s.input_size, s.stride, s.sigma, s.decoder)
        return Method(HeatmapModel(scheme.num_points, s.architecture, s.encoder, s.channels, s.stride), s.loss(codec))

Every setting can be overridden as --key=value; the value is parsed by the field's annotation:
numbers and booleans as such, enums by value, a choice of classes by class name
(`--architecture=FPN`, `--loss=HeatmapJS`), a choice of small frozen dataclasses by name with
optional keywords (`--decoder=Dark`, `--decoder="SoftArgmax(window_radius=3)"`). Stored settings
are written the same way (a dataclass as its repr, a class as its name), so one parser reads both.
"""
from __future__ import annotations

import ast
import dataclasses
import enum
import types
import typing
from dataclasses import dataclass
from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from heatnet.codecs import Decoder, SoftArgmax
from heatnet.crop import CropBox
from heatnet.errors import ConfigError
from heatnet.losses import HeatmapKL, LossClass
from heatnet.models import Architecture
from heatnet.schedules import Cosine, Schedule

__all__ = ["ConfigError", "Method", "Settings", "apply_overrides", "extend", "from_plain", "parse_overrides", "parse_value",
           "to_plain"]


@dataclass
class Settings:
    # data
    dataset: str = "synthetic"  # a name in heatnet.datasets.DATASETS
    data_root: str = ""  # empty: $HEATNET_DATA
    train_split: str = "train"  # the split trained on (train = trainval minus val)
    val_split: str = "val"  # chooses best.pt and early stopping; empty: no validation, the last checkpoint is kept
    test_split: str = "test"  # read once after training, on the chosen checkpoint; empty: not evaluated
    train_limit: int = 0  # use only the first N training samples (0: all)
    val_limit: int = 0  # use only the first N validation samples (0: all)
    test_limit: int = 0  # quick runs only: figures are reported on the whole test split
    input_size: int = 128  # side of the square face crop the model sees, in pixels
    channels: int = 3  # 1 for grayscale input
    box: CropBox = CropBox.LANDMARKS  # crop around the landmark box, the annotation's face box or the whole image
    box_scale: float = 1.25  # crop side = box_scale x the longer side of the box
    strict_data: bool = False  # fail on the first bad sample instead of skipping it
    cache_images: bool = False  # decode every image once and keep it in memory (small datasets such as IMM)
    complete_only: bool = False  # train only on samples with every point labelled (dropping rows, as Kaggle notebooks did)
    # augmentation (training split only)
    augment: bool = True  # False: no augmentation at all
    rotation_deg: float = 30.0  # uniform in +-rotation_deg
    scale_jitter: float = 0.15  # zoom uniform in 1 +- scale_jitter
    shift: float = 0.08  # uniform in +-shift of the crop side, per axis
    mirror_prob: float = 0.5  # mirrored with the scheme's flip map
    color_prob: float = 0.8  # probability of brightness, contrast, saturation and hue jitter
    gray_prob: float = 0.1  # probability of turning the crop grayscale
    blur_prob: float = 0.2  # probability of a Gaussian or motion blur
    noise_prob: float = 0.3  # probability of Gaussian sensor noise
    occlusion_prob: float = 0.3  # probability of one or two random rectangles hiding part of the face
    # method: what an experiment's build() reads
    architecture: Architecture = smp.Unet  # heatmap models
    encoder: str = "resnet18"  # any smp encoder name
    stride: int = 4  # heatmap stride: 1, 2 or 4
    sigma: float = 1.5  # target Gaussian std in heatmap pixels
    loss: LossClass = HeatmapKL  # heatmap losses (KL, MSE, JS, AdaptiveWing, Integral) or coordinate ones
    decoder: Decoder = SoftArgmax(window_radius=4)  # heatmaps -> points; keywords allowed: "Dark(blur=True)"
    flip_test: bool = False  # validate and test on the mean of the image's and its mirror's predictions
    # optimisation
    batch_size: int = 16  # samples per optimizer step
    epochs: int = 10  # passes over the training split (0: no epoch limit; max_steps or time_budget_min ends the run)
    max_steps: int = 0  # stop after this many optimizer steps (0: epochs decide)
    time_budget_min: float = 0.0  # converted once into max_steps by timing training steps (0: off)
    lr: float = 1e-3  # peak learning rate (AdamW)
    weight_decay: float = 1e-4  # AdamW; 0 gives Adam
    schedule: Schedule = Cosine()  # learning-rate factor as a function of the step, after warm-up
    warmup_epochs: float = 0.5  # linear warm-up length
    grad_clip: float = 5.0  # max gradient norm (0: off)
    ema_decay: float = 0.0  # exponential moving average of the weights, which validation, best.pt and tests use (0: off)
    early_stop_patience: int = 0  # validations without a better NME before stopping (0: off)
    # run
    seed: int = 0  # weights, data order and augmentation all follow from it
    threads: int = 0  # torch intra-op threads (0: all cores)
    workers: int = 2  # data-loader processes
    amp: bool = True  # mixed precision on CUDA: bf16 where supported, else fp16 with a gradient scaler
    device: str = ""  # empty: cuda when available, else cpu
    init_from: str = ""  # heatnet checkpoint whose matching weights initialise the model
    checkpoint_minutes: float = 5.0  # also save `last.pt` mid-epoch this often
    keep_last: bool = True  # keep last.pt (weights + optimizer state, ~3x best.pt) once the run has finished
    log_images: int = 8  # validation images drawn to TensorBoard per epoch

    def __post_init__(self) -> None:
        positive = ("batch_size", "input_size", "lr")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name} must be positive, got {getattr(self, name)}")
        if not (self.epochs > 0 or self.max_steps > 0 or self.time_budget_min > 0):
            raise ConfigError(f"--epochs must be positive, got {self.epochs} (0 only with --max_steps or "
                              f"--time_budget_min)")
        for name in ("epochs", "max_steps", "time_budget_min", "train_limit", "val_limit", "test_limit", "workers", "threads",
                     "early_stop_patience", "warmup_epochs", "grad_clip", "weight_decay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} must not be negative, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"--ema_decay must be in [0, 1) (0: no weight average), got {self.ema_decay}")
        if self.channels not in (1, 3):
            raise ConfigError(f"--channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        if self.stride not in (1, 2, 4) or self.input_size % self.stride:
            raise ConfigError(f"--stride must be 1, 2 or 4 and divide --input_size={self.input_size}, got {self.stride}")


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


# --- text <-> typed values ----------------------------------------------------------------------
def _options(kind) -> tuple:
    return typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)


def _choice(key: str, text: str, kind) -> Any:
    """A class (`FPN`) or a small dataclass (`Dark`, `SoftArgmax(window_radius=3)`) among the
    options of a union annotation, by case-insensitive class name."""
    options = {}
    for option in _options(kind):
        cls = typing.get_args(option)[0] if typing.get_origin(option) is type else option
        options[cls.__name__.lower()] = (option, cls)
    names = ", ".join(cls.__name__ for _, cls in options.values())
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        node = None
    call = node if isinstance(node, ast.Call) else None
    name_node = call.func if call else node
    if not isinstance(name_node, ast.Name) or name_node.id.lower() not in options:
        raise ConfigError(f"--{key} expects one of {names}, got {text!r}")
    option, cls = options[name_node.id.lower()]
    if typing.get_origin(option) is type:
        if call:
            raise ConfigError(f"--{key} takes a class name ({names}) without arguments, got {text!r}")
        return cls
    try:
        if call and call.args:
            raise ValueError("give arguments by keyword")
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in (call.keywords if call else [])}
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"--{key}={text}: {e}") from None


def parse_value(key: str, text: str, kind) -> Any:
    """Text -> a value of the annotation `kind` (a scalar type, an enum, or a union of classes
    or dataclasses); ConfigError naming --key otherwise."""
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--{key} expects true/false, got {text!r}")
    if kind in (int, float, str):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"--{key} expects {kind.__name__}, got {text!r}") from None
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(text)
        except ValueError:
            raise ConfigError(f"--{key} expects one of {', '.join(m.value for m in kind)}, got {text!r}") from None
    return _choice(key, text, kind)


def to_plain(value: Any) -> Any:
    """A setting's value as JSON: enums by value, classes by name, dataclasses as their repr."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, type):
        return value.__name__
    if dataclasses.is_dataclass(value):
        return repr(value)
    return value


def from_plain(cls: type, values: dict, where: str = "stored settings") -> Any:
    """The inverse of to_plain over a dataclass's fields: `cls(**parsed values)`."""
    hints = typing.get_type_hints(cls)
    unknown = set(values) - set(hints)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)} for {cls.__name__}")
    parsed = {}
    for key, value in values.items():
        kind = hints[key]
        if isinstance(value, str) and kind is not str:
            value = parse_value(key, value, kind)
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        parsed[key] = value
    return cls(**parsed)


def extend(settings: Settings, cls: type[Settings], **changes) -> Settings:
    """`settings` as an instance of `cls`, an experiment's Settings subclass (its own fields at
    their defaults unless in `changes`)."""
    return cls(**{**{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}, **changes})


def settings_dict(settings: Settings) -> dict:
    return {f.name: to_plain(getattr(settings, f.name)) for f in dataclasses.fields(settings)}


def parse_overrides(cls: type[Settings], overrides: list[str]) -> dict[str, Any]:
    """`--key=value` strings -> {field: typed value}, parsed by the annotations of `cls` (a
    Settings class: an experiment may subclass Settings to add fields of its own, such as
    `blurpool: bool = False`, which take overrides like the common ones). The command line's
    parser: library functions take Settings and typed values."""
    hints = typing.get_type_hints(cls)
    changes = {}
    for item in overrides:
        if not item.startswith("--") or "=" not in item:
            raise ConfigError(f"override {item!r} should look like --key=value")
        key, text = item[2:].split("=", 1)
        key = key.replace("-", "_")
        if key not in hints:
            raise ConfigError(f"unknown setting --{key}; valid: {', '.join(sorted(hints))}")
        changes[key] = parse_value(key, text, hints[key])
    return changes


def apply_overrides(settings: Settings, overrides: list[str]) -> Settings:
    """`--key=value` strings onto a copy of `settings` (parse_overrides, then dataclasses.replace)."""
    return dataclasses.replace(settings, **parse_overrides(type(settings), overrides))
