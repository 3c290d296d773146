"""Roll robustness: faces found and NME as photos turn in the image plane (`tools/evaluate.py
--rotations 0,15,...,345`; docs/any_angle.md).

    rows = roll_robustness(predictor, load_split("300w", "test"), angles=range(0, 360, 15))

Each photo is turned counter-clockwise about its centre onto a canvas that keeps every pixel
(heatnet.geometry.turn_image), its annotation with it. Per angle, the full pipeline
(heatnet.predict.evaluate_with_detector: detector, crops turned upright, refine passes, face
score) and, for the same faces, the crop training cut: the ground-truth landmark box as it lies,
one pass, without the roll the pipeline takes out: what the network alone makes of a turned face.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from heatnet.geometry import apply_affine, turn_image
from heatnet.metrics import per_image_nme
from heatnet.predict import evaluate_with_detector
from heatnet.samples import EditedPhotos, Sample

WRONG_NME = 0.25  # a returned face whose NME is above this has wrong points (the any-angle issue's bound)


class Turned(EditedPhotos):
    """A landmark source whose photos (and points) are turned by `angle_deg` counter-clockwise."""

    def __init__(self, source, angle_deg: float):
        super().__init__(source)
        self.angle_deg = angle_deg

    def edit(self, sample: Sample) -> Sample:
        image, matrix = turn_image(sample.image, self.angle_deg)
        # a turn keeps distances: the normaliser stays
        return replace(sample, image=image, points=apply_affine(sample.points, matrix).astype(np.float32),
                       box=None, annotation_box=None)


def roll_robustness(predictor, source, angles, limit: int = 0, progress: bool = False,
                    after_each: Callable[[list[dict]], object] | None = None) -> list[dict]:
    """One row per angle: faces, found by the detector, kept (face score >= predictor.min_score,
    0 for predictors without one), NME % of the found faces' points (mean and worst), kept faces
    with wrong points (NME > WRONG_NME), other detections kept (boxes matching no annotated
    face: false detections or unannotated faces), detector ms per photo, and the ground-truth
    crop's NME % (one pass). `after_each(rows)` is called as each angle ends (a long study
    writes what it has)."""
    min_score = getattr(predictor, "min_score", 0.0)
    rows = []
    for angle in angles:
        result = evaluate_with_detector(predictor, Turned(source, angle), limit, f"{angle} deg" if progress else "")
        found = result.faces - len(result.missed)
        per_face = 100 * result.detected.per_image() if found else np.zeros(0)
        kept = result.face_scores >= min_score
        rows.append({
            "angle_deg": angle, "faces": result.faces, "found": found, "kept": int(kept.sum()),
            "nme_%": float(per_face.mean()) if found else float("nan"),
            "inner_nme_%": _inner_nme(result.detected, source.scheme) if found else float("nan"),
            "kept_nme_%": float(per_face[kept].mean()) if kept.any() else float("nan"),
            "worst_kept_nme_%": float(per_face[kept].max()) if kept.any() else float("nan"),
            "kept_wrong": int((per_face[kept] > 100 * WRONG_NME).sum()),
            "other_detections_kept": int((result.other_scores >= min_score).sum()),
            "detector_ms": 1000 * result.detect_s / max(result.faces, 1),
            "ground_truth_crop_nme_%": result.ground_truth_crops.summary()["nme_%"] if found else float("nan"),
            # for another threshold's counts: each found face's score and NME, the other detections' scores
            "found_face_scores": result.face_scores.round(5).tolist(), "found_nme_%": per_face.round(3).tolist(),
            "other_scores": result.other_scores.round(5).tolist()})
        if after_each is not None:
            after_each(rows)
    return rows


def roll_study(predictor, source, angles, out, model: str, name: str, detector: str, limit: int = 0,
               progress: bool = False) -> str:
    """roll_robustness written to out/roll_robustness.json as each angle ends; the printed table."""
    from heatnet.reports import roll_report, write_roll_rows

    refine = getattr(predictor, "refine", 0)
    rows = roll_robustness(predictor, source, angles, limit, progress,
                           lambda rows: write_roll_rows(out, rows, model, name, detector, refine))
    return roll_report(out, rows, model, name, detector, refine)


def _inner_nme(errors, scheme) -> float:
    """NME % over the points outside the jaw (all of them for a scheme without one): the points a
    peer without the iBUG jaw line (MediaPipe's mesh) is compared on."""
    pred, gt, visibility, normaliser = errors.arrays()
    inner = np.setdiff1d(np.arange(scheme.num_points), scheme.regions.get("jaw", ()))
    return 100 * float(np.nanmean(per_image_nme(pred[:, inner], gt[:, inner], visibility[:, inner], normaliser)))


def roll_table(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    lines = ["| angle | found / faces | kept | NME % (found) | NME % (kept), worst | kept with NME > 25 % "
             "| other detections kept | detector ms | ground-truth crop NME % |", "|---" * 9 + "|"]
    for r in rows:
        lines.append(f"| {r['angle_deg']} | {r['found']} / {r['faces']} | {r['kept']} | {r['nme_%']:.2f} | "
                     f"{r['kept_nme_%']:.2f}, {r['worst_kept_nme_%']:.1f} | {r['kept_wrong']} | "
                     f"{r['other_detections_kept']} | {r['detector_ms']:.0f} | {r['ground_truth_crop_nme_%']:.2f} |")
    return "\n".join(lines)
