"""The predictor's mapping from photo to crop and back, to sub-pixel accuracy (seconds, no data):
the fast tests `make mutation` runs against heatnet/predict.py. A half-pixel slip anywhere between
the photo and the points fails them, where the end-to-end tests' NME bounds would not notice."""
import copy

import numpy as np
import pytest

import heatnet


@pytest.fixture(scope="module")
def shipped_fast():
    return heatnet.load_pretrained("fast", runtime="pytorch")


@pytest.fixture
def predictor(shipped_fast):
    """The shipped fast predictor (its crop rule, size, scheme), loaded once per module; a test
    swaps in its own stand-in network on this copy."""
    return copy.copy(shipped_fast)


def _spot(h: int, w: int, centre: tuple[float, float], sigma: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    spot = 250 * np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma ** 2))
    return np.repeat(spot[..., None], 3, axis=2).astype(np.uint8)


def _centroid(images: np.ndarray) -> np.ndarray:
    """(N, C, S, S) crops -> (N, 2) the intensity centroid of each, in crop pixels."""
    grey = images[:, 0].astype(np.float64)
    ys, xs = np.mgrid[0:grey.shape[1], 0:grey.shape[2]]
    return np.stack([(grey * xs).sum((1, 2)), (grey * ys).sum((1, 2))], axis=-1) / grey.sum((1, 2))[:, None]


