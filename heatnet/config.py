"""Settings of a run, and how text (the command line, settings.json, checkpoints) becomes them.

`Settings` holds what every experiment shares: data, augmentation, evaluation, optimisation and
the run. A method's own settings (a heatmap model's architecture, sigma, loss...) live in a
subclass beside the method (heatnet.method.HeatmapSettings, or an experiment's own dataclass), so
an experiment takes exactly the settings its build() reads:

    settings = HeatmapSettings(epochs=12, lr=2e-3, architecture=smp.FPN, decoder=Dark())

Every setting can be overridden as --key=value; the value is parsed by the field's annotation:
numbers and booleans as such, enums by value, a choice of classes by class name
(`--architecture=FPN`, `--loss=HeatmapJS`), a choice of small frozen dataclasses by name with
optional keywords (`--decoder=Dark`, `--decoder="SoftArgmax(window_radius=3)"`). Stored settings
are written the same way (a dataclass as its repr, a class as its name), so one parser reads both.

This module imports neither torch nor smp, so `--help` lists the settings at once.
"""
from __future__ import annotations

import ast
import dataclasses
import enum
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from heatnet.crop import CropBox
from heatnet.errors import ConfigError
from heatnet.schedules import Cosine, Schedule

__all__ = ["AT_LEAST_ONE", "ConfigError", "NOT_NEGATIVE", "OneOf", "POSITIVE", "PROBABILITY", "Range", "Settings",
           "apply_overrides", "check_allowed", "extend", "from_plain", "method_settings", "parse_overrides",
           "parse_value", "setting", "settings_dict", "settings_help", "to_plain"]


@dataclass(frozen=True)
class Range:
    """The values a numeric setting allows: low <= value <= high (< where that end is open)."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def allows(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"


@dataclass(frozen=True)
class OneOf:
    """The values a setting allows, listed."""

    values: tuple

    def allows(self, value) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(str(v) for v in self.values)


POSITIVE = Range(0, open_low=True)
NOT_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
PROBABILITY = Range(0, 1)


def setting(default: Any, help: str, allowed: Range | OneOf | None = None, *, section: str = "") -> Any:
    """A settings field with its `--help` text, the values it allows (every number declares them:
    checked once, when settings are made) and, on a section's first field, the heading."""
    return dataclasses.field(default=default, metadata={"help": help, "section": section, "allowed": allowed})


def check_allowed(settings) -> None:
    """ConfigError naming the first field of a settings dataclass whose value its `allowed` refuses."""
    for f in dataclasses.fields(settings):
        allowed, value = f.metadata.get("allowed"), getattr(settings, f.name)
        if allowed is not None and not allowed.allows(value):
            raise ConfigError(f"--{f.name}={value}: must be {allowed} ({f.metadata['help']})")


class InputPath(enum.Enum):
    """Where training crops are cut and augmented (heatnet.device_input says how)."""

    AUTO = "auto"  # device on CUDA, workers elsewhere
    WORKERS = "workers"  # loader processes crop (OpenCV) and augment (albumentations) each sample
    DEVICE = "device"  # workers only decode; crop, geometry and appearance batched on the training device

    def on(self, device_type: str) -> InputPath:
        """AUTO decided for a device type ("cpu", "cuda")."""
        if self is InputPath.AUTO:
            return InputPath.DEVICE if device_type == "cuda" else InputPath.WORKERS
        return self


