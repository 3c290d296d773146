"""Video: the One-Euro filter's closed forms and the shaken clip it is measured on."""
import math

import numpy as np
import pytest

from heatnet.video import OneEuroFilter, jitter, shaken_clip


def test_one_euro_passes_a_still_value_and_smooths_a_step_by_its_closed_form():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    assert f(np.array([2.0]), 0.0)[0] == 2.0 and f(np.array([2.0]), 0.04)[0] == pytest.approx(2.0)
    out = f(np.array([3.0]), 0.08)[0]  # a step of 1 after 40 ms at a 1 Hz cutoff
    alpha = 1 / (1 + 1 / (2 * math.pi * 1.0) / 0.04)
    assert out == pytest.approx(2.0 + alpha * 1.0)


def test_one_euro_with_speed_and_scale_follows_casiez_et_al_step_by_step():
    """Two steps worked by hand from Casiez et al. 2012 (alpha = 1 / (1 + tau / dt), tau = 1 / (2 pi fc);
    the speed filtered at d_cutoff; fc = min_cutoff + beta |speed|), in units of `scale`: values
    in pixels of a face 50 px wide behave as values / 50, and come back in pixels."""
    alpha = lambda cutoff, dt: 1 / (1 + 1 / (2 * math.pi * cutoff) / dt)
    f = OneEuroFilter(min_cutoff=0.8, beta=2.0, d_cutoff=1.5)
    assert f(np.array([100.0]), 1.00, scale=50.0)[0] == 100.0  # the first value passes
    x0, x1, x2, dt1, dt2 = 2.0, 110.0 / 50, 130.0 / 50, 0.05, 0.02
    speed = alpha(1.5, dt1) * (x1 - x0) / dt1
    y1 = x0 + alpha(0.8 + 2.0 * abs(speed), dt1) * (x1 - x0)
    assert f(np.array([110.0]), 1.05, scale=50.0)[0] == pytest.approx(50 * y1, rel=1e-12)
    speed = speed + alpha(1.5, dt2) * ((x2 - y1) / dt2 - speed)
    y2 = y1 + alpha(0.8 + 2.0 * abs(speed), dt2) * (x2 - y1)
    assert f(np.array([130.0]), 1.07, scale=50.0)[0] == pytest.approx(50 * y2, rel=1e-12)
    assert f(np.array([7.0]), 1.07, scale=50.0)[0] == pytest.approx(7.0, rel=1e-12)  # a repeated (or earlier) time starts over


def test_a_faster_motion_raises_the_cutoff_so_the_filter_lags_less():
    slow, fast = OneEuroFilter(1.0, beta=0.0), OneEuroFilter(1.0, beta=5.0)
    for t in range(10):
        a, b = slow(np.array([10.0 * t]), t / 25), fast(np.array([10.0 * t]), t / 25)
    assert abs(b[0] - 90.0) < abs(a[0] - 90.0)


def test_a_shaken_clip_follows_its_known_shifts_and_jitter_removes_them():
    image = np.zeros((40, 40, 3), np.uint8)
    image[18:22, 18:22] = 255
    clip, shifts = shaken_clip(image, frames=10, max_shift=2.0, noise_std=0.0)
    assert len(clip) == 10 and shifts.shape == (10, 2) and np.abs(shifts).max() <= 2.0
    points = np.array([[20.0, 20.0]])[None] + shifts[:, None, :]  # points that move exactly with the clip
    assert jitter(points, shifts, normaliser=10.0) == pytest.approx(0.0, abs=1e-12)
    still = np.repeat(np.array([[20.0, 20.0]])[None], 10, axis=0)  # points that ignore the motion: they jitter
    assert jitter(still, shifts, normaliser=10.0) > 0.5


def test_each_shaken_frame_holds_the_photo_moved_by_its_shift_with_the_asked_noise():
    """The frames themselves, against an independent oracle: a bright spot's centroid moves by each
    frame's shift to 0.02 px, and the noise's std is the one asked for."""
    ys, xs = np.mgrid[0:64, 0:64]
    spot = 200 * np.exp(-((xs - 30.3) ** 2 + (ys - 33.6) ** 2) / (2 * 3.0 ** 2))
    image = np.repeat(spot[..., None], 3, axis=2).astype(np.uint8)
    clip, shifts = shaken_clip(image, frames=12, max_shift=2.5, noise_std=0.0)
    assert np.abs(shifts).max() > 2.0  # the path uses its range
    centroid = lambda frame: np.array([(xs * frame[..., 0]).sum(), (ys * frame[..., 0]).sum()]) / frame[..., 0].sum()
    start = centroid(image.astype(np.float64))
    for frame, shift in zip(clip, shifts):
        np.testing.assert_allclose(centroid(frame.astype(np.float64)) - start, shift, atol=0.02)
    flat = np.full((64, 64, 3), 128, np.uint8)
    noisy, _ = shaken_clip(flat, frames=3, noise_std=6.0)
    assert all(abs(frame.astype(np.float64).std() - 6.0) < 0.3 for frame in noisy)
    assert not np.array_equal(noisy[0], noisy[1])  # fresh noise per frame
    for level in (0, 255):  # noise past black or white saturates there, never wraps around
        frames, _ = shaken_clip(np.full((32, 32, 3), level, np.uint8), frames=2, noise_std=6.0)
        assert all(frame.dtype == np.uint8 and np.abs(frame.astype(int) - level).max() <= 30 for frame in frames)