def _centroid_network(k: int, calls: list | None = None):
    """A stand-in for the network: every point at the spot it sees in the crop."""
    def network(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if calls is not None:
            calls.append(len(images))
        return np.repeat(_centroid(images)[:, None], k, axis=1), np.ones((len(images), k))
    return network


def _ring(predictor) -> np.ndarray:
    """(K, 2) face-shaped offsets in crop pixels: a zero-mean ring with the outer eye corners level,
    the subject's right on the left."""
    k, size = predictor.scheme.num_points, predictor.crop.size
    angles = np.linspace(0, 2 * np.pi, k, endpoint=False)
    ring = 0.3 * size * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    right, left = predictor.scheme.norm_pair
    ring[right], ring[left] = [-0.25 * size, -0.1 * size], [0.25 * size, -0.1 * size]
    return ring - ring.mean(axis=0)


@pytest.mark.parametrize("roll", [0.0, 30.0, 180.0, -75.0])
@pytest.mark.parametrize("side", [80.0, 320.0])  # the second shrinks the photo 4x: the crop's area reduction
def test_a_spot_seen_in_the_crop_comes_back_where_it_is_in_the_photo(predictor, roll, side):
    """An independent oracle for the whole round trip: the "network" finds a bright spot in each crop
    it is given (its intensity centroid, in crop pixels) and the predictor maps that back; it must
    land on the spot's photo position to 0.05 px (a half-input-pixel slip moves it 0.6-2.5 px)."""
    k = predictor.scheme.num_points
    spot = (251.3, 187.6)
    image = _spot(400, 500, spot, sigma=side / 40)

    predictor.network = _centroid_network(k)
    box = np.array([[spot[0] - side / 2 + 7, spot[1] - side / 2 - 5, spot[0] + side / 2 + 7, spot[1] + side / 2 - 5]])
    points, _ = predictor.predict_crop_boxes(image, box, rolls=np.array([roll]))
    np.testing.assert_allclose(points[0, 0], spot, atol=0.05)
    np.testing.assert_allclose(points[0], np.repeat(points[0, :1], k, axis=0))


@pytest.mark.parametrize("roll", [0.0, 90.0, -30.0])
def test_crop_points_map_back_to_the_photo_exactly(predictor, roll):
    """A network that answers fixed crop pixels: the crop's centre comes back at the box's centre,
    and a point d input pixels right of it at d x (crop side / S) photo pixels along the face's
    own x axis (turned by the roll), to 1e-6 pixels: a half-pixel slip in the mapping fails."""
    size, k = predictor.crop.size, predictor.scheme.num_points
    centre, d = (size - 1) / 2, 10.0
    crop_points = np.full((1, k, 2), centre)
    crop_points[0, 1, 0] += d  # point 1: d pixels to the right in the crop
    predictor.network = lambda images: (np.repeat(crop_points, len(images), 0), np.ones((len(images), k)))
    box = np.array([[100.25, 50.5, 180.25, 130.5]])  # centre (140.25, 90.5), side 80
    points, _ = predictor.predict_crop_boxes(np.zeros((300, 400, 3), np.uint8), box, rolls=np.array([roll]))
    np.testing.assert_allclose(points[0, 0], [140.25, 90.5], atol=1e-6)
    step = d * predictor.crop.box_scale * 80 / size
    a = np.radians(roll)
    np.testing.assert_allclose(points[0, 1] - points[0, 0], step * np.array([np.cos(a), -np.sin(a)]), atol=1e-6)


@pytest.mark.parametrize("roll", [0.0, 40.0, -120.0])
def test_the_refine_pass_recrops_around_the_points_and_keeps_the_spot_and_the_roll(predictor, roll):
    """With a refine pass: the "network" answers a face-shaped set of points (a zero-mean ring, eyes
    level in the crop) around the spot it finds, so the refine crop is cut around them, turned
    upright by their roll (face_frames). The points' mean must still land on the spot to 0.05 px
    and their eye line must carry the first crop's roll (predictor.roll) to 0.5 degrees."""
    predictor.refine = 1
    k, size = predictor.scheme.num_points, predictor.crop.size
    ring = _ring(predictor)
    spot = (251.3, 187.6)
    image = _spot(400, 500, spot, sigma=3.0)
    calls = []

    def ring_network(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = _centroid(images)
        calls.append(found)
        return found[:, None] + ring[None], np.ones((len(images), k))

    predictor.network = ring_network
    box = np.array([[spot[0] - 45, spot[1] - 35, spot[0] + 35, spot[1] + 45]])
    points, _ = predictor.predict_crop_boxes(image, box, refine=1, rolls=np.array([roll]))
    assert len(calls) == 2  # the first crop and the refine crop
    np.testing.assert_allclose(points[0].mean(axis=0), spot, atol=0.05)
    assert abs((predictor.roll(points)[0] - roll + 180) % 360 - 180) < 0.5
    # the refine crop is cut around the points (their box's centre, a pixel from their mean here)
    assert np.abs(calls[1][0] - (size - 1) / 2).max() < 0.05 * size


def test_faces_of_several_photos_come_back_to_their_own_photo_and_none_is_empty(predictor):
    """Three photos with 2, 0 and 1 spots, predicted together in batches of 2: each photo gets its
    own spots back, in order, to 0.05 px, and the photo without a box gets empty (0, K, 2) / (0, K)."""
    predictor.batch_size = 2
    k = predictor.scheme.num_points
    calls = []
    predictor.network = _centroid_network(k, calls)
    spots = [[(120.4, 90.2), (300.7, 210.9)], [], [(200.1, 150.6)]]
    images = [np.maximum.reduce([_spot(320, 420, spot, 4.0) for spot in photo]) if photo else np.zeros((320, 420, 3), np.uint8)
              for photo in spots]
    boxes = [np.array([[x - 40, y - 40, x + 40, y + 40] for x, y in photo]).reshape(-1, 4) for photo in spots]
    results = predictor.predict_many(images, boxes)
    assert calls == [2, 1]  # three faces in batches of two
    for photo, (points, scores) in zip(spots, results):
        assert points.shape == (len(photo), k, 2) and scores.shape == (len(photo), k)
        if photo:
            np.testing.assert_allclose(points[:, 0], photo, atol=0.05)
    nothing = predictor.predict_many([images[1]], [boxes[1]], refine=1)
    assert nothing[0][0].shape == (0, k, 2) and nothing[0][1].shape == (0, k)


def test_the_refine_pass_runs_only_for_landmark_crops_and_follows_upright_crops(predictor):
    """A model trained on annotation boxes or whole images has no refine pass (its crops are not
    cut around points); with upright_crops off, the refine crop is the points' box as it lies
    (roll 0), so a ring of points level in its crop comes back level whatever the first roll."""
    from dataclasses import replace

    from heatnet.crop import CropBox

    k = predictor.scheme.num_points
    image = _spot(400, 500, (251.3, 187.6), 3.0)
    box = np.array([[210.0, 150.0, 290.0, 230.0]])
    for rule, passes in ((CropBox.LANDMARKS, 3), (CropBox.ANNOTATION, 1), (CropBox.IMAGE, 1)):
        calls = []
        predictor.network = _centroid_network(k, calls)
        predictor.crop = replace(predictor.crop, rule=rule)
        predictor.predict_crop_boxes(image, box, refine=2)
        assert len(calls) == passes, rule
    predictor.crop = replace(predictor.crop, rule=CropBox.LANDMARKS)
    ring = _ring(predictor)
    predictor.network = lambda images: (_centroid(images)[:, None] + ring[None], np.ones((len(images), k)))
    predictor.upright_crops = False
    points, _ = predictor.predict_crop_boxes(image, box, refine=1, rolls=np.array([40.0]))
    assert abs(predictor.roll(points)[0]) < 0.5


def test_each_crop_rule_makes_its_own_boxes_from_the_detections(predictor):
    """IMAGE: the whole photo, upright, once per face; ANNOTATION: the detections as they are;
    LANDMARKS: a square of the box fit's side whose centre sits at the fit's offset from the
    detection's centre, that offset turned with the face (a face turned 90 degrees counter-clockwise
    has its chin offset pointing right)."""
    from dataclasses import replace

    from heatnet.crop import CropBox
    from heatnet.detect import Detections

    image = np.zeros((300, 400, 3), np.uint8)
    boxes = np.array([[100.0, 50.0, 180.0, 130.0], [200.0, 100.0, 260.0, 160.0]])
    found = Detections(boxes, np.array([0.9, 0.8]), np.array([0.0, 90.0]))
    predictor.crop = replace(predictor.crop, rule=CropBox.IMAGE)
    crops, rolls = predictor.crop_boxes(image, found)
    assert crops.tolist() == [[-0.5, -0.5, 399.5, 299.5]] * 2 and rolls.tolist() == [0.0, 0.0]
    predictor.crop = replace(predictor.crop, rule=CropBox.ANNOTATION)
    crops, rolls = predictor.crop_boxes(image, found)
    assert crops.tolist() == boxes.tolist() and rolls.tolist() == [0.0, 90.0]
    predictor.crop = replace(predictor.crop, rule=CropBox.LANDMARKS)
    crops, rolls = predictor.crop_boxes(image, found)
    fit = predictor.detector.box_fit
    assert rolls.tolist() == [0.0, 90.0]
    sides = crops[:, 2:] - crops[:, :2]
    np.testing.assert_allclose(sides, [[80 * fit.scale] * 2, [60 * fit.scale] * 2], atol=1e-9)
    centres = (crops[:, :2] + crops[:, 2:]) / 2
    np.testing.assert_allclose(centres[0], [140 + 80 * fit.dx, 90 + 80 * fit.dy], atol=1e-9)
    np.testing.assert_allclose(centres[1], [230 + 60 * fit.dy, 130 - 60 * fit.dx], atol=1e-9)
