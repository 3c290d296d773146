"""Checkpoints: what is not one is refused with a message that names the file and never suggests
unsafe loading; a real one round-trips."""
import os
import pickle

import pytest
import torch

from conftest import in_process, one_line_error
from heatnet.checkpoint import CheckpointError, load_checkpoint
from heatnet.predict import PRETRAINED


class Foreign:  # an arbitrary Python object, which weights_only loading refuses
    pass


def _foreign_pickle(path):
    torch.save({"model": Foreign(), "scheme": "ibug68"}, path)


@pytest.mark.parametrize("make, kind", [
    (lambda p: p.write_bytes(os.urandom(4096)), "not a PyTorch file"),
    (lambda p: p.write_text("hello, I am a text file\n"), "not a PyTorch file"),
    (lambda p: p.write_bytes(PRETRAINED.read_bytes()[:100_000]), "a damaged checkpoint"),
    (_foreign_pickle, "holds Python objects that heatnet does not load"),
])
def test_what_is_not_a_checkpoint_is_refused_without_unsafe_advice(tmp_path, make, kind):
    path = tmp_path / "model.pt"
    make(path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a heatnet checkpoint") and kind in message, message
    assert "weights_only" not in message and "arbitrary code" not in message and "\n" not in message
    one_line_error(in_process("tools/evaluate.py", str(path)), f"{path}: not a heatnet checkpoint")


def test_a_plain_pickle_is_not_a_checkpoint_either(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"model": 1}))
    with pytest.raises(CheckpointError, match="not a heatnet checkpoint"):
        load_checkpoint(path)


def test_the_shipped_checkpoint_loads(tmp_path):
    state = load_checkpoint(PRETRAINED)
    assert state["scheme"] == "ibug68" and state["num_points"] == 68 and "training" not in state


def test_every_codec_round_trips_and_fields_added_since_take_their_defaults():
    """Each codec rebuilds from its stored description to an equal codec; a HeatmapOffsets stored
    before it had `neighbours` rebuilds as the plain offsets head it was; an unknown codec type is
    refused by name."""
    from heatnet.checkpoint import CODECS, codec_description, codec_from_description
    from heatnet.codecs import AxisHeatmaps, CoordinatesWithScale, Dark, GaussianHeatmap, HeatmapOffsets
    from heatnet.codecs import NormalisedCoordinates

    codecs = [GaussianHeatmap(96, 4, 1.5, Dark(blur=True)), NormalisedCoordinates(96), CoordinatesWithScale(64),
              AxisHeatmaps(64, 2.0, 8.0), HeatmapOffsets(64, 4, 1.0, ((1, 2), (0, 2), (1, 0)))]
    assert {type(c) for c in codecs} == set(CODECS)
    for codec in codecs:
        assert codec_from_description(codec_description(codec)) == codec
    old = codec_from_description({"type": "HeatmapOffsets", "input_size": 160, "stride": 4, "sigma": 1.0})
    assert old == HeatmapOffsets(160, 4, 1.0) and old.maps_per_point == 3
    with pytest.raises(CheckpointError, match="unknown codec 'Simcc'"):
        codec_from_description({"type": "Simcc", "input_size": 160})