def test_jitter_is_the_mean_frame_to_frame_motion_left_after_the_shifts_in_percent():
    """Three frames, two points: after the known shifts are taken out, point 0 moves 3 then 4 px
    (a 3-4-5 step: 5 px, then 0), point 1 stays; mean of (5, 0, 0, 0) = 1.25 px, over a 50 px
    normaliser: 2.5 %."""
    shifts = np.array([[0.0, 0.0], [1.0, 2.0], [-2.0, 0.5]])
    still = np.array([[[10.0, 10.0], [30.0, 30.0]], [[13.0, 14.0], [30.0, 30.0]], [[13.0, 14.0], [30.0, 30.0]]])
    assert jitter(still + shifts[:, None, :], shifts, normaliser=50.0) == pytest.approx(2.5, abs=1e-12)


def _tracked_photo(data_root):
    """An lfpw test photo on a black canvas twice its size (room to move and turn), and its points."""
    from heatnet.datasets import load_split

    sample = load_split("300w", "test", data_root)[3]
    h, w = sample.image.shape[:2]
    canvas = np.zeros((2 * h, 2 * w, 3), np.uint8)
    canvas[h // 2:h // 2 + h, w // 2:w // 2 + w] = sample.image
    return canvas, sample.points + [w // 2, h // 2]


def test_the_tracker_follows_a_moving_and_turning_face_with_one_detection_and_looks_again_when_it_is_lost(data_root):
    """With the fast model, raw points (no smoothing): a face moved 6 px a frame is followed from its
    previous points (the detector runs on the first frame only) to within 5 % NME of the moved truth,
    and turned 20 degrees a frame up to 100, each Face's roll within 8 degrees of the truth's; a black
    frame loses the track, and the next frame with the face detects again."""
    import cv2

    import heatnet
    from heatnet.geometry import apply_affine, roll_degrees
    from heatnet.metrics import per_image_nme
    from heatnet.video import FaceTracker

    canvas, truth = _tracked_photo(data_root)
    tracker = FaceTracker(heatnet.load_pretrained("fast"), smooth=False)
    inter_ocular = float(np.linalg.norm(truth[36] - truth[45]))

    def check(frame, points, t):
        faces = tracker(frame, t)
        assert len(faces) == 1, f"frame at {t}: {len(faces)} faces"
        nme = per_image_nme(faces[0].points[None], points[None], np.ones((1, 68)), np.array([inter_ocular]))[0]
        assert nme < 0.05, f"frame at {t}: NME {nme:.3f}"  # 3.0 % at most, measured
        return faces[0]

    for k in range(5):
        moved, moved_truth = np.roll(canvas, (3 * k, 6 * k), axis=(0, 1)), truth + np.float32([6 * k, 3 * k])
        check(moved, moved_truth, k / 25)
    assert tracker.detections == 1
    for k, angle in enumerate(range(20, 101, 20)):
        centre = ((canvas.shape[1] - 1) / 2, (canvas.shape[0] - 1) / 2)  # near the face's: it turns where it is
        matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)  # counter-clockwise on screen, as rolls are
        turned = cv2.warpAffine(moved, matrix, canvas.shape[1::-1])
        points = apply_affine(moved_truth, matrix)
        face = check(turned, points, (5 + k) / 25)
        assert abs((face.roll - roll_degrees(points, (36, 45)) + 180) % 360 - 180) < 8, (angle, face.roll)
    assert tracker.detections == 1  # followed round to 100 degrees from its own previous points
    assert tracker(np.zeros_like(canvas), 0.5) == [] and tracker.tracks == [] and tracker.detections == 2
    check(canvas, truth, 0.6)
    assert tracker.detections == 3


def test_a_track_is_lost_below_the_face_score_off_the_frame_or_when_its_size_jumps():
    """FaceTracker._lost's rule, exact at its edges: a face score below (not at) the threshold, a
    centre outside the frame on either axis, a side that halves or doubles from the last frame."""
    from types import SimpleNamespace

    from heatnet.video import FaceTracker

    tracker = FaceTracker(SimpleNamespace(min_score=0.1))
    assert tracker.min_score == 0.1 and FaceTracker(SimpleNamespace()).min_score == 0.0  # no threshold: 0
    assert FaceTracker(SimpleNamespace(min_score=0.1), min_score=0.3).min_score == 0.3
    image = np.zeros((100, 120, 3), np.uint8)

    def face(cx, cy, side=20.0):  # a square of points around (cx, cy)
        return np.array([[cx - side / 2, cy - side / 2], [cx + side / 2, cy + side / 2]])

    good = np.full(2, 0.2)
    assert not tracker._lost(face(50, 50), good, 20.0, image)
    assert not tracker._lost(face(50, 50), np.array([0.1, 0.1]), 20.0, image)  # at the threshold: kept
    assert tracker._lost(face(50, 50), np.array([0.05, 0.14]), 20.0, image)  # mean 0.095
    assert (tracker.min_cutoff, tracker.beta, tracker.smooth) == (1.0, 0.5, True)  # tools/jitter.py's defaults
    assert not tracker._lost(face(0, 0), good, 20.0, image) and not tracker._lost(face(0.5, 0.5), good, 20.0, image) and not tracker._lost(face(119.5, 99.5), good, 20.0, image)
    for cx, cy in [(-0.5, 50), (120, 50), (50, -0.5), (50, 100), (-5, -5)]:
        assert tracker._lost(face(cx, cy), good, 20.0, image), (cx, cy)
    assert not tracker._lost(face(50, 50, 10.2), good, 20.0, image) and not tracker._lost(face(50, 50, 39.8), good, 20.0, image)
    assert tracker._lost(face(50, 50, 10.0), good, 20.0, image) and tracker._lost(face(50, 50, 40.0), good, 20.0, image)


class SpotFinder:
    """A detector that finds each bright spot (connected pixels over 100) and boxes it as a face
    landmark box of side SIDE around the spot's centroid (BoxFit identity)."""

    SIDE = 40.0

    def __init__(self):
        from heatnet.detect import BoxFit

        self.name, self.box_fit, self.max_side, self.calls = "spots", BoxFit(), 10_000, 0

    def __call__(self, image):
        from scipy import ndimage

        from heatnet.detect import Detections

        self.calls += 1
        grey = image[..., 0].astype(np.float64)
        labels, count = ndimage.label(grey > 100)
        centres = np.array(ndimage.center_of_mass(grey, labels, range(1, count + 1))).reshape(-1, 2)[:, ::-1]
        return Detections.upright(np.concatenate([centres - self.SIDE / 2, centres + self.SIDE / 2], axis=1),
                                  np.ones(count))


def _spot_predictor():
    """The fast model's predictor with SpotFinder as its detector and a "network" that puts a
    face-shaped ring (its eye corners level, as wide as the landmark box the crop was cut around)
    on the bright spot it sees in each crop, scored 0.9 if the crop holds a spot and 0 if not."""
    import heatnet

    predictor = heatnet.load_pretrained("fast", runtime="pytorch", detector=SpotFinder())
    k, size = predictor.scheme.num_points, predictor.crop.size
    radius = size / predictor.crop.box_scale / 2  # the crop is box_scale x the landmark box
    angles = 2 * np.pi * np.arange(k) / k  # 68 = 4 x 17: the ring's box is exactly 2 radius wide
    ring = radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    right, left = predictor.scheme.norm_pair
    ring[right], ring[left] = [-0.5 * radius, -0.3 * radius], [0.5 * radius, -0.3 * radius]

    def network(images):  # (N, C, S, S) uint8 crops
        grey = images[:, 0].astype(np.float64)
        ys, xs = np.mgrid[0:size, 0:size]
        mass = np.maximum(grey.sum((1, 2)), 1e-9)
        centroid = np.stack([(grey * xs).sum((1, 2)), (grey * ys).sum((1, 2))], axis=-1) / mass[:, None]
        scores = np.where(grey.max((1, 2)) > 100, 0.9, 0.0)
        return centroid[:, None] + ring, np.repeat(scores[:, None], k, axis=1)

    predictor.network = network
    return predictor


def _spots(*centres, shape=(240, 400)) -> np.ndarray:
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    grey = sum(250 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0 ** 2)) for x, y in centres)
    return np.repeat(np.clip(grey, 0, 255)[..., None], 3, axis=2).astype(np.uint8) if centres else np.zeros((*shape, 3), np.uint8)


