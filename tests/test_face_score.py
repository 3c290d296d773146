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


class BoxScoringPredictor:
    """A stand-in for FacePredictor that scores each detection by its box (x0 / 1000 for every
    point) and records what it was asked: the face-score study's bookkeeping read back exactly."""

    K = 3

    def __init__(self, box_fit):
        from types import SimpleNamespace

        self.detector = SimpleNamespace(box_fit=box_fit)
        self.asked: list[tuple[list, list]] = []

    def predict_detections(self, images, detections):
        self.asked.append((images, detections))
        return [(np.zeros((len(d), self.K, 2)), np.repeat(d.boxes[:, :1] / 1000, self.K, axis=1)) for d in detections]


def _face(image: np.ndarray, points, visibility=None):
    from heatnet.samples import Sample

    points = np.asarray(points, np.float32)
    visibility = np.ones(len(points), np.float32) if visibility is None else np.asarray(visibility, np.float32)
    return Sample(image, points, visibility, 1.0, "face")


def test_face_scores_crop_each_visible_landmark_box_as_the_detector_would_box_it():
    from heatnet.detect import BoxFit
    from heatnet.face_score import face_scores

    # landmark box of the visible points: x 100-140, y 30-70 (centre (120, 50), side 40); the hidden
    # point would stretch it to x 400. BoxFit(scale 2, dx 0.25): detector side 20, centre moved
    # left by 0.25 x 20 = 5 px -> box x 105-125, y 40-60
    images = [np.full((300, 500, 3), level, np.uint8) for level in (10, 20, 30)]
    faces = [_face(images[0], [[100, 30], [140, 70], [400, 50]], [1, 1, 0]),
             _face(images[1], [[200, 100], [260, 130]]),  # x 200-260, y 100-130: side 60 -> box x 207.5-237.5, y 100-130
             _face(images[2], [[0, 0], [10, 10]])]  # side 10 -> box x 1.25-6.25, y 2.5-7.5
    predictor = BoxScoringPredictor(BoxFit(scale=2.0, dx=0.25, dy=0.0))
    scores = face_scores(predictor, faces)
    np.testing.assert_allclose(scores, [0.105, 0.2075, 0.00125], atol=1e-12)
    (asked_images, detections), = predictor.asked  # one batch for the whole split
    assert all(a is b for a, b in zip(asked_images, images)) and len(asked_images) == 3
    np.testing.assert_allclose(detections[0].boxes, [[105, 40, 125, 60]], atol=1e-9)
    np.testing.assert_allclose(detections[1].boxes, [[207.5, 100, 237.5, 130]], atol=1e-9)
    np.testing.assert_allclose(detections[2].boxes, [[1.25, 2.5, 6.25, 7.5]], atol=1e-9)
    assert all(np.array_equal(d.scores, [1.0]) and np.array_equal(d.rolls, [0.0]) for d in detections)
    np.testing.assert_allclose(face_scores(predictor, faces, limit=2), [0.105, 0.2075], atol=1e-12)
    assert len(face_scores(predictor, faces, limit=5)) == 3
    empty = face_scores(predictor, [])
    assert empty.shape == (0,) and empty.dtype == np.float64


