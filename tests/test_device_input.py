"""The device input path (heatnet.device_input) against the workers path: the same augmentation
draws give the same points and the same crops up to interpolation; canvases cached or streamed
are the same; appearance draws follow their seed; a run trains on it and resumes mid-epoch on
the same batches."""
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import in_process, one_line_error, settings_for
from heatnet.augment import Augmentation
from heatnet.config import InputPath
from heatnet.datasets import load_split
from heatnet.device_input import CanvasCache, Canvases, DeviceAugmentation, photometric, warp_batch
from heatnet.formats import Record
from heatnet.loading import TrainingInput, make_dataset
from heatnet.samples import LandmarkDataset, RecordSource, collate
from heatnet.schemes import LandmarkScheme
from heatnet.synthetic import SyntheticFaces
from heatnet.training import train

ROOT = Path(__file__).resolve().parents[1]
UNET_KL = ROOT / "experiments/unet_kl.py"
GEOMETRY_ONLY = Augmentation(color_prob=0, gray_prob=0, blur_prob=0, noise_prob=0, occlusion_prob=0)
CPU = torch.device("cpu")
TWO = LandmarkScheme("two", ("left", "right"), (1, 0), (0, 1), {"eyes": (0, 1)})


def both_paths(dataset: LandmarkDataset, indices: list[int]) -> tuple[dict, dict]:
    """The same samples, epoch and draws through the workers path and the device path."""
    workers = collate(dataset.__getitems__(indices))
    canvases = Canvases(dataset)
    return workers, DeviceAugmentation(canvases, CPU)(collate(canvases.__getitems__(indices)), seed=0)


def assert_same_crops(workers: dict, device: dict, mean_gray: float, p99_gray: float) -> None:
    torch.testing.assert_close(device["points"], workers["points"], atol=0.01, rtol=0)  # input pixels
    assert torch.equal(device["visibility"], workers["visibility"])
    difference = (device["image"] * 255 - workers["image"].float()).abs()
    assert difference.mean() < mean_gray and difference.flatten().quantile(0.99) < p99_gray, \
        (difference.mean(), difference.flatten().quantile(0.99))


@pytest.mark.parametrize("channels", [3, 1])
def test_same_draws_give_the_same_points_and_crops_on_synthetic_faces(channels):
    dataset = LandmarkDataset(SyntheticFaces(24, image_size=128, seed=4), 96, channels, augmentation=GEOMETRY_ONLY,
                              seed=7)
    dataset.set_epoch(3)
    workers, device = both_paths(dataset, list(range(24)))
    assert workers["mirrored"].any() and not workers["mirrored"].all()  # both kinds of draw are checked
    assert device["image"].shape == workers["image"].shape
    assert_same_crops(workers, device, mean_gray=2.0, p99_gray=16.0)


def test_same_draws_give_the_same_points_and_crops_on_300w_photos(data_root):
    dataset = LandmarkDataset(load_split("300w", "train", data_root), 160, augmentation=GEOMETRY_ONLY, seed=3)
    dataset.set_epoch(2)
    workers, device = both_paths(dataset, list(range(0, 400, 25)))
    assert_same_crops(workers, device, mean_gray=2.0, p99_gray=16.0)  # measured: 1.0 and 7.9


def test_the_canvas_holds_every_crop_the_augmentation_can_draw():
    """The widest draw (largest zoom, 45-degree-class turn, full shift) stays inside the canvas:
    its corners map to canvas pixels within it."""
    from heatnet.crop import CropJitter
    from heatnet.geometry import apply_affine, invert_affine

    dataset = LandmarkDataset(SyntheticFaces(2, image_size=128), 64, augmentation=Augmentation(rotation_deg=30))
    canvases = Canvases(dataset)
    item = canvases[0]
    box = item["box"].numpy()
    for angle in (-30.0, 30.0):
        for shift in ((0.08, 0.08), (-0.08, 0.08)):
            jitter = CropJitter(angle, 1.15, shift, mirror=False)
            crop_to_original = invert_affine(dataset.crop.matrix(box, jitter))
            corners = apply_affine(np.array([[-0.5, -0.5], [63.5, -0.5], [-0.5, 63.5], [63.5, 63.5]]), crop_to_original)
            on_canvas = apply_affine(corners, item["canvas_affine"].numpy())
            assert (on_canvas >= -0.5 - 1e-6).all() and (on_canvas <= canvases.size - 0.5 + 1e-6).all()