def test_the_tracker_keeps_each_face_from_its_last_points_and_detects_only_when_one_is_lost():
    """Fast (no data, no real network): two tracked spots follow their motion without the detector;
    when one vanishes the detector runs and the face still tracked is not started again; a black
    frame loses every track; smoothing is the One-Euro filter over the raw points in the face's size."""
    from heatnet.predict import Face
    from heatnet.video import FaceTracker, OneEuroFilter

    raw_tracker, smooth_tracker = FaceTracker(_spot_predictor(), smooth=False), FaceTracker(_spot_predictor(), 0.3, 2.0)
    a, b = np.array([100.3, 120.7]), np.array([300.2, 60.4])
    frames = [(_spots(a, b), [b, a], 1),  # both detected (b first: higher in the frame)
              (_spots(a + [6, -4], b + [-3, 5]), [b + [-3, 5], a + [6, -4]], 1),  # both followed, no detector
              (_spots(b + [-3, 5]), [b + [-3, 5]], 2),  # a lost: the detector runs, finds b, b is not doubled
              (_spots(a, b + [-3, 5]), [b + [-3, 5]], 2),  # b followed; a is back but nothing looks for it
              (_spots(), [], 3),  # black: b lost, nothing found
              (_spots(a), [a], 4)]  # a detected again
    filters: dict[int, tuple] = {}  # a filter per raw track (kept alive so its id is not reused)
    for index, (frame, centres, detections) in enumerate(frames):
        t = index / 25
        raw, smooth = raw_tracker(frame, t), smooth_tracker(frame, t)
        assert raw_tracker.detections == smooth_tracker.detections == detections, index
        assert len(raw) == len(smooth) == len(centres) == len(raw_tracker.tracks), index
        for face, centre in zip(raw, centres):
            assert isinstance(face, Face) and math.isnan(face.detection_score) and face.roll == pytest.approx(0, abs=1e-9)
            box = np.concatenate([face.points.min(0), face.points.max(0)])
            np.testing.assert_allclose(face.box, box, atol=1e-9)  # the points' box
            np.testing.assert_allclose((box[:2] + box[2:]) / 2, centre, atol=0.05)  # on the spot
            np.testing.assert_allclose(box[2:] - box[:2], SpotFinder.SIDE, atol=0.05)  # as wide as detected
            np.testing.assert_allclose(face.scores, 0.9)
        for face, smoothed, track in zip(raw, smooth, raw_tracker.tracks):  # each track filtered from its start
            _, f = filters.setdefault(id(track), (track, OneEuroFilter(0.3, 2.0)))
            assert track.scale == pytest.approx(SpotFinder.SIDE, abs=0.05)  # the filter's unit: the face's size
            np.testing.assert_allclose(smoothed.points, f(face.points, t, track.scale), atol=1e-9)
            np.testing.assert_allclose(smoothed.box, np.concatenate([smoothed.points.min(0), smoothed.points.max(0)]))
        if index == 1:
            assert np.abs(smooth[1].points - raw[1].points).max() > 1  # the filter lags a 6 px jump


