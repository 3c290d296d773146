"""Every experiment file is imported, built at a tiny size and trained one step on synthetic faces."""
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from heatnet.config import ConfigError, Settings, apply_overrides, load_experiment
from heatnet.data import LandmarkDataset
from heatnet.evaluation import to_device_batch
from heatnet.synthetic import SyntheticFaces

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("[!_]*.py"))


def test_there_are_experiments():
    assert {"unet_kl", "unet_mse", "fpn_kl", "fpn_mse", "unet_softargmax", "regression_resnet18",
            "regression_cnn"} <= {p.stem for p in EXPERIMENTS}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_builds_and_trains_one_step(path):
    module = load_experiment(path)
    assert isinstance(module.settings, Settings)
    assert 10 <= len(path.read_text().splitlines()) <= 60
    s = module.settings
    small = 64 if s.input_size >= 64 and s.input_size % 32 == 0 else s.input_size  # seed CNNs keep theirs
    s = replace(s, input_size=small, batch_size=2)
    source = SyntheticFaces(2, image_size=96)
    if s.dataset in ("imm_nose",):  # one-point schemes: train on the synthetic nose tip
        pytest.skip("nose-tip scheme is exercised in test_nose_tip_experiment_one_step")
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
    assert decoded.shape == (2, 68, 2) and torch.isfinite(decoded).all()


def test_nose_tip_experiment_one_step():
    from heatnet.data import RecordSource
    from heatnet.formats import Record
    from heatnet.schemes import NOSE_TIP

    module = load_experiment(Path(__file__).resolve().parents[1] / "experiments" / "imm_nose_tip_cnn.py")
    face = SyntheticFaces(1, image_size=96)[0]
    record = Record(Path("face.png"), face.points[30:31], face.visibility[30:31], pixels=face.image)
    source = RecordSource([record, record], NOSE_TIP, normalisers=[face.normaliser] * 2,
                          boxes=[face.points.min(0).tolist() + face.points.max(0).tolist()] * 2)
    s = module.settings
    method = module.build(s, NOSE_TIP)
    batch = torch.utils.data.default_collate([LandmarkDataset(source, s.input_size, s.channels)[i] for i in range(2)])
    images, points, visibility = to_device_batch(batch, torch.device("cpu"))
    loss = method.loss(method.model(images), points, visibility)
    loss.backward()
    assert torch.isfinite(loss) and method.decode(method.model(images))[0].shape == (2, 1, 2)


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
