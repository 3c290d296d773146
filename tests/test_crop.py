"""One crop definition: the dataset and the predictor crop a face alike, whatever the run's box
rule, so a model is predicted on the crops it was trained on."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import settings_for
from heatnet.crop import Crop, CropBox, CropJitter, centres_and_sides, points_boxes, square_boxes
from heatnet.samples import LandmarkDataset, Sample
from heatnet.datasets import load_split
from heatnet.detect import Detections
from heatnet.predict import FacePredictor
from heatnet.training import train

ROOT = Path(__file__).resolve().parents[1]
UNET_KL = ROOT / "experiments/unet_kl.py"
TINY = ["--input_size=64", "--batch_size=8", "--epochs=1", "--workers=0", "--log_images=0", "--threads=2"]


def _dlib_layout(root: Path, images: int = 20) -> Path:
    """A dlib-XML dataset (face boxes in the annotation) with train and test files."""
    rng = np.random.default_rng(0)
    (root / "dlib").mkdir(parents=True)
    for part in ("train", "test"):
        entries = []
        for i in range(images if part == "train" else 4):
            name = f"{'face_' if part == 'train' else 'test'}{i}.jpg"  # face_2, 5, 6 are validation images
            cv2.imwrite(str(root / "dlib" / name), rng.integers(0, 255, (160, 140, 3), dtype=np.uint8))
            points = rng.uniform(40, 100, (68, 2))
            parts = "".join(f"<part name='{k:02d}' x='{x:.2f}' y='{y:.2f}'/>" for k, (x, y) in enumerate(points))
            entries.append(f"<image file='{name}'><box top='{10 + i}' left='{5 + i}' width='120' height='110'>"
                           f"{parts}</box></image>")
        (root / "dlib" / f"labels_ibug_300W_{part}.xml").write_text(
            f"<dataset><images>{''.join(entries)}</images></dataset>")
    return root


@pytest.mark.parametrize("rule", [CropBox.ANNOTATION, CropBox.LANDMARKS, CropBox.IMAGE])
def test_prediction_crops_equal_training_crops(tmp_path, rule):
    root = _dlib_layout(tmp_path / "data")
    run_dir = tmp_path / "run"
    train(UNET_KL, settings_for(UNET_KL, TINY + ["--dataset=dlib", f"--data_root={root}", f"--box={rule.value}",
                                                  "--box_scale=1.1"]), run_dir=run_dir, progress=False)
    predictor = FacePredictor.from_checkpoint(run_dir / "best.pt")
    assert predictor.crop == Crop(rule, 1.1, 64, 3)
    source = load_split("dlib", "test", root)
    dataset = LandmarkDataset(source, 64, box_scale=1.1, box=rule)  # no augmentation: the evaluation crops
    for index in range(len(source)):
        sample = source[index]
        detection = sample.annotation_box[None]  # a detector's box, where the annotation's came from
        if rule is CropBox.LANDMARKS:  # a detector's box predicts the landmark box through its fit
            detection = predictor.detector.box_fit.detector_boxes(*centres_and_sides(points_boxes(sample.points[None])))
        boxes, rolls = predictor.crop_boxes(sample.image, Detections.upright(detection, np.ones(1)))
        assert not rolls.any()
        images, affines = predictor.crops(sample.image, boxes, rolls)
        item = dataset[index]
        assert np.abs(images[0].astype(int) - item["image"].numpy().astype(int)).max() <= 1
        np.testing.assert_allclose(affines[0], item["affine"].numpy(), atol=1e-3)


def test_a_crop_box_round_trips_through_square_boxes():
    boxes = np.array([[10.0, 20.0, 50.0, 40.0]])
    centres, sides = centres_and_sides(boxes)
    assert centres.tolist() == [[30.0, 30.0]] and sides.tolist() == [40.0]
    square = square_boxes(centres, sides)
    assert square.tolist() == [[10.0, 10.0, 50.0, 50.0]]
    crop = Crop(CropBox.LANDMARKS, 1.0, 40)
    np.testing.assert_allclose(crop.matrix(boxes[0]), crop.matrix(square[0]))


def test_the_rule_picks_the_box():
    image = np.zeros((30, 40, 3), np.uint8)
    points = np.array([[5.0, 6.0], [15.0, 20.0]], np.float32)
    sample = Sample(image, points, np.ones(2, np.float32), 1.0, "x", None, np.array([1.0, 2.0, 30.0, 25.0]))
    assert Crop(CropBox.LANDMARKS).box(sample).tolist() == [5.0, 6.0, 15.0, 20.0]
    assert Crop(CropBox.ANNOTATION).box(sample).tolist() == [1.0, 2.0, 30.0, 25.0]
    assert Crop(CropBox.IMAGE).box(sample).tolist() == [-0.5, -0.5, 39.5, 29.5]
    shifted = Crop(CropBox.LANDMARKS, 1.0, 20).matrix(np.array([0.0, 0.0, 10.0, 10.0]), CropJitter(shift=(0.1, 0.0)))
    assert shifted[0, 2] == pytest.approx(Crop(CropBox.LANDMARKS, 1.0, 20).matrix(np.array([0.0, 0.0, 10.0, 10.0]))[0, 2] - 2)


def test_boxes_are_float64_from_the_visible_points_or_the_fixed_box():
    """Sub-pixel boxes of big photos need float64: float32 and integer inputs come out float64 with
    their exact values; an invisible point is no part of the landmark box; a fixed box (the IMM nose
    tip's face) wins over every rule but the image's."""
    from heatnet.crop import face_frames

    image = np.zeros((30, 40, 3), np.uint8)
    points = np.array([[4000.25, 6.5], [4015.5, 20.75], [1.0, 1.0]], np.float32)
    sample = Sample(image, points, np.array([1, 1, 0], np.float32), 1.0, "x", None, [1, 2, 30, 25])
    for rule, want in ((CropBox.LANDMARKS, [4000.25, 6.5, 4015.5, 20.75]), (CropBox.ANNOTATION, [1, 2, 30, 25])):
        box = Crop(rule).box(sample)
        assert box.dtype == np.float64 and box.tolist() == want
    fixed = Sample(image, points, np.ones(3, np.float32), 1.0, "x", [3, 4, 5, 6], [1, 2, 30, 25])
    for rule in (CropBox.LANDMARKS, CropBox.ANNOTATION):
        box = Crop(rule).box(fixed)
        assert box.dtype == np.float64 and box.tolist() == [3, 4, 5, 6]
    boxes, rolls = face_frames(points[None, :2], None)
    assert boxes.dtype == np.float64 and boxes.tolist() == [[4000.25, 6.5, 4015.5, 20.75]] and rolls.tolist() == [0.0]
    centres, sides = centres_and_sides(np.array([[4000, 7, 4015, 21]], np.float32) + np.float32(0.25))
    assert centres.dtype == sides.dtype == np.float64 and centres.tolist() == [[4007.75, 14.25]]
    assert square_boxes(centres, np.array([15], np.float32) + np.float32(0.25)).tolist() == [[4000.125, 6.625, 4015.375, 21.875]]
    assert square_boxes(centres, np.array([15], np.float32)).dtype == np.float64


@pytest.mark.parametrize("angle", [0.0, 25.0, 90.0, -140.0, 180.0])
def test_face_frames_crop_a_turned_face_as_the_upright_one(angle):
    """A face turned in the photo, cropped on the frame of its turned points, gives the crop of the
    upright face (pixels and affine alike): the roll comes out, the box is the upright one."""
    from heatnet.crop import face_frames
    from heatnet.geometry import apply_affine, compose_affine, turn_image
    from heatnet.schemes import IBUG68
    from heatnet.shape_model import ShapeModel

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (48, 64, 3), np.uint8)
    image = cv2.resize(image, (256, 192), interpolation=cv2.INTER_LINEAR)  # smooth enough for bilinear re-sampling
    mean = ShapeModel.load().mean
    points = (mean - mean.mean(0)) / np.ptp(mean, axis=0).max() * 90 + [128.0, 96.0]
    boxes, rolls = face_frames(points[None], IBUG68.norm_pair)
    turned, matrix = turn_image(image, angle)
    turned_boxes, turned_rolls = face_frames(apply_affine(points, matrix)[None], IBUG68.norm_pair)
    assert abs((turned_rolls[0] - rolls[0] - angle + 180) % 360 - 180) < 1e-9
    np.testing.assert_allclose(turned_boxes[0, 2:] - turned_boxes[0, :2], boxes[0, 2:] - boxes[0, :2], atol=1e-9)
    crop = Crop(size=64)
    upright = crop.matrix(boxes[0], roll=rolls[0])
    from_turned = crop.matrix(turned_boxes[0], roll=turned_rolls[0])
    np.testing.assert_allclose(compose_affine(from_turned, matrix), upright, atol=1e-9)  # photo -> crop alike
    difference = np.abs(crop.pixels(turned, from_turned).astype(int) - crop.pixels(image, upright).astype(int))
    assert np.median(difference) <= 2 and difference.mean() < 3


def test_a_run_s_crop_and_the_jitter_s_zoom():
    """Crop.of takes each of the run's four crop settings; a jitter scale above 1 zooms out (the
    square's side grows by it); a box of one point still gets a crop (side box_scale x 1 px)."""
    from types import SimpleNamespace

    settings = SimpleNamespace(box=CropBox.ANNOTATION, box_scale=1.4, input_size=96, channels=1)
    assert Crop.of(settings) == Crop(CropBox.ANNOTATION, 1.4, 96, 1)
    crop = Crop(CropBox.LANDMARKS, 1.25, 64)
    box = np.array([10.0, 20.0, 50.0, 40.0])  # side 40 -> 50 at box_scale 1.25
    assert crop.matrix(box)[0, 0] == pytest.approx(64 / 50)
    assert crop.matrix(box, CropJitter(scale=1.2))[0, 0] == pytest.approx(64 / 60)
    assert crop.matrix(np.array([5.0, 5.0, 5.0, 5.0]))[0, 0] == pytest.approx(64 / 1.25)