def test_measure_jitter_reads_each_tracker_on_the_shaken_clip():
    """On a drawn spot without noise the raw tracker follows the clip's known shifts: jitter and
    NME (against the ring drawn around the spot by hand) near 0, its offset from itself exactly 0;
    the smoothed tracker lags (a larger offset), less so with a larger beta; two faces: None."""
    from heatnet.video import Clip, measure_jitter

    spot, clip = np.array([150.0, 110.0]), Clip(frames=20, max_shift=3.0, noise=0.0)
    predictor = _spot_predictor()
    k = predictor.scheme.num_points
    angles = 2 * np.pi * np.arange(k) / k
    truth = spot + SpotFinder.SIDE / 2 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    right, left = predictor.scheme.norm_pair
    truth[right], truth[left] = spot + [-10, -6], spot + [10, -6]  # inter-ocular 20 px
    rows = measure_jitter(_spots(spot), truth, [("raw", predictor, False), ("smooth", predictor, True)], clip)
    (raw, raw_jitter, raw_offset, raw_nme, raw_fps), (smooth, jitter_, offset, nme, fps) = rows
    assert (raw, smooth) == ("raw", "smooth") and raw_offset == 0.0 and raw_fps > 0 and fps > 0
    assert raw_jitter < 0.2 and raw_nme < 0.2  # % of 20 px (0.08 and 0.05 measured): within 0.04 px
    assert offset > 5 and nme > 5 and jitter_ > 10 * raw_jitter  # the filter lags the drift (9.6 % measured)
    quick = measure_jitter(_spots(spot), None, [("raw", predictor, False), ("smooth", predictor, True)], clip, beta=50.0)
    assert math.isnan(quick[0][3]) and quick[1][2] < offset / 2  # a large beta follows fast motion closely
    slow = measure_jitter(_spots(spot), None, [("raw", predictor, False), ("smooth", predictor, True)], clip, min_cutoff=0.2)
    assert slow[1][2] > offset * 1.2  # a lower cut-off lags more (12.5 % measured)
    assert measure_jitter(_spots(spot, spot + [150, 0]), None, [("raw", predictor, False)], clip) is None
