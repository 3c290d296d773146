"""From settings to datasets and loaders: the data order is a function of (seed, epoch) alone."""
import dataclasses

import pytest

from heatnet.config import ConfigError, Settings
from heatnet.crop import CropBox
from heatnet.loading import EpochSampler, make_dataset


def test_an_epoch_order_depends_on_seed_and_epoch_only_and_resumes_mid_epoch():
    order = list(EpochSampler(50, seed=3, epoch=2))
    assert sorted(order) == list(range(50)) and order == list(EpochSampler(50, seed=3, epoch=2))
    assert order != list(EpochSampler(50, seed=3, epoch=3)) and order != list(EpochSampler(50, seed=4, epoch=2))
    assert list(EpochSampler(50, seed=3, epoch=2, start=17)) == order[17:]  # a resumed epoch continues its order
    assert len(EpochSampler(50, seed=3, epoch=2, start=17)) == 33


def test_make_dataset_takes_the_settings_crop_and_limit():
    s = dataclasses.replace(Settings(), input_size=64, channels=1, box_scale=1.5)
    dataset = make_dataset(s, "val", limit=5)
    assert len(dataset) == 5 and dataset.crop.size == 64 and dataset.crop.channels == 1
    assert dataset[0]["image"].shape == (1, 64, 64) and dataset.crop.box_scale == 1.5


def test_annotation_boxes_are_refused_for_data_without_them():
    with pytest.raises(ConfigError, match="--box=annotation: synthetic/val has no face boxes"):
        make_dataset(dataclasses.replace(Settings(), box=CropBox.ANNOTATION), "val", limit=2)
