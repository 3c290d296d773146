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
