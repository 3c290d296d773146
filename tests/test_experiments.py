"""Every experiment file is imported, built at a tiny size and trained one step on synthetic faces."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from heatnet.config import ConfigError, Settings, apply_overrides, load_experiment
from heatnet.data import LandmarkDataset, RecordSource
from heatnet.formats import Record
from heatnet.schemes import NOSE_TIP
from heatnet.evaluation import to_device_batch
from heatnet.synthetic import SyntheticFaces

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("[!_]*.py"))


def test_there_are_experiments():
    assert {"unet_kl", "unet_mse", "fpn_kl", "fpn_mse", "unet_softargmax", "regression_resnet18",
            "regression_cnn"} <= {p.stem for p in EXPERIMENTS}


def _synthetic_source(dataset: str):
    """Two synthetic faces in the scheme the experiment's dataset uses (68 points, or the nose tip)."""
    faces = SyntheticFaces(2, image_size=96)
    if dataset != "imm_nose":
        return faces
    samples = [faces[i] for i in range(2)]
    records = [Record(Path(f"{i}.png"), f.points[30:31], f.visibility[30:31], pixels=f.image) for i, f in enumerate(samples)]
    return RecordSource(records, NOSE_TIP, normalisers=[f.normaliser for f in samples],
                        boxes=[np.concatenate([f.points.min(0), f.points.max(0)]) for f in samples])


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_builds_and_trains_one_step(path):
    module = load_experiment(path)
    assert isinstance(module.settings, Settings)
    assert len(path.read_text().splitlines()) <= 60  # short modules, not config sprawl
    s = module.settings
    small = 64 if s.input_size % 32 == 0 else s.input_size  # the seed CNNs keep their input size
    s = replace(s, input_size=small, batch_size=2)
    source = _synthetic_source(s.dataset)
    method = module.build(s, source.scheme)
    method.model.check_input_size(s.input_size)
    batch = torch.utils.data.default_collate([LandmarkDataset(source, s.input_size, s.channels)[i] for i in range(2)])
    images, points, visibility = to_device_batch(batch, torch.device("cpu"))
    optimizer = torch.optim.AdamW(method.model.parameters(), lr=1e-3)
    loss = method.loss(method.model(images), points, visibility)
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    decoded, scores = method.decode(method.model(images))
    assert decoded.shape == (2, source.scheme.num_points, 2) and torch.isfinite(decoded).all()


def test_overrides_are_type_checked():
    s = Settings()
    assert apply_overrides(s, ["--lr=0.5", "--augment=false", "--epochs=3"]) == replace(s, lr=0.5, augment=False, epochs=3)
    with pytest.raises(ConfigError, match="unknown setting --lr_max; valid: .*batch_size"):
        apply_overrides(s, ["--lr_max=1"])
    with pytest.raises(ConfigError, match="--epochs expects int, got 'ten'"):
        apply_overrides(s, ["--epochs=ten"])
    with pytest.raises(ConfigError, match="cosine"):
        apply_overrides(s, ["--schedule=cosin"])


def test_missing_experiment_file():
    with pytest.raises(ConfigError, match="not found"):
        load_experiment("experiments/nope.py")
