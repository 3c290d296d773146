"""Settings, and how command-line text becomes them: typed by the field's annotation, every
mistake named, and stored settings that round-trip through plain values."""
from dataclasses import replace

import pytest

from heatnet.codecs import Dark
from heatnet.config import (ConfigError, Settings, apply_overrides, extend, from_plain, method_settings, parse_overrides,
                            settings_dict, settings_help)
from heatnet.losses import HeatmapJS, Wing
from heatnet.method import HeatmapSettings, RegressionSettings
from heatnet.schedules import Cosine


def test_overrides_are_type_checked():
    s = Settings()
    assert apply_overrides(s, ["--lr=0.5", "--augment=false", "--epochs=3"]) == replace(s, lr=0.5, augment=False, epochs=3)
    with pytest.raises(ConfigError, match="unknown setting --lr_max; valid: .*batch_size"):
        apply_overrides(s, ["--lr_max=1"])
    with pytest.raises(ConfigError, match="--epochs expects int, got 'ten'"):
        apply_overrides(s, ["--epochs=ten"])
    with pytest.raises(ConfigError, match="--schedule expects one of Cosine, StepDecay, Exponential, Constant"):
        apply_overrides(s, ["--schedule=cosin"])


def test_overrides_use_annotations_not_default_types():
    """A float setting whose value is an int still takes 0.5; an int setting refuses 3.5."""
    s = replace(Settings(), lr=1, warmup_epochs=0)
    assert apply_overrides(s, ["--lr=0.5", "--warmup_epochs=0.25"]).lr == 0.5
    with pytest.raises(ConfigError, match="--batch_size expects int"):
        apply_overrides(s, ["--batch_size=3.5"])


@pytest.mark.parametrize("bad, message", [
    ("--decoder=Dark(3)", "by keyword"), ("--decoder=Dark(sharp=True)", "unexpected keyword"),
    ("--architecture=FPN(x=1)", "without arguments"), ("--loss=Huber", "expects one of HeatmapKL"),
    ("--box=face", "expects one of landmarks, annotation"), ("--batch_size=0", "--batch_size=0: must be >= 1"),
    ("--channels=2", "--channels=2: must be one of 1, 3 \\(1 for grayscale"), ("--stride=3", "--stride=3: must be one of 1, 2, 4"),
    ("--epochs=0", "must be positive, got 0 \\(0 only with --max_steps or --time_budget_min\\)")])
