"""Landmarks on files: photos and videos predicted and written as annotated images (or an
annotated video), faces.json and points.csv; tools/predict.py is the command line.

    summary = predict_photos(predictor, [Path("a.jpg"), Path("b.png")], Path("results/p"))
    summary = predict_video(predictor, Path("clip.mp4"), Path("results/v"), min_cutoff=1.0, beta=0.5)

The output folder is made when the first result is written: an input of which nothing could be
read leaves nothing behind, and raises ImageError.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from heatnet.samples import ImageError, read_image
from heatnet.drawing import draw_points
from heatnet.files import write_atomic
from heatnet.formats import write_points_csv
from heatnet.detect import Detections
from heatnet.predict import FacePredictor, face_score
from heatnet.video import FaceTracker


@dataclass
class Summary:
    inputs: int  # photos given, or frames read
    faces: int
    detect_s: float  # detector time over all inputs
    predict_s: float  # landmark time over all faces (a video: all of its processing)
    detections: int = 0  # a video: frames on which the detector ran
    dropped: int = 0  # photos: detections whose face score fell below the predictor's min_score


def _write_points(out: Path, names: list[str], points: list[np.ndarray], scores: list[np.ndarray]) -> None:
    if points:
        write_points_csv(out / "points.csv", names, np.stack(points), np.stack(scores))


def predict_photos(predictor: FacePredictor, photos: list[Path], out: Path, model: str = "",
                   progress: bool = False, keep_dropped: bool = False) -> Summary:
    """Every face in every photo: <stem>_landmarks.jpg (boxes and points; output_names), faces.json (per photo:
    size and faces with their face score, or the error that made it unreadable) and points.csv (a
    row per face). The faces of consecutive photos share batches (predictor.batch_size).
    Detections scoring below predictor.min_score are dropped as non-faces and counted; with
    `keep_dropped` faces.json lists them too (box, detector and face score)."""
    records, rows = [], []  # rows: (name, points, scores) per face, for points.csv
    names = output_names(photos)
    summary, read = Summary(len(photos), 0, 0.0, 0.0), 0
    for group in _detected_groups(predictor, tqdm(photos, desc="photos", disable=not progress, unit="photo"),
                                  records, summary):
        start = time.perf_counter()
        predictions = predictor.predict_detections([image for _, image, _ in group], [found for _, _, found in group])
        summary.predict_s += time.perf_counter() - start
        for (photo, image, found), (points, scores) in zip(group, predictions):
            read += 1
            records.append(_write_photo(predictor, photo, image, out / f"{names[photo]}_landmarks.jpg", found, points,
                                        scores, rows, summary, keep_dropped))
    if not read:
        where = photos[0] if len(photos) == 1 else photos[0].parent
        raise ImageError(f"{where}: no image could be read ({len(photos)} tried); nothing written")
    order = {str(photo): i for i, photo in enumerate(photos)}  # an unreadable photo's record came first
    records.sort(key=lambda record: order[record["image"]])
    write_atomic(out / "faces.json", json.dumps({"model": model, "detector": predictor.detector.name,
                                                 "min_score": predictor.min_score, "scheme": predictor.scheme.name,
                                                 "images": records}, indent=1).encode())
    _write_points(out, [name for name, _, _ in rows], [p for _, p, _ in rows], [s for _, _, s in rows])
    return summary


def _detected_groups(predictor: FacePredictor, photos, records: list, summary: Summary):
    """Photos read and run through the detector, yielded in groups holding at least a batch of
    faces (or the last photos); an unreadable photo goes to `records` with its error."""
    group, faces = [], 0
    for photo in photos:
        try:
            image = read_image(photo, upright=True)
        except ImageError as e:
            print(f"{photo}: skipped ({e})", file=sys.stderr)
            records.append({"image": str(photo), "error": str(e), "faces": []})
            continue
        start = time.perf_counter()
        found = predictor.detect(image)
        summary.detect_s += time.perf_counter() - start
        group.append((photo, image, found))
        faces += len(found)
        if faces >= predictor.batch_size:
            yield group
            group, faces = [], 0
    if group:
        yield group


def output_names(photos: list[Path]) -> dict[Path, str]:
    """Each photo's name for its outputs: its stem, or stem_suffix where another photo shares the
    stem (face.jpg and face.png), so that no two photos write the same file."""
    stems = [photo.stem for photo in photos]
    return {photo: photo.stem if stems.count(photo.stem) == 1 else f"{photo.stem}_{photo.suffix.lstrip('.')}"
            for photo in photos}


def _write_photo(predictor: FacePredictor, photo: Path, image: np.ndarray, drawing: Path, found: Detections,
                 points: np.ndarray, scores: np.ndarray, rows: list, summary: Summary, keep_dropped: bool) -> dict:
    """One photo's faces kept or dropped by their score, drawn to <stem>_landmarks.jpg; its faces.json record."""
    scores_of_faces = face_score(scores)
    is_face = scores_of_faces >= predictor.min_score
    dropped = [{"box": box.tolist(), "detection_score": float(d), "face_score": float(f)}
               for box, d, f in zip(found.boxes[~is_face], found.scores[~is_face], scores_of_faces[~is_face])]
    found, points, scores = found[is_face], points[is_face], scores[is_face]
    summary.faces, summary.dropped = summary.faces + len(found), summary.dropped + len(dropped)
    if len(found) == 0:
        print(f"{photo}: no face found" + (f" ({len(dropped)} detection(s) below --min-score)" if dropped else ""))
    drawn, faces = image.copy(), []
    for i, (box, detection_score, p, s, roll) in enumerate(zip(found.boxes, found.scores, points, scores,
                                                               predictor.roll(points))):
        # the detector's box, turned with the face (OpenCV's rectangle angles run clockwise)
        corners = cv2.boxPoints((tuple((box[:2] + box[2:]) / 2), tuple(box[2:] - box[:2]), -float(found.rolls[i])))
        thickness = max(1, round(max(image.shape) / 500))
        cv2.polylines(drawn, [np.round(corners).astype(np.int32)], True, (255, 255, 0), thickness)
        drawn = draw_points(drawn, p, scheme=predictor.scheme, radius=max(1, round((box[2] - box[0]) / 80)))
        faces.append({"box": box.tolist(), "detection_score": float(detection_score), "face_score": float(face_score(s)),
                      "roll_deg": round(float(roll), 2), "points": p.tolist(), "scores": s.tolist()})
        rows.append((f"{photo.name}#{i}", p, s))
    drawing.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(drawing), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    return {"image": str(photo), "width": image.shape[1], "height": image.shape[0], "faces": faces,
            "dropped": dropped if keep_dropped else len(dropped)}