@dataclass
class Settings:
    dataset: str = setting("synthetic", "a name in heatnet.datasets.DATASETS", section="data")
    data_root: str = setting("", "empty: $HEATNET_DATA")
    train_split: str = setting("train", "the split trained on (train = trainval minus val)")
    val_split: str = setting("val", "chooses best.pt and early stopping; empty: no validation, the last checkpoint "
                                    "is kept")
    test_split: str = setting("test", "read once after training, on the chosen checkpoint; empty: not evaluated")
    train_limit: int = setting(0, "use only the first N training samples (0: all)", NOT_NEGATIVE)
    val_limit: int = setting(0, "use only the first N validation samples (0: all)", NOT_NEGATIVE)
    test_limit: int = setting(0, "quick runs only: figures are reported on the whole test split", NOT_NEGATIVE)
    input_size: int = setting(128, "side of the square face crop the model sees, in pixels", Range(8, 4096))
    channels: int = setting(3, "1 for grayscale input", OneOf((1, 3)))
    box: CropBox = setting(CropBox.LANDMARKS, "crop around the landmark box, the annotation's face box or the whole "
                                              "image")
    box_scale: float = setting(1.25, "crop side = box_scale x the longer side of the box", Range(0, 10, open_low=True))
    strict_data: bool = setting(False, "fail on the first bad sample instead of skipping it")
    cache_images: bool = setting(False, "decode every image once and keep it in memory (small datasets such as IMM)")
    complete_only: bool = setting(False, "train only on samples with every point labelled (dropping rows, as Kaggle "
                                         "notebooks did)")
    augment: bool = setting(True, "False: no augmentation at all", section="augmentation (training split only)")
    rotation_deg: float = setting(30.0, "uniform in +-rotation_deg", Range(0, 180))
    scale_jitter: float = setting(0.15, "zoom uniform in 1 +- scale_jitter", Range(0, 1, open_high=True))
    shift: float = setting(0.08, "uniform in +-shift of the crop side, per axis", Range(0, 1))
    mirror_prob: float = setting(0.5, "mirrored with the scheme's flip map", PROBABILITY)
    color_prob: float = setting(0.8, "probability of brightness, contrast, saturation and hue jitter", PROBABILITY)
    gray_prob: float = setting(0.1, "probability of turning the crop grayscale", PROBABILITY)
    blur_prob: float = setting(0.2, "probability of a Gaussian or motion blur", PROBABILITY)
    noise_prob: float = setting(0.3, "probability of Gaussian sensor noise", PROBABILITY)
    occlusion_prob: float = setting(0.3, "probability of one or two random rectangles hiding part of the face",
                                    PROBABILITY)
    flip_test: bool = setting(False, "validate and test on the mean of the image's and its mirror's predictions",
                              section="evaluation")
    batch_size: int = setting(16, "samples per optimizer step", AT_LEAST_ONE, section="optimisation")
    epochs: int = setting(10, "passes over the training split (0: no epoch limit; max_steps or time_budget_min ends "
                              "the run)", NOT_NEGATIVE)
    max_steps: int = setting(0, "stop after this many optimizer steps (0: epochs decide)", NOT_NEGATIVE)
    time_budget_min: float = setting(0.0, "converted once into max_steps by timing training steps (0: off)",
                                     NOT_NEGATIVE)
    lr: float = setting(1e-3, "peak learning rate (AdamW)", POSITIVE)
    weight_decay: float = setting(1e-4, "AdamW; 0 gives Adam", NOT_NEGATIVE)
    schedule: Schedule = setting(Cosine(), "learning-rate factor as a function of the step, after warm-up")
    warmup_epochs: float = setting(0.5, "linear warm-up length", NOT_NEGATIVE)
    grad_clip: float = setting(5.0, "max gradient norm (0: off)", NOT_NEGATIVE)
    ema_decay: float = setting(0.0, "exponential moving average of the weights, which validation, best.pt and tests "
                                    "use (0: off)", Range(0, 1, open_high=True))
    early_stop_patience: int = setting(0, "validations without a better NME before stopping (0: off)", NOT_NEGATIVE)
    seed: int = setting(0, "weights, data order and augmentation all follow from it", Range(0, 2**32 - 1), section="run")
    threads: int = setting(0, "torch intra-op threads (0: all cores)", NOT_NEGATIVE)
    workers: int = setting(2, "data-loader processes", NOT_NEGATIVE)
    input_path: InputPath = setting(InputPath.AUTO, "training crops cut and augmented by the loader's workers, or in "
                                                    "batches on the training device (auto: device on CUDA)")
    device_cache_gb: float = setting(8.0, "device input path: keep every decoded canvas on the device when they take at "
                                          "most this much (0: workers decode them every epoch)", NOT_NEGATIVE)
    compile: bool = setting(False, "torch.compile the training forward pass (CUDA; costs a minute to start)")
    amp: bool = setting(True, "mixed precision on CUDA: bf16 where supported, else fp16 with a gradient scaler")
    device: str = setting("", "empty: cuda when available, else cpu")
    init_from: str = setting("", "heatnet checkpoint whose matching weights initialise the model")
    checkpoint_minutes: float = setting(5.0, "also save `last.pt` mid-epoch this often", NOT_NEGATIVE)
    keep_last: bool = setting(True, "keep last.pt (weights + optimizer state, ~3x best.pt) once the run has finished")
    log_images: int = setting(8, "validation images drawn to TensorBoard per epoch", NOT_NEGATIVE)

    def __post_init__(self) -> None:
        check_allowed(self)
        if not (self.epochs > 0 or self.max_steps > 0 or self.time_budget_min > 0):
            raise ConfigError(f"--epochs must be positive, got {self.epochs} (0 only with --max_steps or "
                              f"--time_budget_min)")