def test_warp_batch_is_cv2_warp_affine_for_a_plain_resize():
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (5, 5), 2)
    matrix = np.array([[0.8, 0.1, 2.0], [-0.1, 0.8, 3.0]])
    expected = cv2.warpAffine(image, matrix, (32, 32), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    ours = warp_batch(torch.from_numpy(image.transpose(2, 0, 1).copy())[None], torch.from_numpy(matrix)[None], 32)
    difference = np.abs(ours[0].permute(1, 2, 0).numpy() * 255 - expected)
    # cv2 places its samples to 1/32 px and rounds to whole gray levels: a few levels where the image is steep
    assert difference.mean() < 0.5 and difference.max() < 4, (difference.mean(), difference.max())


def test_cached_canvases_are_the_streamed_ones_and_a_bad_image_is_reported(tmp_path):
    files = [tmp_path / f"{i}.png" for i in range(3)] + [tmp_path / "bad.png"]
    for i, path in enumerate(files[:3]):
        cv2.imwrite(str(path), np.random.default_rng(i).integers(0, 256, (30, 30, 3), dtype=np.uint8))
    files[3].write_bytes(b"not a png")
    points = np.array([[8.0, 8.0], [20.0, 22.0]], np.float32)
    source = RecordSource([Record(path, points, np.ones(2, np.float32)) for path in files], TWO)
    canvases = Canvases(LandmarkDataset(source, 16, augmentation=Augmentation()))
    cache = CanvasCache(canvases, torch.utils.data.DataLoader(canvases, batch_size=3, collate_fn=collate), CPU)
    order = [2, 3, 0, 1]
    cached = list(cache.batches(order, 2))
    streamed = list(torch.utils.data.DataLoader(canvases, batch_size=2, sampler=order, collate_fn=collate))
    assert len(cached) == len(streamed) == 2
    for ours, theirs in zip(cached, streamed):
        assert set(ours) == set(theirs)
        for key in ours:
            if key != "skipped":
                assert torch.equal(ours[key], theirs[key]), key
    assert cached[0]["index"].tolist() == [2] and "bad.png" in cached[0]["skipped"][0]
    assert "bad.png" in streamed[0]["skipped"][0]


def test_appearance_draws_follow_their_seed_and_their_probabilities():
    images = torch.rand(6, 3, 32, 32)
    everything = Augmentation(color_prob=1, gray_prob=0, blur_prob=1, noise_prob=1, occlusion_prob=1)
    first = photometric(images.clone(), everything, torch.Generator().manual_seed(1))
    again = photometric(images.clone(), everything, torch.Generator().manual_seed(1))
    other = photometric(images.clone(), everything, torch.Generator().manual_seed(2))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.min() >= 0 and first.max() <= 1 and (first - images).abs().mean() > 0.02
    nothing = Augmentation(color_prob=0, gray_prob=0, blur_prob=0, noise_prob=0, occlusion_prob=0)
    assert torch.equal(photometric(images.clone(), nothing, torch.Generator().manual_seed(1)), images)
    gray = photometric(images.clone(), replace(nothing, gray_prob=1), torch.Generator().manual_seed(1))
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])


def test_a_resumed_epoch_gets_the_same_device_batches():
    s = settings_for(UNET_KL, ["--input_size=64", "--train_limit=40", "--batch_size=8", "--workers=0",
                               "--input_path=device"])
    train_input = TrainingInput(make_dataset(s, s.train_split, s.train_limit, augment=True), s, CPU)
    assert train_input.path is InputPath.DEVICE and train_input.cache is not None
    whole = list(train_input.epoch(1, first_step=5))
    rest = list(train_input.epoch(1, first_batch=2, first_step=7))
    assert len(whole) == 5 and len(rest) == 3
    for ours, theirs in zip(whole[2:], rest):
        assert torch.equal(ours["image"], theirs["image"]) and torch.equal(ours["points"], theirs["points"])
    assert not torch.equal(whole[0]["image"], list(train_input.epoch(2, first_step=10))[0]["image"])
    streamed = TrainingInput(train_input.dataset, replace(s, device_cache_gb=0), CPU)
    assert streamed.cache is None
    assert torch.equal(list(streamed.epoch(1, first_step=5))[3]["image"], whole[3]["image"])


def test_a_run_trains_on_the_device_path(tmp_path):
    tiny = ["--input_size=64", "--train_limit=48", "--val_limit=16", "--test_limit=16", "--batch_size=8",
            "--epochs=2", "--workers=0", "--log_images=0", "--input_path=device"]
    result = train(UNET_KL, settings_for(UNET_KL, tiny), run_dir=tmp_path, progress=False)
    assert result.steps == 12 and np.isfinite(result.history[-1]["train_loss"])
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert json.loads((tmp_path / "run.json").read_text())["input"].startswith("device path (48 canvases")


def test_speed_train_prints_the_three_rates_on_the_cpu(capsys):
    from heatnet.profiling import bench_train

    bench_train(UNET_KL, settings_for(UNET_KL, ["--input_size=64", "--train_limit=40", "--batch_size=8", "--workers=0",
                                                "--input_path=device", "--device=cpu"]), steps=1)
    out = capsys.readouterr().out
    rates = [float(line.split(":")[1].split()[0]) for line in out.splitlines()
             if line.startswith(("model step alone", "input alone", "training loop"))]
    assert len(rates) == 3 and all(rate > 0 for rate in rates) and "device path (40 canvases" in out


def test_speed_train_reads_the_data_root_it_is_given(tmp_path):
    """`tools/speed.py train --data-root DIR` trains from DIR, as `data` and `predict` read it (it
    was once parsed and dropped, the experiment falling back to $HEATNET_DATA)."""
    missing = tmp_path / "no_data_here"
    out = in_process("tools/speed.py", "train", "--experiment", "experiments/w300_offsets.py", "--data-root",
                     str(missing), "--steps", "1")
    one_line_error(out, f"data root {missing} is not a folder")
