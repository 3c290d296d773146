from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from heatnet.augment import Augmentation
from heatnet.samples import (ImageError, LandmarkDataset, RecordSource, images_to_device, read_image, to_device_batch,
                             to_original)
from heatnet.datasets import load_split
from heatnet.formats import Record
from heatnet.geometry import apply_affine
from heatnet.schemes import IBUG68, LandmarkScheme
from heatnet.synthetic import SyntheticFaces

TWO = LandmarkScheme("two", ("left", "right"), (1, 0), (0, 1), {"eyes": (0, 1)})


def test_items_have_documented_shapes():
    ds = LandmarkDataset(SyntheticFaces(4), size=64, channels=1, augmentation=Augmentation())
    item = ds[0]
    assert item["image"].shape == (1, 64, 64) and item["image"].dtype == torch.uint8
    assert item["points"].shape == (68, 2) and item["visibility"].shape == (68,)
    assert item["affine"].shape == (2, 3) and item["normaliser"] > 0


def test_same_seed_epoch_index_same_sample_and_epochs_differ():
    ds = LandmarkDataset(SyntheticFaces(4), size=64, augmentation=Augmentation())
    a, b = ds[1], ds[1]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["points"], b["points"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["points"], a["points"])


def test_mirror_moves_pixels_and_reindexes_points(tmp_path):
    """A mirror moves the spot at the subject's left point (image right) to the image left, where
    the mirrored face has its *right* point; the point named 'left' stays on the image right."""
    image = np.zeros((100, 100, 3), np.uint8)
    cv2.circle(image, (70, 50), 3, (255, 255, 255), -1)  # at the 'left' point
    points = np.array([[70.0, 50.0], [30.0, 50.0]], np.float32)
    source = RecordSource([Record(tmp_path / "x.png", points, np.ones(2, np.float32), pixels=image)], TWO)
    always = Augmentation(rotation_deg=0, scale_range=(1, 1), shift=0, mirror_prob=1.0, color_prob=0, blur_prob=0,
                          noise_prob=0, occlusion_prob=0, gray_prob=0)
    item = LandmarkDataset(source, size=64, augmentation=always)[0]
    assert item["mirrored"]
    crop = item["image"][0].numpy().astype(float)
    left, right = item["points"].numpy()
    assert left[0] > 32 > right[0]  # names follow the subject, not the pixels
    assert crop[int(round(right[1])), int(round(right[0]))] > 200  # the spot moved under 'right'
    assert crop[int(round(left[1])), int(round(left[0]))] == 0
    # through the inverse affine and the flip permutation the original points come back
    back = to_original(item["points"][None], item["affine"][None])[0][list(TWO.flip_map)]
    np.testing.assert_allclose(back.numpy(), points, atol=1e-3)


def test_flip_twice_is_identity():
    s = SyntheticFaces(1)[0]
    flip = np.array(IBUG68.flip_map)
    mirrored = (s.points * [-1, 1])[flip]
    np.testing.assert_array_equal((mirrored * [-1, 1])[flip], s.points)


def test_points_leaving_the_crop_become_invisible_never_dropped():
    ds = LandmarkDataset(SyntheticFaces(8), size=64, box_scale=0.6)  # a tight crop cuts off the jaw
    item = ds[0]
    assert item["points"].shape == (68, 2)
    outside = ((item["points"] < -0.5) | (item["points"] > 63.5)).any(-1)
    assert outside.any()
    assert torch.equal(item["visibility"] == 0, outside)


@pytest.mark.parametrize("kind", ["gray", "rgba", "uint16", "tiny", "huge"])
def test_image_kinds(tmp_path, kind):
    rng = np.random.default_rng(0)
    shapes = {"gray": (120, 100), "rgba": (120, 100, 4), "uint16": (120, 100, 3), "tiny": (12, 10, 3), "huge": (4000, 3000, 3)}
    dtype = np.uint16 if kind == "uint16" else np.uint8
    image = rng.integers(0, np.iinfo(dtype).max, shapes[kind], dtype=dtype)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    loaded = read_image(tmp_path / "a.png")
    assert loaded.shape == shapes[kind][:2] + (3,) and loaded.dtype == np.uint8
    h, w = shapes[kind][:2]
    points = np.array([[w * 0.3, h * 0.4], [w * 0.7, h * 0.4]], np.float32)
    source = RecordSource([Record(tmp_path / "a.png", points, np.ones(2, np.float32))], TWO)
    item = LandmarkDataset(source, size=32)[0]
    assert item["image"].shape == (3, 32, 32)
    np.testing.assert_allclose(item["points"].numpy(), apply_affine(points, item["affine"].numpy()), atol=1e-4)


