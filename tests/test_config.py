"""Settings, and how command-line text becomes them: typed by the field's annotation, every
mistake named, and stored settings that round-trip through plain values."""
from dataclasses import replace

import pytest

from heatnet.codecs import Dark
from heatnet.config import ConfigError, Settings, apply_overrides, from_plain, parse_overrides, settings_dict
from heatnet.losses import L1
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
    ("--box=face", "expects one of landmarks, annotation"), ("--batch_size=0", "must be positive"),
    ("--channels=2", "1 \\(grayscale\\) or 3"), ("--stride=3", "--stride must be 1, 2 or 4"),
    ("--epochs=0", "must be positive, got 0 \\(0 only with --max_steps or --time_budget_min\\)")])
def test_bad_overrides_name_the_setting(bad, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Settings(), [bad])


def test_settings_round_trip_through_plain_values():
    s = apply_overrides(Settings(), ["--decoder=Dark(blur=True)", "--architecture=FPN", "--loss=L1",
                                     "--schedule=StepDecay(every_epochs=3)"])
    plain = settings_dict(s)
    assert plain["decoder"] == "Dark(blur=True)" and plain["architecture"] == "FPN" and plain["loss"] == "L1"
    assert from_plain(Settings, plain) == s and from_plain(Settings, settings_dict(Settings())) == Settings()
    assert s.loss is L1 and s.decoder == Dark(blur=True) and Settings().schedule == Cosine()


def test_overrides_parse_into_typed_changes():
    assert parse_overrides(Settings, ["--sigma=2", "--decoder=Dark(blur=True)", "--max-steps=5"]) == {
        "sigma": 2.0, "decoder": Dark(blur=True), "max_steps": 5}
    with pytest.raises(ConfigError, match="should look like --key=value"):
        parse_overrides(Settings, ["sigma=2"])


def test_no_epoch_limit_needs_another_budget():
    assert replace(Settings(), epochs=0, max_steps=10).max_steps == 10
    assert replace(Settings(), epochs=0, time_budget_min=1.0).epochs == 0
    with pytest.raises(ConfigError, match="--epochs must be positive"):
        replace(Settings(), epochs=0)