def test_random_non_face_crops_are_squares_inside_each_image_at_any_roll():
    from heatnet.detect import BoxFit
    from heatnet.face_score import crop_scores

    images = [np.zeros((90, 240, 3), np.uint8), np.zeros((300, 120, 3), np.uint8)]  # shorter sides 90 and 120
    predictor = BoxScoringPredictor(BoxFit())
    scores = crop_scores(predictor, images, np.random.default_rng(3), per_image=400)
    (asked_images, detections), = predictor.asked
    assert all(a is b for a, b in zip(asked_images, images))
    assert [len(d) for d in detections] == [400, 400] and scores.shape == (800,)
    np.testing.assert_allclose(scores, np.concatenate([d.boxes[:, 0] for d in detections]) / 1000, atol=1e-12)
    for image, d in zip(images, detections):
        h, w = image.shape[:2]
        side = d.boxes[:, 2] - d.boxes[:, 0]
        np.testing.assert_allclose(d.boxes[:, 3] - d.boxes[:, 1], side, atol=1e-9)  # squares
        short = min(h, w)
        assert side.min() >= short / 3 - 1e-9 and side.max() <= short + 1e-9
        assert side.min() < 0.35 * short and side.max() > 0.98 * short  # the whole range is drawn
        assert (d.boxes[:, :2] >= 0).all() and (d.boxes[:, 2] <= w).all() and (d.boxes[:, 3] <= h).all()
        # the free room is spread over: each box's x0 from 0 to w - side, y0 from 0 to h - side
        fx, fy = d.boxes[:, 0] / (w - side), d.boxes[:, 1] / (h - side)
        assert fx.min() < 0.02 and fx.max() > 0.98 and fy.min() < 0.02 and fy.max() > 0.98
        assert (d.rolls >= -180).all() and (d.rolls <= 180).all() and d.rolls.min() < -170 and d.rolls.max() > 170
        assert np.array_equal(d.scores, np.ones(400))
    again = crop_scores(BoxScoringPredictor(BoxFit()), images, np.random.default_rng(3), per_image=400)
    assert np.array_equal(again, scores)  # the generator decides it all
    assert len(crop_scores(predictor, images, np.random.default_rng(3))) == 6  # 3 a photo by default


def test_false_detections_are_every_face_found_whatever_its_score():
    from heatnet.face_score import false_detections
    from heatnet.predict import Face

    images = [np.zeros((4, 4, 3), np.uint8) for _ in range(3)]
    found = {id(images[0]): [0.6, 0.03], id(images[1]): [], id(images[2]): [0.2]}  # face scores per image
    asked = []

    class Finder:
        def predict_image(self, image, min_score=None):
            asked.append(min_score)
            return [Face(np.zeros(4), 1.0, np.zeros((2, 2)), np.full(2, score), 0.0) for score in found[id(image)]]

    np.testing.assert_allclose(false_detections(Finder(), images), [0.6, 0.03, 0.2], atol=1e-12)
    assert asked == [0.0, 0.0, 0.0]  # no threshold applied: every detection is counted


def test_the_study_table_counts_what_falls_below_the_threshold():
    from heatnet.face_score import ScoreStudy

    rows = [{"set": "a/val", "kind": "real faces", "scores": np.array([0.1, 0.2, 0.3, 0.4])},
            {"set": "b/test", "kind": "non-faces", "scores": np.zeros(0)}]
    assert ScoreStudy(0.25, rows).table() == "\n".join([
        "min_score = 0.2500", "",
        "| set | kind | count | below | below % | scores p1 / p50 / p99 |",
        "|---|---|---|---|---|---|",
        "| a/val | real faces | 4 | 2 | 50.0 | 0.103 / 0.250 / 0.397 |",  # p1 = 0.1 + 0.03 x 0.1
        "| b/test | non-faces | 0 | 0 | 0.0 | nan / nan / nan |"])
    one = [{"set": "c", "kind": "one face", "scores": np.array([0.1])}]
    assert "| c | one face | 1 | 1 | 100.0 | 0.100 / 0.100 / 0.100 |" in ScoreStudy(0.25, one).table()
    assert "| 4 | 1 | 25.0 |" in ScoreStudy(0.2, rows).table()  # a score equal to the threshold is kept