# --- text <-> typed values ----------------------------------------------------------------------
def _options(kind) -> tuple:
    return typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)


def _choice_names(kind) -> list[str]:
    """What a setting of this annotation may be: an enum's values, or the class names of a union."""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [member.value for member in kind]
    return [(typing.get_args(option)[0] if typing.get_origin(option) is type else option).__name__
            for option in _options(kind)]


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


def extend(settings: Settings, method: Settings | type[Settings], **changes) -> Settings:
    """The shared fields of `settings` (data, augmentation, evaluation, optimisation, run) with the
    method settings of `method`: a Settings subclass (its defaults) or an instance (its values);
    then `changes`. How an experiment takes another's data and budget with its own method."""
    shared = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings)}
    return dataclasses.replace(method if isinstance(method, Settings) else method(), **{**shared, **changes})


def method_settings(cls: type[Settings]) -> list[str]:
    """The fields a Settings subclass adds to the shared ones: what its method's build() reads."""
    shared = {f.name for f in dataclasses.fields(Settings)}
    return [f.name for f in dataclasses.fields(cls) if f.name not in shared]


def settings_help(settings: Settings | type[Settings] = Settings) -> str:
    """`--help` text: one entry per field (value, choices, help) under its section's heading; the
    values an instance holds (an experiment's settings), or a class's defaults."""
    values = settings if isinstance(settings, Settings) else settings()
    hints = typing.get_type_hints(type(values))
    first_own = next(iter(method_settings(type(values))), None)  # a subclass's fields come after the shared ones
    lines = [f"settings of {type(values).__module__}.{type(values).__name__} (--key=value), with the values an "
             f"experiment gives them" if isinstance(settings, Settings) else
             "settings every experiment takes (--key=value), with their defaults; an experiment's method adds its own "
             "(tools/train.py EXPERIMENT --help lists them, with the experiment's values):"]
    for f in dataclasses.fields(values):
        section = "method: what the experiment's build() reads" if f.name == first_own else f.metadata.get("section")
        if section:
            lines.append(f"\n  {section}")
        kind = hints[f.name]
        choices = " | ".join(_choice_names(kind)) if kind not in (bool, int, float, str) else kind.__name__
        value = to_plain(getattr(values, f.name))
        value = str(value).lower() if isinstance(value, bool) else value if value != "" else '""'
        allowed = f.metadata.get("allowed")
        lines.append(f"    --{f.name}={value}  ({choices}{', ' + str(allowed) if allowed else ''})"
                     + (f"\n        {f.metadata['help']}" if f.metadata.get("help") else ""))
    return "\n".join(lines)


def settings_dict(settings: Settings) -> dict:
    return {f.name: to_plain(getattr(settings, f.name)) for f in dataclasses.fields(settings)}


def parse_overrides(cls: type[Settings], overrides: list[str], owner: str = "") -> dict[str, Any]:
    """`--key=value` strings -> {field: typed value}, parsed by the annotations of `cls` (Settings
    or a method's subclass of it, such as heatnet.method.HeatmapSettings or an experiment's own).
    A key `cls` lacks is an error naming `owner` (the experiment) and the method settings it
    takes. The command line's parser: library functions take Settings and typed values."""
    hints = typing.get_type_hints(cls)
    changes, unknown = {}, []
    for item in overrides:
        if not item.startswith("--") or "=" not in item:
            raise ConfigError(f"override {item!r} should look like --key=value")
        key, text = item[2:].split("=", 1)
        key = key.replace("-", "_")
        if key in hints:
            changes[key] = parse_value(key, text, hints[key])
        else:
            unknown.append(f"--{key}")
    if unknown:
        own = method_settings(cls)
        owner = owner or (cls.__name__ if own else "")
        raise ConfigError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
                          f"{' for ' + owner if owner else ''}; " + (
                              f"its method reads {', '.join('--' + key for key in sorted(own))}, beside the settings "
                              f"every experiment takes (tools/train.py --help)" if own else
                              f"valid: {', '.join(sorted(hints))}"))
    return changes


def apply_overrides(settings: Settings, overrides: list[str], owner: str = "") -> Settings:
    """`--key=value` strings onto a copy of `settings` (parse_overrides, then dataclasses.replace)."""
    return dataclasses.replace(settings, **parse_overrides(type(settings), overrides, owner))
