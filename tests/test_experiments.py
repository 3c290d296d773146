"""Every experiment file is imported, built at a tiny size and trained one step on synthetic faces."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import segmentation_models_pytorch as smp

from conftest import settings_for
from heatnet.codecs import GaussianHeatmap, SoftArgmax
from heatnet.config import ConfigError, Settings, apply_overrides
from heatnet.crop import CropBox
from heatnet.experiment import load_experiment
from heatnet.losses import HeatmapJS, L1
from heatnet.method import HeatmapSettings, RegressionSettings
from heatnet.schedules import StepDecay
from heatnet.samples import LandmarkDataset, RecordSource
from heatnet.formats import Record
from heatnet.schemes import NOSE_TIP
from heatnet.samples import to_device_batch
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


def test_overrides_reach_the_method():
    s = apply_overrides(HeatmapSettings(), ["--sigma=2.5", "--stride=2", "--encoder=resnet34", "--architecture=fpn",
                                            "--loss=HeatmapJS", "--decoder=SoftArgmax(window_radius=3)",
                                            "--rotation_deg=10", "--schedule=StepDecay(every_epochs=2, gamma=0.5)",
                                            "--box=annotation"])
    assert (s.sigma, s.stride, s.encoder, s.architecture, s.loss) == (2.5, 2, "resnet34", smp.FPN, HeatmapJS)
    assert s.decoder == SoftArgmax(window_radius=3) and s.schedule == StepDecay(every_epochs=2, gamma=0.5)
    assert s.box is CropBox.ANNOTATION and s.rotation_deg == 10
    method = load_experiment(EXPERIMENTS[0].parent / "unet_kl.py").build(s, SyntheticFaces.scheme)
    assert isinstance(method.loss, HeatmapJS) and method.codec == GaussianHeatmap(128, 2, 2.5, SoftArgmax(window_radius=3))
    assert type(method.model.net) is smp.FPN and method.model.stride == 2


def test_a_loss_that_does_not_fit_the_codec_is_a_config_error():
    s = replace(HeatmapSettings(), loss=L1)  # past the annotation, as a Python caller could
    with pytest.raises(ConfigError, match="L1 needs a NormalisedCoordinates codec"):
        load_experiment(EXPERIMENTS[0].parent / "unet_kl.py").build(s, SyntheticFaces.scheme)


def test_missing_experiment_file():
    with pytest.raises(ConfigError, match="not found"):
        load_experiment("experiments/nope.py")


def test_an_experiments_own_settings_take_overrides_and_survive_its_checkpoint(tmp_path):
    """regression_resnet18 subclasses Settings (blurpool, dropout): --blurpool=false reaches the
    model, is stored, and rebuilds the same model on loading and on resuming."""
    from heatnet.evaluation import load_trained
    from heatnet.models import BlurPool
    from heatnet.training import resume, train

    path = EXPERIMENTS[0].parent / "regression_resnet18.py"
    base = load_experiment(path).settings
    assert apply_overrides(base, ["--blurpool=false"]).blurpool is False
    with pytest.raises(ConfigError, match="--blurpool expects true/false"):
        apply_overrides(base, ["--blurpool=sometimes"])
    with pytest.raises(ConfigError, match="unknown setting --blurpool"):
        apply_overrides(RegressionSettings(), ["--blurpool=false"])  # only where the experiment declares it
    tiny = ["--input_size=64", "--train_limit=8", "--val_limit=4", "--test_limit=4", "--batch_size=4", "--workers=0",
            "--log_images=0", "--blurpool=false", "--dropout=0.25"]
    train(path, settings_for(path, tiny + ["--epochs=1"]), run_dir=tmp_path / "run", progress=False)
    method, s, _ = load_trained(tmp_path / "run" / "best.pt")
    assert (s.blurpool, s.dropout) == (False, 0.25)
    assert not any(isinstance(m, BlurPool) for m in method.model.modules())
    result = resume(tmp_path / "run", progress=False)  # its stored settings parse back (finished: no steps)
    assert result.steps == 2 and load_trained(tmp_path / "run" / "best.pt")[1].blurpool is False