def test_the_threshold_is_chosen_on_validation_alone_and_test_is_only_counted(monkeypatch):
    """study_min_score with its measurements replaced by tagged scores: the threshold must come
    from validation faces (300w, ytf68, 300w turned) against validation non-face crops, whatever
    the test splits score, and each row must hold its own split's scores."""
    import heatnet.face_score as fs

    level = {("300w", "val"): 0.6, ("ytf68", "val"): 0.5, ("300w", "test"): 0.95, ("ytf68", "test"): 0.9}
    predictor, turned_asked, crop_draws = object(), [], []

    def faces(given, source):
        assert given is predictor
        return np.full(10, level[source])

    def turned(given, source, angles):
        assert given is predictor
        turned_asked.append((source, tuple(angles)))
        return np.full(20, level[source] - 0.2)

    def background(images, split):  # the face-free photos of 300w and imm, of one split
        assert images == [("300w", split), ("imm", split)], images

    def crops(given, images, rng):
        assert given is predictor
        background(images, images[0][1])
        crop_draws.append(rng.uniform())
        return np.full(30, 0.2 if images[0][1] == "val" else 0.01)

    def false(given, images):
        assert given is predictor
        background(images, images[0][1])
        return np.full(4, 0.05 if images[0][1] == "val" else 0.07)

    monkeypatch.setattr(fs, "face_scores", faces)
    monkeypatch.setattr(fs, "turned_face_scores", turned)
    monkeypatch.setattr(fs, "face_free_images", lambda source: [source])
    monkeypatch.setattr(fs, "crop_scores", crops)
    monkeypatch.setattr(fs, "false_detections", false)

    study = fs.study_min_score(predictor, load=lambda name, split: (name, split), seed=5)
    # val faces: 0.6 (10), 0.5 (10), 0.4 (20): 0.5th percentile 0.4; val crops 0.2: 99th 0.2 -> 0.3
    assert study.min_score == pytest.approx(0.3, abs=1e-12)
    assert turned_asked == [(("300w", "val"), (45, 180)), (("300w", "test"), (45, 180))]
    rng = np.random.default_rng(5)
    assert crop_draws == [rng.uniform(), rng.uniform()]  # one generator from the seed, val first
    rows = [(r["set"], r["kind"], len(r["scores"]), float(np.mean(r["scores"]))) for r in study.rows]
    assert rows == [
        ("300w/val + ytf68/val, 300w/val turned 45 + 180", "real faces", 40, pytest.approx(0.475)),
        ("300w/val + imm/val face-free", "random non-face crops", 30, pytest.approx(0.2)),
        ("300w/val + imm/val face-free", "false detections", 4, pytest.approx(0.05)),
        ("300w/test", "real faces", 10, pytest.approx(0.95)),
        ("ytf68/test", "real faces", 10, pytest.approx(0.9)),
        ("300w/test turned 45 + 180", "real faces, found by the detector", 20, pytest.approx(0.75)),
        ("300w/test + imm/test face-free", "random non-face crops", 30, pytest.approx(0.01)),
        ("300w/test + imm/test face-free", "false detections", 4, pytest.approx(0.07))]


def test_turned_face_scores_run_the_whole_pipeline_on_each_turned_copy(monkeypatch):
    import heatnet.predict
    from heatnet.face_score import turned_face_scores
    from heatnet.rotation import Turned

    asked = []

    def pipeline(predictor, source, limit=0):  # the face scores of what evaluate_with_detector found
        asked.append((predictor, type(source), source.angle_deg, limit))
        return type("Found", (), {"face_scores": np.full(2, source.angle_deg / 1000)})

    monkeypatch.setattr(heatnet.predict, "evaluate_with_detector", pipeline)
    source = type("Photos", (list,), {"scheme": None, "normaliser": None})([_face(np.zeros((8, 8, 3), np.uint8), [[1, 1], [5, 5]])])
    predictor = object()
    scores = turned_face_scores(predictor, source, [45, 180], limit=7)
    np.testing.assert_allclose(scores, [0.045, 0.045, 0.18, 0.18], atol=1e-12)
    assert asked == [(predictor, Turned, 45, 7), (predictor, Turned, 180, 7)]
    assert turned_face_scores(predictor, source, [90])[0] == pytest.approx(0.09) and asked[-1][3] == 0