def test_bad_overrides_name_the_setting(bad, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(HeatmapSettings(), [bad])


def test_settings_round_trip_through_plain_values():
    s = apply_overrides(HeatmapSettings(), ["--decoder=Dark(blur=True)", "--architecture=FPN", "--loss=HeatmapJS",
                                            "--schedule=StepDecay(every_epochs=3)"])
    plain = settings_dict(s)
    assert plain["decoder"] == "Dark(blur=True)" and plain["architecture"] == "FPN" and plain["loss"] == "HeatmapJS"
    assert from_plain(HeatmapSettings, plain) == s and from_plain(Settings, settings_dict(Settings())) == Settings()
    assert s.loss is HeatmapJS and s.decoder == Dark(blur=True) and Settings().schedule == Cosine()


def test_overrides_parse_into_typed_changes():
    assert parse_overrides(HeatmapSettings, ["--sigma=2", "--decoder=Dark(blur=True)", "--max-steps=5"]) == {
        "sigma": 2.0, "decoder": Dark(blur=True), "max_steps": 5}
    with pytest.raises(ConfigError, match="should look like --key=value"):
        parse_overrides(Settings, ["sigma=2"])


def test_no_epoch_limit_needs_another_budget():
    assert replace(Settings(), epochs=0, max_steps=10).max_steps == 10
    assert replace(Settings(), epochs=0, time_budget_min=1.0).epochs == 0
    with pytest.raises(ConfigError, match="--epochs must be positive"):
        replace(Settings(), epochs=0)


def test_the_shared_settings_import_neither_torch_nor_smp():
    """--help lists them at once: heatnet.config and what it imports stay free of torch."""
    import subprocess
    import sys

    probe = "import sys, heatnet.config; print(sorted({'torch', 'segmentation_models_pytorch'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_method_settings_belong_to_the_method():
    assert method_settings(HeatmapSettings) == ["architecture", "encoder", "stride", "sigma", "loss", "decoder",
                                               "split_ratio", "neighbours"]
    assert method_settings(RegressionSettings) == ["loss"] and method_settings(Settings) == []
    with pytest.raises(ConfigError, match="--loss expects one of L1, SmoothL1, MSE, Wing, RLE, got 'HeatmapKL'"):
        apply_overrides(RegressionSettings(), ["--loss=HeatmapKL"])
    with pytest.raises(ConfigError, match="unknown settings --sigma, --stride for experiment x; its method reads --loss"):
        apply_overrides(RegressionSettings(), ["--sigma=2", "--stride=2"], owner="experiment x")


def test_extend_takes_the_shared_settings_and_another_method():
    data = replace(RegressionSettings(loss=Wing), dataset="300w", lr=0.5, input_size=96)
    heatmap = HeatmapSettings(sigma=2.0)
    s = extend(data, heatmap, epochs=3)
    assert type(s) is HeatmapSettings and (s.dataset, s.lr, s.input_size, s.epochs, s.sigma) == ("300w", 0.5, 96, 3, 2.0)
    assert extend(s, RegressionSettings).loss is RegressionSettings().loss  # a class: its defaults


def test_help_lists_every_field_with_its_value_choices_and_text():
    text = settings_help(replace(HeatmapSettings(), sigma=2.5))
    for name in settings_dict(HeatmapSettings()):
        assert f"--{name}=" in text, name
    assert "--sigma=2.5  (float, in (0, 64])\n        target Gaussian std in heatmap pixels" in text
    assert "--box=landmarks  (landmarks | annotation | image)" in text and "--augment=true  (bool)" in text
    assert "\n  method: what the experiment's build() reads\n    --architecture=Unet  (Unet | FPN |" in text
    assert "--architecture" not in settings_help(Settings) and "\n  optimisation\n    --batch_size=16" in settings_help()


def _settings_classes() -> list[type]:
    """Settings, the methods' subclasses and every experiment's own."""
    import dataclasses
    import importlib
    from pathlib import Path

    classes = {Settings, HeatmapSettings, RegressionSettings}
    for path in sorted((Path(__file__).parents[1] / "experiments").glob("*.py")):
        module = importlib.import_module(f"experiments.{path.stem}")
        classes |= {value for value in vars(module).values()
                    if isinstance(value, type) and issubclass(value, Settings) and dataclasses.is_dataclass(value)}
    return sorted(classes, key=lambda cls: cls.__name__)


def test_every_numeric_setting_declares_the_values_it_allows():
    import dataclasses
    import typing

    checked, missing = 0, []
    for cls in _settings_classes():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] in (int, float):
                checked += 1
                allowed = f.metadata.get("allowed")
                if allowed is None:
                    missing.append(f"{cls.__name__}.{f.name}")
                else:  # the default itself is allowed
                    assert allowed.allows(f.default), f"{cls.__name__}.{f.name}"
    assert not missing, f"numeric settings without a declared range: {missing}"
    assert len(_settings_classes()) >= 5 and checked >= 35, checked


@pytest.mark.parametrize("change,message", [
    ({"sigma": 0.0}, r"--sigma=0.0: must be in \(0, 64\]"),
    ({"sigma": -1.0}, r"--sigma=-1.0: must be in \(0, 64\]"),
    ({"rotation_deg": -5.0}, r"--rotation_deg=-5.0: must be in \[0, 180\]"),
    ({"box_scale": 0.0}, r"--box_scale=0.0: must be in \(0, 10\]"),
    ({"mirror_prob": 2.0}, r"--mirror_prob=2.0: must be in \[0, 1\]"),
    ({"stride": 3}, r"--stride=3: must be one of 1, 2, 4"),
    ({"input_size": 126}, r"--stride=4: must divide --input_size=126"),
])
def test_a_value_out_of_range_is_refused_where_settings_are_made(change, message):
    """From Python (replace) and from the command line (apply_overrides) alike."""
    with pytest.raises(ConfigError, match=message):
        replace(HeatmapSettings(), **change)
    key, value = next(iter(change.items()))
    with pytest.raises(ConfigError, match=message):
        apply_overrides(HeatmapSettings(), [f"--{key}={value}"])


def test_help_lists_each_settings_range():
    text = settings_help(HeatmapSettings)
    assert "--mirror_prob=0.5  (float, in [0, 1])" in text and "--sigma=1.5  (float, in (0, 64])" in text