def predict_video(predictor: FacePredictor, video: Path, out: Path, min_cutoff: float = 1.0, beta: float = 0.5,
                  smooth: bool = True, progress: bool = False) -> Summary:
    """A video frame by frame, each face tracked (heatnet.video.FaceTracker) and smoothed:
    <stem>_landmarks.mp4, faces.json (per frame) and points.csv (a row per face and frame)."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise ImageError(f"{video}: cannot open this video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    tracker = FaceTracker(predictor, min_cutoff, beta, smooth=smooth)
    writer, frames, names, all_points, all_scores = None, [], [], [], []
    start = time.perf_counter()
    for index in tqdm(range(count or 10**9), total=count, desc="frames", disable=not progress, unit="frame"):
        ok, bgr = capture.read()
        if not ok:
            break
        frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        faces = tracker(frame, index / fps)
        drawn = frame
        for i, face in enumerate(faces):
            drawn = draw_points(drawn, face.points, scheme=predictor.scheme, radius=2)
            names.append(f"{video.stem}@{index}#{i}")
            all_points.append(face.points)
            all_scores.append(face.scores)
        frames.append({"frame": index, "time_s": index / fps, "faces": [
            {"points": f.points.tolist(), "scores": f.scores.tolist()} for f in faces]})
        if writer is None:
            out.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(str(out / f"{video.stem}_landmarks.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                     fps, (frame.shape[1], frame.shape[0]))
        writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    capture.release()
    if writer is None:
        raise ImageError(f"{video}: no frame could be read (an empty or truncated video?); nothing written")
    writer.release()
    smoothing = {"filter": "one-euro", "min_cutoff": min_cutoff, "beta": beta} if smooth else None
    write_atomic(out / "faces.json", json.dumps({
        "video": str(video), "fps": fps, "smoothing": smoothing, "detector": predictor.detector.name,
        "scheme": predictor.scheme.name, "frames": frames}, indent=1).encode())
    _write_points(out, names, all_points, all_scores)
    return Summary(len(frames), len(all_points), 0.0, time.perf_counter() - start, tracker.detections)
