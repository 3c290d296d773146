"""heatnet's own detector: its targets decode back exactly, its loss sees a wrong map, its training
scenes label each face where the face really is, and training runs and resumes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from heatnet.augment import Augmentation
from heatnet.centre_detector import CHANNELS, STRIDE, centre_loss, centre_targets, decode_centres
from heatnet.samples import Sample
from heatnet.scenes import FACE_FIELDS, MAX_FACES, FaceScenes
from heatnet.schemes import IBUG68


def face_table(faces: list[tuple]) -> torch.Tensor:
    table = torch.zeros(1, MAX_FACES, FACE_FIELDS, dtype=torch.float64)
    for i, face in enumerate(faces):
        table[0, i] = torch.tensor(face, dtype=torch.float64)
    return table


FACES = [(40.3, 61.7, 37.0, 30.1, 50.2, 52.9, 49.0),  # centre x, y, side, right eye x, y, left eye x, y
         (101.6, 20.2, 18.5, 108.0, 14.0, 100.1, 28.3),  # turned past 90 degrees
         (12.0, 110.9, 12.0, 8.5, 108.0, 15.5, 108.0)]


def perfect_output(table: torch.Tensor, cells: int) -> torch.Tensor:
    """The network output that the targets describe: a logit of +20 at each face's cell, the
    Gaussian elsewhere (kept below 0.5), and the regression targets at the faces' cells."""
    heat, index, targets, mask = centre_targets(table, cells)
    out = torch.zeros(1, CHANNELS, cells, cells, dtype=torch.float64)
    out[0, 0] = torch.logit((heat * 0.45).clamp(1e-6))
    flat = out.view(1, CHANNELS, -1)
    for f in range(int(mask.sum())):
        flat[0, 0, index[0, f]] = 20.0
        flat[0, 1:, index[0, f]] = targets[0, f]
    return out


def test_targets_decode_back_to_the_faces_exactly():
    table = face_table(FACES)
    out = perfect_output(table, 128 // STRIDE)
    centres, sides, scores, eyes = decode_centres(out[0].numpy(), min_score=0.5)
    assert len(centres) == 3
    order = np.argsort(centres[:, 0])  # decode orders by score (all equal here)
    expected = np.array(FACES)[np.argsort(np.array(FACES)[:, 0])]
    np.testing.assert_allclose(centres[order], expected[:, :2], atol=1e-6)
    np.testing.assert_allclose(sides[order], expected[:, 2], atol=1e-6)
    np.testing.assert_allclose(eyes[order].reshape(-1, 4), expected[:, 3:], atol=1e-6)


def test_the_cell_grid_puts_pixel_centres_where_the_input_has_them():
    # an input pixel centre at x = 1.5 is the centre of the first 4 x 4 cell: cell coordinate 0
    table = face_table([(1.5, 1.5 + STRIDE, 10.0, 0, 0, 1, 0)])
    _, index, targets, _ = centre_targets(table, 8)
    assert index[0, 0] == 8 * 1 + 0
    np.testing.assert_allclose(targets[0, 0, :2], [0.0, 0.0], atol=1e-12)
    assert targets[0, 0, 2] == pytest.approx(np.log(10.0 / STRIDE))


def test_the_loss_is_lowest_at_the_perfect_map_and_sees_a_quarter_pixel():
    table = face_table(FACES)
    out = perfect_output(table, 32)
    best, parts = centre_loss(out, table)
    assert parts["offset"] == pytest.approx(0, abs=1e-5) and parts["eyes"] == pytest.approx(0, abs=1e-5)  # float32
    moved = table.clone()
    moved[0, 0, 0] += 0.25  # a quarter of an input pixel
    worse, moved_parts = centre_loss(out, moved)
    assert moved_parts["offset"] == pytest.approx(0.25 / STRIDE / 3, rel=1e-3)  # one of three faces, in cells
    assert worse > best
    off_peak = out.clone()
    off_peak[0, 0] = out[0, 0].roll(1, dims=1)  # centres one cell off
    assert centre_loss(off_peak, table)[1]["focal"] > parts["focal"] + 1


class DotFaces:
    """Black photos with one white dot on each eye of a 68-point face: the scene's label of each eye
    must land on its dot."""

    scheme = IBUG68

    def __init__(self, n: int = 4):
        rng = np.random.default_rng(1)
        self.samples = []
        for i in range(n):
            points = np.zeros((68, 2), np.float32)
            centre, side = rng.uniform(80, 120, 2), rng.uniform(50, 90)
            points[:] = centre + rng.uniform(-side / 2, side / 2, (68, 2))
            a = np.radians(rng.uniform(-30, 30))
            offset = np.array([np.cos(a), -np.sin(a)]) * side * 0.35
            points[36], points[45] = centre - offset, centre + offset  # the eye pair
            image = np.zeros((200, 200, 3), np.uint8)
            for p in (points[36], points[45]):
                cv2.circle(image, tuple(int(round(v)) for v in p), 3, (255, 255, 255), -1)
            # the dots drawn at whole pixels: the labels are where they were drawn
            points[36], points[45] = np.round(points[36]), np.round(points[45])
            self.samples.append(Sample(image, points, np.ones(68, np.float32), 1.0, f"dots{i}"))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


def test_scenes_label_each_eye_where_its_dot_is_pasted():
    still = Augmentation(color_prob=0, blur_prob=0, noise_prob=0, occlusion_prob=0, gray_prob=0)
    scenes = FaceScenes([DotFaces()], size=128, min_side=0.3, max_side=0.6, appearance=still)
    errors = []
    for index in range(30):
        item = scenes[index]
        image = item["image"].numpy().max(axis=0)
        for face in item["faces"][:item["count"]].numpy():
            for eye in (face[3:5], face[5:7]):
                x, y = np.round(eye).astype(int)
                if not (4 <= x < 124 and 4 <= y < 124):
                    continue  # a dot cut off by the frame
                window = image[y - 4:y + 5, x - 4:x + 5].astype(np.float64)
                assert window.sum() > 0, f"scene {index}: no dot near the eye label {eye}"
                ys, xs = np.mgrid[-4:5, -4:5]
                centroid = np.array([(xs * window).sum(), (ys * window).sum()]) / window.sum() + [x, y]
                errors.append(np.hypot(*(centroid - eye)))  # 0.21 px at most, measured: below a half-pixel slip
                assert errors[-1] < 0.35, f"scene {index}: dot at {centroid}, label {eye}"
    assert len(errors) > 20
    again = scenes[3]
    assert torch.equal(again["image"], scenes[3]["image"]) and torch.equal(again["faces"], scenes[3]["faces"])


def test_training_resumed_from_its_saved_state_ends_with_the_same_weights(tmp_path, monkeypatch):
    import heatnet.training.detector as training
    from heatnet.training.detector import DetectorRun, train_detector

    saved = {}
    real_save = training.save_atomic

    def keep_step_two(state, path):  # the real save, and a copy of the state written at step 2
        real_save(state, path)
        if path.name == "last.pt" and state["step"] == 2:
            real_save(state, tmp_path / "step2.pt")
        saved[path.name] = path

    monkeypatch.setattr(training, "save_atomic", keep_step_two)
    run = DetectorRun(tmp_path / "whole", steps=4, batch_size=2, size=64, val_every=2, workers=0)
    best = train_detector(run, [DotFaces()], DotFaces(2))
    assert set(saved) == {"last.pt", "best.pt"} and 0 <= best["recall"] <= 1
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (tmp_path / "step2.pt").rename(resumed / "last.pt")
    train_detector(DetectorRun(resumed, steps=4, batch_size=2, size=64, val_every=2, workers=0), [DotFaces()], DotFaces(2))
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    again = torch.load(resumed / "last.pt", weights_only=True)
    assert again["step"] == whole["step"] == 4
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, again["model"][name]), name
    from heatnet.errors import ConfigError

    with pytest.raises(ConfigError, match="other settings"):
        train_detector(DetectorRun(resumed, steps=8, batch_size=2, size=64, workers=0), [DotFaces()], DotFaces(2))


