"""Face scores: how face-like a crop is to a heatmap model, and the threshold below which a
detection is dropped as a non-face.

A face's score is the mean of its points' heatmap peaks (`Face.score`). A detector's false boxes
(a shirt, a dog) get a full set of points, but flat, spread-out heatmaps: low peaks. The
threshold is chosen on validation faces against non-face crops cut from the same photos away
from the face (`choose_min_score`; `tools/choose_min_score.py` prints the measurement).

    faces = face_scores(predictor, load_split("300w", "val"))
    background = face_free_images(load_split("300w", "val"))
    others = crop_scores(predictor, background, np.random.default_rng(0))
    threshold = choose_min_score(faces, others)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heatnet.crop import centres_and_sides, points_boxes
from heatnet.detect import Detections
from heatnet.geometry import landmark_box
from heatnet.predict import face_score


def face_scores(predictor, source, limit: int = 0) -> np.ndarray:
    """(N,) scores of the annotated faces of a split, each cropped from the box a detector that
    found it would give (its landmark box through the detector's BoxFit), with the predictor's
    refine passes: the pipeline a real face goes through. Faces share batches."""
    samples = [source[index] for index in range(min(limit or len(source), len(source)))]
    detections = [Detections.upright(predictor.detector.box_fit.detector_boxes(*centres_and_sides(
        points_boxes(sample.points[None][:, sample.visibility > 0]))), np.ones(1)) for sample in samples]
    return _scores(predictor, [sample.image for sample in samples], detections)


def _scores(predictor, images: list[np.ndarray], detections: list[Detections]) -> np.ndarray:
    """Face scores of detections (one Detections per image), batched across images."""
    results = predictor.predict_detections(images, detections)
    return np.concatenate([face_score(scores) for _, scores in results]) if results else np.zeros(0)


def face_free_images(source, margin: float = 0.15, min_side: int = 48, limit: int = 0) -> list[np.ndarray]:
    """The face-free strip (face_free_strip) of each photo of a source that has one."""
    strips = (face_free_strip(source[index], margin, min_side) for index in range(min(limit or len(source), len(source))))
    return [strip for strip in strips if strip is not None]


def face_free_strip(sample, margin: float = 0.15, min_side: int = 48) -> np.ndarray | None:
    """The largest strip of a photo (left, right, above or below its annotated face, kept `margin` x
    the face's size away from it) of at least min_side x min_side pixels, or None. Face-free as far
    as the annotation knows: a photo's other, unannotated people can still be there."""
    x0, y0, x1, y1 = landmark_box(sample.points, sample.visibility)
    pad = margin * max(x1 - x0, y1 - y0)
    h, w = sample.image.shape[:2]
    left, right = int(max(x0 - pad, 0)), int(min(x1 + pad, w))
    top, bottom = int(max(y0 - pad, 0)), int(min(y1 + pad, h))
    strips = [sample.image[:, :left], sample.image[:, right:], sample.image[:top], sample.image[bottom:]]
    strips = [s for s in strips if min(s.shape[:2]) >= min_side]
    if not strips:
        return None
    return np.ascontiguousarray(max(strips, key=lambda s: s.shape[0] * s.shape[1]))


def turned_face_scores(predictor, source, angles, limit: int = 0) -> np.ndarray:
    """Scores of the faces the predictor's detector finds in a split's photos turned by each of
    `angles` (heatnet.rotation.Turned): the whole pipeline, the roll it takes out included."""
    from heatnet.predict import evaluate_with_detector
    from heatnet.rotation import Turned

    return np.concatenate([evaluate_with_detector(predictor, Turned(source, angle), limit).face_scores
                           for angle in angles])


def crop_scores(predictor, images: list[np.ndarray], rng: np.random.Generator, per_image: int = 3) -> np.ndarray:
    """(M,) scores of random square boxes (a third to the whole of the shorter side) at random
    rolls in each face-free image, treated as detections: what a false detection of a detector
    that finds faces at any roll scores."""
    boxes = []
    for image in images:
        h, w = image.shape[:2]
        side = rng.uniform(1 / 3, 1, per_image) * min(h, w)  # (per_image,)
        x0, y0 = rng.uniform(0, 1, per_image) * (w - side), rng.uniform(0, 1, per_image) * (h - side)
        boxes.append(Detections(np.stack([x0, y0, x0 + side, y0 + side], axis=1), np.ones(per_image),
                                rng.uniform(-180, 180, per_image)))
    return _scores(predictor, images, boxes)


def choose_min_score(faces: np.ndarray, non_faces: np.ndarray) -> float:
    """Halfway between the lowest real faces (their 0.5th percentile) and the highest non-face
    crops (their 99th percentile): a margin on both sides, as neither tail is seen in full."""
    return float((np.percentile(faces, 0.5) + np.percentile(non_faces, 99)) / 2)


def false_detections(predictor, images: list[np.ndarray]) -> np.ndarray:
    """(D,) scores of every face the detector finds in face-free images (all of them false)."""
    return np.array([face.score for image in images for face in predictor.predict_image(image, min_score=0.0)])


@dataclass
class ScoreStudy:
    """What a threshold keeps and drops, on the splits it is chosen on and on held-out ones."""

    min_score: float
    rows: list[dict]  # per set: what was scored, how many, how many fall below the threshold

    def table(self) -> str:
        lines = [f"min_score = {self.min_score:.4f}", "", "| set | kind | count | below | below % | scores p1 / p50 / p99 |",
                 "|---|---|---|---|---|---|"]
        for r in self.rows:
            p1, p50, p99 = np.percentile(r["scores"], [1, 50, 99]) if len(r["scores"]) else (np.nan,) * 3
            below = int((r["scores"] < self.min_score).sum())
            lines.append(f"| {r['set']} | {r['kind']} | {len(r['scores'])} | {below} | "
                         f"{100 * below / max(len(r['scores']), 1):.1f} | {p1:.3f} / {p50:.3f} / {p99:.3f} |")
        return "\n".join(lines)


TURNED = (45, 180)  # the study's turned photos: the detector copies' worst angle, and upside down


def study_min_score(predictor, load, seed: int = 0) -> ScoreStudy:
    """Choose the threshold on validation (300w and ytf68 val faces, and 300w val photos turned
    by TURNED through the detector, against non-face crops of 300w and imm val photos at random
    rolls), then count on test what it drops: real faces (300w and ytf68 test, 300w test turned)
    and the detector's false detections on face-free images (300w and imm test). `load(name,
    split)` gives a split's source."""
    rng = np.random.default_rng(seed)
    faces = np.concatenate([face_scores(predictor, load("300w", "val")), face_scores(predictor, load("ytf68", "val")),
                            turned_face_scores(predictor, load("300w", "val"), TURNED)])
    background = face_free_images(load("300w", "val")) + face_free_images(load("imm", "val"))
    non_faces = crop_scores(predictor, background, rng)
    min_score = choose_min_score(faces, non_faces)
    turned = " + ".join(f"{angle}" for angle in TURNED)
    rows = [{"set": f"300w/val + ytf68/val, 300w/val turned {turned}", "kind": "real faces", "scores": faces},
            {"set": "300w/val + imm/val face-free", "kind": "random non-face crops", "scores": non_faces},
            {"set": "300w/val + imm/val face-free", "kind": "false detections", "scores": false_detections(predictor, background)}]
    for name in ("300w", "ytf68"):
        rows.append({"set": f"{name}/test", "kind": "real faces", "scores": face_scores(predictor, load(name, "test"))})
    rows.append({"set": f"300w/test turned {turned}", "kind": "real faces, found by the detector",
                 "scores": turned_face_scores(predictor, load("300w", "test"), TURNED)})
    held_out = face_free_images(load("300w", "test")) + face_free_images(load("imm", "test"))
    rows.append({"set": "300w/test + imm/test face-free", "kind": "random non-face crops",
                 "scores": crop_scores(predictor, held_out, rng)})
    rows.append({"set": "300w/test + imm/test face-free", "kind": "false detections",
                 "scores": false_detections(predictor, held_out)})
    return ScoreStudy(min_score, rows)
