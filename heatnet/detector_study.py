"""Face detectors compared on photos with known faces and on face-free images: recall, false
detections and time per photo (`tools/compare_detectors.py`; docs/detectors.md).

    rows = [detector_row(detector, {"300w/test": source}, face_free_images(source)) for detector in detectors]
    print(detector_table(rows))
"""
from __future__ import annotations

import time
from dataclasses import replace

import cv2
import numpy as np

from heatnet.detect import match_face
from heatnet.geometry import roll_degrees
from heatnet.samples import EditedPhotos, Sample


class Shrunk(EditedPhotos):
    """A landmark source whose photos are shrunk `factor` times (area averaging) and pasted in the
    middle of a canvas of the original size filled with the photo's mean colour: the same faces,
    `factor` times smaller in a photo as large (a face a few dozen pixels wide, as in a group photo)."""

    def __init__(self, source, factor: float):
        super().__init__(source)
        self.factor = factor

    def edit(self, sample: Sample) -> Sample:
        h, w = sample.image.shape[:2]
        size = (max(1, round(w / self.factor)), max(1, round(h / self.factor)))
        small = cv2.resize(sample.image, size, interpolation=cv2.INTER_AREA)
        canvas = np.empty_like(sample.image)
        canvas[:] = sample.image.reshape(-1, sample.image.shape[-1]).mean(axis=0).astype(np.uint8)
        x0, y0 = (w - size[0]) // 2, (h - size[1]) // 2
        canvas[y0:y0 + size[1], x0:x0 + size[0]] = small
        # pixel centres at integers: p -> (p + 0.5) * size / original - 0.5, then the paste's offset
        scale = np.array([size[0] / w, size[1] / h])
        points = (sample.points + 0.5) * scale - 0.5 + [x0, y0]
        return replace(sample, image=canvas, points=points.astype(np.float32), box=None, annotation_box=None)


def detector_row(detector, sources: dict, face_free: list[np.ndarray], limit: int = 0) -> dict:
    """One detector over every set: faces found (a detection overlapping the landmark box, IoU
    >= 0.3), ms per photo, and the found faces' roll errors in degrees (the detection's roll
    against the line of the scheme's eye pair; median and 95th percentile) per set; detections on
    the face-free images (all false)."""
    row = {"detector": detector.name}
    for name, source in sources.items():
        found, seconds, count, roll_errors = 0, 0.0, min(limit or len(source), len(source)), []
        pair = source.scheme.norm_pair
        for index in range(count):
            sample = source[index]
            start = time.perf_counter()
            detections = detector(sample.image)
            seconds += time.perf_counter() - start
            match = match_face(detections.boxes, sample.points, sample.visibility)
            found += match is not None
            if match is not None and pair is not None and sample.visibility[list(pair)].all():
                roll_errors.append(abs((detections.rolls[match] - roll_degrees(sample.points, pair) + 180) % 360 - 180))
        row[name] = {"faces": count, "found": found, "recall_%": 100 * found / max(count, 1),
                     "ms_per_photo": 1000 * seconds / max(count, 1),
                     "roll_error_deg": [float(np.median(roll_errors)), float(np.percentile(roll_errors, 95))]
                     if roll_errors else None}
    false = sum(len(detector(image)) for image in face_free)
    row["face_free"] = {"images": len(face_free), "false_detections": false,
                        "per_image": false / max(len(face_free), 1)}
    return row


def detector_table(rows: list[dict]) -> str:
    sets = [key for key in rows[0] if key not in ("detector", "face_free")]
    lines = ["| detector | " + " | ".join(f"{s} found / faces (recall %, ms per photo; roll error median / p95)"
                                          for s in sets)
             + " | false detections on face-free images |", "|---" * (len(sets) + 2) + "|"]
    for row in rows:
        cells = [f"{row[s]['found']} / {row[s]['faces']} ({row[s]['recall_%']:.1f} %, {row[s]['ms_per_photo']:.0f} ms"
                 + ("; roll {:.1f} / {:.1f} deg)".format(*row[s]["roll_error_deg"]) if row[s]["roll_error_deg"] else ")")
                 for s in sets]
        free = row["face_free"]
        lines.append(f"| {row['detector']} | " + " | ".join(cells)
                     + f" | {free['false_detections']} on {free['images']} ({free['per_image']:.3f} per image) |")
    return "\n".join(lines)
