"""What tools/evaluate.py writes: the evaluation of a checkpoint on a split, its robustness to
moved crops, and the full pipeline with a face detector. Each writes its files (metrics.json
first of all) into `out` and returns the table it printed."""
from __future__ import annotations

import json
from pathlib import Path

from heatnet.config import Settings
from heatnet.drawing import error_curve_figure
from heatnet.evaluation import Evaluation
from heatnet.files import write_atomic
from heatnet.formats import write_points_csv
from heatnet.predict import DetectorEvaluation


def _table(rows: dict[str, float]) -> str:
    return "| metric | value |\n|---|---|\n" + "\n".join(f"| {key} | {value:.4g} |" for key, value in rows.items())


def _write_json(path: Path, content: dict) -> None:
    write_atomic(path, json.dumps(content, indent=1).encode())


def evaluation_report(out: Path, checkpoint: Path, s: Settings, dataset, result: Evaluation, decoder,
                      flip_test: bool, name: str) -> str:
    """metrics.json (summary, per point, per image), predictions.csv (original pixels) and
    error_curve.png for one evaluation of `dataset` (a LandmarkDataset, called `name`: 300w/test,
    or a folder's name) by a checkpoint."""
    metrics = result.summary()
    out.mkdir(parents=True, exist_ok=True)
    title = (f"{checkpoint} on {name} ({len(result.indices)} images"
             + (f", {len(result.skipped)} unreadable left out" if result.skipped else "")
             + f", {dataset.source.normaliser.value} NME, crops from the {s.box.value} box)")
    per_image = result.errors.per_image()
    error_curve_figure({Path(checkpoint).parent.name: per_image}, title=name).savefig(
        out / "error_curve.png", dpi=120)
    write_points_csv(out / "predictions.csv", [dataset.source.name_of(int(i)) for i in result.indices], result.predictions)
    _write_json(out / "metrics.json", {
        "checkpoint": str(checkpoint), "data": name,
        "decoder": repr(decoder) if decoder else None, "normaliser": dataset.source.normaliser.value,
        "flip_test": flip_test, "skipped": result.skipped, "metrics": metrics,
        "per_point_nme_%": result.errors.per_point().tolist(), "per_image_nme": per_image.tolist()})
    return f"{title}\n\n{_table(metrics)}\n\nwrote {out}/metrics.json, predictions.csv, error_curve.png"


def shift_report(out: Path, checkpoint: Path, s: Settings, rows: list[dict], name: str) -> str:
    """shift_robustness.json: NME and prediction drift for each crop shift (heatnet.robustness)."""
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "shift_robustness.json", {"checkpoint": str(checkpoint), "data": name,
                                                "input_size": s.input_size, "rows": rows})
    lines = [f"| {row['shift_px']} | {row['nme_%']:.3f} | {row['nme_change_%']:+.3f} | {row['drift_%']:.3f} |"
             for row in rows]
    return (f"{checkpoint} on {name}, crops moved by d input pixels (of {s.input_size}; mean of "
            f"right, left, down, up)\n\n| shift px | NME % | change % | drift % |\n|---|---|---|---|\n"
            + "\n".join(lines) + f"\n\nwrote {out}/shift_robustness.json")


DETECTOR_TABLE = ("faces", "missed", "missed_%", "detector_per_image_ms", "detector_crops_nme_%",
                  "detector_crops_nme_median_%", "detector_crops_fr@10_%", "ground_truth_crops_nme_%",
                  "ground_truth_crops_nme_median_%")


def detector_report(out: Path, result: DetectorEvaluation, model: str, name: str, detector: str, refine: int,
                    normaliser: str) -> str:
    """metrics.json of the full pipeline: misses, NME from the detector's crops and from the
    ground-truth crops of the same faces."""
    total = result.faces
    metrics = {"faces": total, "missed": len(result.missed), "missed_%": 100 * len(result.missed) / max(total, 1),
               "detector_per_image_ms": 1000 * result.detect_s / max(total, 1)}
    if len(result.missed) < total:
        metrics.update({f"detector_crops_{k}": v for k, v in result.detected.summary().items()})
        metrics.update({f"ground_truth_crops_{k}": v for k, v in result.ground_truth_crops.summary().items()})
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "metrics.json", {"model": model, "data": name, "detector": detector,
                                       "refine": refine, "metrics": metrics, "missed": result.missed})
    shown = {key: metrics[key] for key in DETECTOR_TABLE if key in metrics}
    return (f"{model} on {name} with {detector} boxes, {refine} refine pass(es) ({normaliser} NME)\n\n"
            f"{_table(shown)}\n\nwrote {out}/metrics.json")


def roll_report(out: Path, rows: list[dict], model: str, name: str, detector: str, refine: int) -> str:
    """roll_robustness.json: faces found and NME at each angle the photos were turned by (heatnet.rotation)."""
    from heatnet.rotation import roll_table

    write_roll_rows(out, rows, model, name, detector, refine)
    return (f"{model} on {name} turned counter-clockwise by each angle, {detector} boxes, {refine} refine pass(es)\n\n"
            f"{roll_table(rows)}\n\nwrote {out}/roll_robustness.json")


def write_roll_rows(out: Path, rows: list[dict], model: str, name: str, detector: str, refine: int) -> None:
    """roll_robustness.json with the rows so far."""
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "roll_robustness.json", {"model": model, "data": name, "detector": detector,
                                               "refine": refine, "rows": rows})


def evaluation_folder(checkpoint: Path, name: str) -> Path:
    """Where an evaluation of `checkpoint` on the set `name` goes by default: beside the
    checkpoint, but results/ for a shipped model (not inside the installed package)."""
    from heatnet.experiment import REPO_ROOT
    from heatnet.shipped import ASSETS

    if Path(checkpoint).resolve().parent == ASSETS:
        return REPO_ROOT / "results" / f"eval_shipped_{name.replace('/', '_')}"
    return Path(checkpoint).parent / f"eval_{name.replace('/', '_')}"


def pipeline_report(predictor, source, out: Path, model: str, name: str, detector: str, rotations=(),
                    limit: int = 0, progress: bool = True) -> str:
    """The whole pipeline (a FacePredictor or DlibPredictor with its detector) on an annotated
    source: with `rotations`, heatnet.rotation.roll_study at each angle; else
    evaluate_with_detector and its detector_report. Returns the printed table."""
    from heatnet.predict import evaluate_with_detector
    from heatnet.rotation import roll_study

    if rotations:
        return roll_study(predictor, source, rotations, out, model, name, detector, limit, progress)
    result = evaluate_with_detector(predictor, source, progress="faces" if progress else "")
    return detector_report(out, result, model, name, detector, getattr(predictor, "refine", 0), source.normaliser.value)