def test_the_score_threshold_finds_the_most_faces_within_the_false_detections_allowed():
    from heatnet.training.detector import choose_detector_score

    matched = np.array([0.9, 0.8, 0.3, -1.0])  # the last face found by nothing
    false = np.array([0.85, 0.4, 0.2])
    assert choose_detector_score(matched, false, images=10, max_false=0.1) == 0.8  # one false allowed: 0.85
    assert choose_detector_score(matched, false, images=10, max_false=0.2) == 0.3  # two: 0.85 and 0.4
    assert choose_detector_score(matched, false, images=10, max_false=0.0) == 0.9


@pytest.mark.parametrize("shape", [(200, 300), (300, 130), (96, 96)])
def test_canvas_points_map_back_onto_the_photo(shape):
    from heatnet.blazeface import canvas_to_image, fit_to_input

    image = np.zeros((*shape, 3), np.uint8)
    spot = np.array([shape[1] * 0.7, shape[0] * 0.3]).round()
    cv2.circle(image, tuple(int(v) for v in spot), 6, (255, 255, 255), -1)
    canvas, scale, corner = fit_to_input(image, 128)
    weights = canvas[..., 0].astype(np.float64)
    ys, xs = np.mgrid[:128, :128]
    centroid = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()
    # within a fifth of a canvas pixel: a half-pixel slip in the canvas is 0.5 / scale photo pixels
    assert np.hypot(*((canvas_to_image(centroid, scale, corner) - spot) * scale)) < 0.2


def test_a_trained_checkpoint_is_a_detector_by_its_path_with_the_threshold_chosen_on_validation(tmp_path):
    from heatnet.centre_detector import CentreDetector
    from heatnet.detect import CentreNetDetector, Detections, make_detector
    from heatnet.errors import ConfigError
    from heatnet.training.detector import DetectorRun, train_detector

    record = train_detector(DetectorRun(tmp_path, steps=2, batch_size=2, size=64, val_every=2, workers=0),
                            [DotFaces()], DotFaces(2))
    state = torch.load(tmp_path / "best.pt", weights_only=True)
    assert record["min_score"] == state["min_score"] == state["validation"]["min_score"]
    detector = make_detector(str(tmp_path / "best.pt"))
    assert isinstance(detector, CentreNetDetector) and detector.detector.min_score == state["min_score"]
    assert detector.box_fit.scale == 1 and isinstance(detector(DotFaces(1)[0].image), Detections)
    # onnxruntime (the kept graph) and PyTorch give the same maps
    loaded = CentreDetector.load(tmp_path / "best.pt")
    canvas = cv2.resize(DotFaces(1)[0].image, (64, 64))
    assert loaded.session is not None
    onnx = loaded.maps(canvas)
    loaded.session = None
    np.testing.assert_allclose(onnx, loaded.maps(canvas), atol=1e-4)
    with pytest.raises(ConfigError, match="no such detector checkpoint"):
        make_detector(str(tmp_path / "missing.pt"))
