"""Face scores: the shipped model scores real faces above its chosen threshold and a detector's
box on a face-free region below it, which the predictor, the photo tool and the tracker drop."""
import json

import numpy as np
import pytest

from heatnet.crop import centres_and_sides, points_boxes
from heatnet.detect import Detections, HaarDetector


class FixedBoxes:
    """A detector that 'finds' given boxes: one on the face, one on a face-free region."""

    name, box_fit = "fixed", HaarDetector.box_fit

    def __init__(self, boxes: np.ndarray):
        self.boxes = boxes

    def __call__(self, image):
        return Detections.upright(self.boxes, np.ones(len(self.boxes)))


@pytest.fixture(scope="module")
def face_beside_background(data_root):
    """A 300-W test photo with a face-free strip of another part of it pasted beside it, and two
    detector boxes: the face (as Haar would box it) and a square on the strip."""
    from heatnet.datasets import load_split
    from heatnet.face_score import face_free_images

    source = load_split("300w", "test", data_root)
    sample = source[0]
    background = face_free_images(source, limit=1)[0]
    h, w = max(sample.image.shape[0], background.shape[0]), sample.image.shape[1]
    image = np.zeros((h, w + background.shape[1], 3), np.uint8)
    image[:sample.image.shape[0], :w] = sample.image
    image[:background.shape[0], w:] = background
    face_box = HaarDetector.box_fit.detector_boxes(*centres_and_sides(points_boxes(sample.points[None])))
    side = min(background.shape[:2])
    return image, np.concatenate([face_box, [[w, 0, w + side, side]]])


@pytest.fixture(scope="module")
def predictor(face_beside_background):
    """The shipped model behind a detector that 'finds' the face and the face-free box."""
    from heatnet.predict import PRETRAINED, FacePredictor

    return FacePredictor.from_checkpoint(PRETRAINED, detector=FixedBoxes(face_beside_background[1]))


def test_the_shipped_threshold_keeps_a_face_and_drops_a_face_free_box(face_beside_background, predictor):
    from heatnet.predict import PRETRAINED, FacePredictor, ShippedModel

    image, boxes = face_beside_background
    assert predictor.min_score == ShippedModel.ACCURATE.min_score > 0
    every = predictor.predict_image(image, min_score=0.0)
    assert len(every) == 2 and every[0].score > ShippedModel.ACCURATE.min_score > every[1].score
    kept = predictor.predict_image(image)
    assert len(kept) == 1 and np.allclose(kept[0].points, every[0].points)
    assert FacePredictor.from_checkpoint(PRETRAINED, detector=FixedBoxes(boxes), min_score=0.0).min_score == 0.0


def test_dropped_detections_are_counted_and_listed_when_asked(face_beside_background, predictor, tmp_path):
    import cv2

    from heatnet.annotate import predict_photos

    image, _ = face_beside_background
    photo = tmp_path / "face_and_strip.png"
    cv2.imwrite(str(photo), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    summary = predict_photos(predictor, [photo], tmp_path / "out", keep_dropped=True)
    assert (summary.faces, summary.dropped) == (1, 1)
    record = json.loads((tmp_path / "out/faces.json").read_text())["images"][0]
    assert len(record["faces"]) == 1 and record["faces"][0]["face_score"] >= predictor.min_score
    assert len(record["dropped"]) == 1 and record["dropped"][0]["face_score"] < predictor.min_score
    predict_photos(predictor, [photo], tmp_path / "out2")
    assert json.loads((tmp_path / "out2/faces.json").read_text())["images"][0]["dropped"] == 1


def test_face_free_images_and_the_threshold_rule(data_root):
    from heatnet.datasets import load_split
    from heatnet.face_score import choose_min_score, face_free_images

    source = load_split("300w", "val", data_root)
    images = face_free_images(source, limit=10)
    assert len(images) >= 5 and all(min(image.shape[:2]) >= 48 for image in images)
    # worked by hand, not with the formula: 201 face scores 0.100, 0.101, ..., 0.300 have their 0.5th
    # percentile at rank 1 (0.101); 101 non-face scores 0.000 ... 0.100 their 99th at rank 99 (0.099);
    # halfway is 0.100, whatever order they come in
    faces = np.random.default_rng(0).permutation(0.1 + np.arange(201) / 1000)
    non_faces = np.arange(101)[::-1] / 1000
    assert choose_min_score(faces, non_faces) == pytest.approx(0.100, abs=1e-12)
    assert choose_min_score(faces + 0.02, non_faces) == pytest.approx(0.110, abs=1e-12)  # better faces: higher bar


def test_the_face_free_strip_is_the_largest_side_of_the_photo_clear_of_the_face():
    from heatnet.face_score import face_free_images, face_free_strip
    from heatnet.samples import Sample

    image = np.arange(120 * 300 * 3, dtype=np.uint32).reshape(120, 300, 3).astype(np.uint8)
    # a 40 x 50 px face at x 100-140, y 30-80; margin 0.15 x 50 = 7.5 px around it
    points = np.array([[100, 30], [140, 80], [120, 55]], np.float32)
    sample = Sample(image, points, np.ones(3, np.float32), 1.0, "strip")
    strip = face_free_strip(sample)  # left 92 px (x < 92.5), right 153 (x >= 147), above 22, below 33
    assert strip.shape == (120, 153, 3) and np.array_equal(strip, image[:, 147:])
    assert strip.flags["C_CONTIGUOUS"]
    assert face_free_strip(sample, margin=0.0).shape == (120, 160, 3)  # the face's own edge, x >= 140
    assert face_free_strip(sample, min_side=154) is None  # no side is 154 px in both directions
    assert face_free_strip(sample, min_side=121) is None  # nor 121: the photo is 120 high
    assert face_free_strip(sample, min_side=120) is not None  # 120 is enough
    hidden = Sample(image, points, np.array([1, 0, 1], np.float32), 1.0, "hidden")  # (140, 80) not visible
    assert face_free_strip(hidden).shape == (120, 300 - 123, 3)  # box x 100-120, y 30-55: from x 123 (123.75)
    assert len(face_free_images([sample, sample, sample], limit=2)) == 2
    both = face_free_images([sample, sample])  # every photo by default, by the same rule and defaults
    assert len(both) == 2 and all(np.array_equal(a, strip) for a in both)
    thin = Sample(image[:48], np.array([[100, 10], [140, 40]], np.float32), np.ones(2, np.float32), 1.0, "thin")
    assert face_free_strip(thin).shape == (48, 154, 3) and len(face_free_images([thin])) == 1  # 48 px: enough (pad 6)
    assert face_free_images([sample], min_side=121) == [] and face_free_images([sample], margin=0.0)[0].shape[1] == 160
    # the face on the right: the left strip is the largest, up to x 200 - 7.5
    right = Sample(image, points + [100, 0], np.ones(3, np.float32), 1.0, "right")
    assert np.array_equal(face_free_strip(right), image[:, :192])
    low = Sample(image.transpose(1, 0, 2), points[:, ::-1] + [0, 100], np.ones(3, np.float32), 1.0, "low")
    assert np.array_equal(face_free_strip(low), low.image[:192])  # above the face: up to y 200 - 7.5
    high = Sample(low.image, points[:, ::-1], np.ones(3, np.float32), 1.0, "high")  # y 100-140
    assert np.array_equal(face_free_strip(high), low.image[147:])  # below the face: from y 147.5