def test_unreadable_images_name_the_file(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageError, match="bad.jpg.*cannot decode"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(ImageError, match="missing.jpg.*not found"):
        read_image(tmp_path / "missing.jpg")


def test_real_300w_crop_round_trip(data_root):
    source = load_split("300w", "test", data_root)
    ds = LandmarkDataset(source, size=128, augmentation=Augmentation())
    for i in range(0, len(ds), 37):
        item = ds[i]
        back = to_original(item["points"][None], item["affine"][None])[0]
        if item["mirrored"]:
            back = back[list(IBUG68.flip_map)]
        np.testing.assert_allclose(back.numpy(), source[i].points, atol=1e-3)


def test_crops_follow_the_annotation_box_when_asked(tmp_path):
    """--box=annotation centres the crop on the file's face box instead of the landmark box."""
    from heatnet.crop import CropBox
    from heatnet.samples import RecordSource

    image = np.zeros((200, 200, 3), np.uint8)
    points = np.array([[90.0, 90], [110, 110]], np.float32)
    record = Record(Path("x.png"), points, np.ones(2, np.float32), pixels=image, box=np.array([0, 0, 100, 100], np.float32))
    scheme = LandmarkScheme("pair", ("a", "b"), (1, 0), None, {"all": (0, 1)})
    source = RecordSource([record], scheme)
    by_landmarks = LandmarkDataset(source, 64, box_scale=1.0)[0]["points"]
    by_box = LandmarkDataset(source, 64, box_scale=1.0, box=CropBox.ANNOTATION)[0]["points"]
    # landmark box 90..110: the points are at its corners; face box 0..100: near its lower right
    torch.testing.assert_close(by_landmarks[0], torch.tensor([-0.5, -0.5]), atol=0.02, rtol=0)
    torch.testing.assert_close(by_box[0], torch.tensor([90 * 0.64 - 0.5] * 2), atol=0.02, rtol=0)


def test_whole_image_crops_are_letterboxed():
    """--box=image: the whole 64 x 48 photo at half size in a 32 px crop, 4 px bars above and below."""
    from heatnet.crop import CropBox

    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    points = np.array([[10.0, 20.0], [50.0, 30.0]], np.float32)
    record = Record(Path("x.png"), points, np.ones(2, np.float32), pixels=image)
    item = LandmarkDataset(RecordSource([record], TWO), 32, box_scale=1.0, box=CropBox.IMAGE)[0]
    # pixel edges -0.5 .. 63.5 fill -0.5 .. 31.5: x' = (x + 0.5) / 2 - 0.5, y' = (y + 0.5) / 2 - 0.5 + 4
    expected = np.stack([(points[:, 0] + 0.5) / 2 - 0.5, (points[:, 1] + 0.5) / 2 + 3.5], 1)
    np.testing.assert_allclose(item["points"].numpy(), expected, atol=1e-4)
    half = cv2.resize(image, (32, 24), interpolation=cv2.INTER_AREA)
    crop = item["image"].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(crop[4:28] - half.astype(int)).mean() < 12  # the photo, downsampled, between the bars


def test_in_memory_sources_decode_once_and_keep_errors(tmp_path):
    from heatnet.samples import InMemory

    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    cv2.imwrite(str(good), np.full((20, 20, 3), 90, np.uint8))
    bad.write_bytes(b"not a png")
    points = np.array([[5.0, 5.0], [15.0, 15.0]], np.float32)
    records = [Record(path, points, np.ones(2, np.float32)) for path in (good, bad)]
    cached = InMemory(RecordSource(records, TWO))
    good.unlink()  # decoded already: the file is no longer needed
    assert len(cached) == 2 and cached[0].image.shape == (20, 20, 3) and cached.name_of(1) == "bad.png"
    with pytest.raises(ImageError, match="bad.png"):
        cached[1]
    items = LandmarkDataset(cached, 16).__getitems__([0, 1])  # the bad one is dropped from its batch, not fatal
    assert "image" in items[0] and "bad.png" in items[1]["error"]


def test_jitter_draws_cover_each_range_on_both_sides_and_mirror_at_its_rate():
    """2000 draws: angle, scale and each shift axis fill their whole interval (both signs), mirrors
    come at mirror_prob; mirror_prob 0 never mirrors, even on a draw of exactly 0."""
    augmentation = Augmentation(rotation_deg=20, scale_range=(0.9, 1.2), shift=0.05, mirror_prob=0.25)
    rng = np.random.default_rng(0)
    draws = [augmentation.sample_jitter(rng) for _ in range(2000)]
    for values, low, high in (([d.angle_deg for d in draws], -20, 20), ([d.scale for d in draws], 0.9, 1.2),
                              ([d.shift[0] for d in draws], -0.05, 0.05), ([d.shift[1] for d in draws], -0.05, 0.05)):
        spread = (high - low) * 0.02
        assert low <= min(values) < low + spread and high - spread < max(values) <= high
        assert abs(np.mean(values) - (low + high) / 2) < (high - low) * 0.03
    assert np.corrcoef([d.shift[0] for d in draws], [d.shift[1] for d in draws])[0, 1] ** 2 < 0.01  # drawn apart
    assert 0.22 < np.mean([d.mirror for d in draws]) < 0.28

    class ZeroDraws:
        def uniform(self, low, high=None):
            return low

        def random(self):
            return 0.0

    assert not Augmentation(mirror_prob=0.0).sample_jitter(ZeroDraws()).mirror


@pytest.mark.parametrize("op", ["color_prob", "gray_prob", "blur_prob", "noise_prob", "occlusion_prob"])
def test_each_appearance_change_alters_the_crop_and_follows_its_seed(op):
    """The CPU appearance path (albumentations): with every probability 0 the crop is untouched; one
    change at probability 1 alters it, the same way for the same seed."""
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    off = dict(color_prob=0, gray_prob=0, blur_prob=0, noise_prob=0, occlusion_prob=0)
    np.testing.assert_array_equal(Augmentation(**off).appearance_transform(image.copy(), seed=3), image)
    one = Augmentation(**{**off, op: 1.0})
    changed = one.appearance_transform(image.copy(), seed=3)
    assert changed.shape == image.shape and changed.dtype == np.uint8
    assert np.abs(changed.astype(int) - image).mean() > 1.0
    np.testing.assert_array_equal(one.appearance_transform(image.copy(), seed=3), changed)


def test_a_batch_reaches_the_model_as_floats_in_0_1_channels_last():
    """uint8 images are divided by 255 exactly (255 -> 1.0), float ones (the device input path's)
    pass unchanged; both channels-last; points and visibility untouched."""
    image = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5).to(torch.uint8)
    image[0, 0, 0, 0] = 255
    batch = {"image": image, "points": torch.rand(2, 68, 2), "visibility": torch.ones(2, 68)}
    images, points, visibility = to_device_batch(batch, torch.device("cpu"))
    assert images.dtype == torch.float32 and images[0, 0, 0, 0] == 1.0
    torch.testing.assert_close(images, image.float() / 255, rtol=0, atol=0)
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(points, batch["points"]) and torch.equal(visibility, batch["visibility"])
    floats = torch.rand(2, 3, 4, 5)
    moved = images_to_device(floats, torch.device("cpu"))
    assert torch.equal(moved, floats) and moved.is_contiguous(memory_format=torch.channels_last)
    # the device asked for is the one every tensor lands on ("meta": a device without data, on any machine)
    meta = torch.device("meta")
    assert all(t.device == meta for t in to_device_batch(batch, meta))
    assert images_to_device(floats, meta).device == meta
