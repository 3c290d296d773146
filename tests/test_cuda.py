"""CUDA smoke test (`-m cuda`; skipped where no GPU): train a few steps under the precision
policy (bf16 autocast, or fp16 with a gradient scaler), resume, evaluate."""
import json
from pathlib import Path

import pytest
import torch

from conftest import settings_for
from heatnet.evaluation import evaluate, load_trained
from heatnet.loading import make_dataset, make_loader
from heatnet.runtime import choose_precision
from heatnet.training import resume, train

ROOT = Path(__file__).resolve().parents[1]
UNET_KL = ROOT / "experiments/unet_kl.py"
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
TINY = ["--input_size=64", "--train_limit=64", "--val_limit=32", "--test_limit=32", "--batch_size=16", "--workers=2",
        "--device=cuda", "--log_images=2"]


def test_train_resume_and_evaluate_on_cuda(tmp_path):
    device = torch.device("cuda")
    precision = choose_precision(device, amp=True)
    assert precision.dtype in (torch.bfloat16, torch.float16)
    assert (precision.grad_scaler() is None) == (precision.dtype is torch.bfloat16)
    first = train(UNET_KL, settings_for(UNET_KL, TINY + ["--epochs=1"]), run_dir=tmp_path, progress=False)
    assert first.steps == 4
    # the device path is CUDA's default (--input_path=auto), its canvases cached on the GPU
    described = json.loads((tmp_path / "run.json").read_text())["input"]
    assert described.startswith("device path") and "cached on cuda" in described, described
    resumed = resume(tmp_path, {"epochs": 3}, progress=False)  # a larger budget extends the run
    assert resumed.steps == 12 and len(resumed.history) == 3
    assert resumed.budget["extensions"] == [{"at_step": 4, "previous_total_steps": 4, "total_steps": 12}]
    again = resume(tmp_path, progress=False)  # finished, same budget: nothing trained or read
    assert again.steps == 12 and again.test == json.loads((tmp_path / "metrics.json").read_text())["test"]
    assert resumed.history[-1]["nme_%"] < resumed.history[0]["nme_%"]
    method, s, _ = load_trained(tmp_path / "best.pt", device)
    result = evaluate(method, make_loader(make_dataset(s, s.val_split, s.val_limit), s), device, precision=precision)
    best = json.loads((tmp_path / "metrics.json").read_text())["best_nme"]
    assert result.summary()["nme_%"] == pytest.approx(best, rel=1e-3)


def test_the_device_path_on_cuda_crops_and_augments_as_on_the_cpu():
    from heatnet.augment import Augmentation
    from heatnet.device_input import Canvases, DeviceAugmentation
    from heatnet.samples import LandmarkDataset, collate
    from heatnet.synthetic import SyntheticFaces

    dataset = LandmarkDataset(SyntheticFaces(16, image_size=128), 96, augmentation=Augmentation(), seed=2)
    canvases = Canvases(dataset)
    batch = collate(canvases.__getitems__(list(range(16))))
    on_cpu = DeviceAugmentation(canvases, torch.device("cpu"))(batch, seed=5)
    on_gpu = DeviceAugmentation(canvases, torch.device("cuda"))(batch, seed=5)
    assert on_gpu["image"].is_cuda and torch.equal(on_gpu["points"].cpu(), on_cpu["points"])
    geometry_only = Augmentation(color_prob=0, gray_prob=0, blur_prob=0, noise_prob=0, occlusion_prob=0)
    dataset.augmentation = geometry_only
    plain_cpu = DeviceAugmentation(canvases, torch.device("cpu"))(batch, seed=5)["image"]
    plain_gpu = DeviceAugmentation(canvases, torch.device("cuda"))(batch, seed=5)["image"].cpu()
    assert (plain_gpu - plain_cpu).abs().max() < 2 / 255  # grid_sample on the GPU: the same crops


@pytest.mark.parametrize("op", ["color_prob", "gray_prob", "blur_prob", "noise_prob", "occlusion_prob"])
def test_each_appearance_change_runs_on_the_gpu_as_strongly_as_on_the_cpu(op):
    """Each photometric change alone, always applied: on the GPU it must change the images (it runs,
    on CUDA tensors) by about as much as on the CPU (the two devices' generators draw different
    values, so the amounts are compared over 64 images, within a factor 1.6)."""
    from heatnet.augment import Augmentation
    from heatnet.device_input import Canvases, DeviceAugmentation
    from heatnet.samples import LandmarkDataset, collate
    from heatnet.synthetic import SyntheticFaces

    off = dict(color_prob=0, gray_prob=0, blur_prob=0, noise_prob=0, occlusion_prob=0)
    dataset = LandmarkDataset(SyntheticFaces(64, image_size=128), 96, augmentation=Augmentation(**off), seed=2)
    canvases = Canvases(dataset)
    batch = collate(canvases.__getitems__(list(range(64))))
    change = {}
    for device in ("cpu", "cuda"):
        dataset.augmentation = Augmentation(**off)
        plain = DeviceAugmentation(canvases, torch.device(device))(batch, seed=5)["image"]
        dataset.augmentation = Augmentation(**{**off, op: 1.0})
        changed = DeviceAugmentation(canvases, torch.device(device))(batch, seed=5)["image"]
        assert changed.device.type == device
        change[device] = (changed.float() - plain.float()).abs().mean().item()
    assert change["cpu"] > 1e-3 and 1 / 1.6 < change["cuda"] / change["cpu"] < 1.6, change


def test_speed_train_on_cuda_prints_the_three_rates(capsys):
    from heatnet.profiling import bench_train

    bench_train(UNET_KL, settings_for(UNET_KL, ["--input_size=64", "--train_limit=64", "--batch_size=16", "--workers=2",
                                                "--device=cuda"]), steps=2)
    out = capsys.readouterr().out
    assert "device path" in out and "model step alone" in out and "the CUDA is in model steps" in out
