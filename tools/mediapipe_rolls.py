"""MediaPipe's face mesh on photos turned in the image plane: the peer of `tools/evaluate.py
--rotations` (docs/any_angle.md). Runs in a venv of its own, never a heatnet dependency:

    python3 -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.21 "numpy<2" opencv-python-headless
    /tmp/mp/bin/python tools/mediapipe_rolls.py --data-root ../shared/datasets --rotations 0,90,180 --out results/mp

Its 468 mesh points are mapped to the 51 inner iBUG points (the jaw left out: the mesh's outline
is not the iBUG jaw line) by the nearest mesh vertex on average, chosen on 300-W training photos
(lfpw/trainset), never on the test photos. A face counts as found when the mesh's point box
overlaps the annotated face's (IoU >= 0.3). NME: the 51 inner points over the outer eye corners'
distance, as heatnet's `inner_nme_%`.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # heatnet's light modules: numpy and OpenCV only
from heatnet.formats import read_pts  # noqa: E402
from heatnet.geometry import apply_affine, turn_image  # noqa: E402

INNER = np.arange(17, 68)  # iBUG brows, nose, eyes, mouth


def photos(folder: Path, limit: int = 0) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(RGB image, (68, 2) points, name) of every annotated .jpg/.png in a 300-W folder."""
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    found = found[:limit] if limit else found
    return [(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), read_pts(p.with_suffix(".pts")), p.stem)
            for p in found if p.with_suffix(".pts").exists()]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def mesh_points(mesh, image: np.ndarray) -> list[np.ndarray]:
    """(468, 2) pixel points of each face the mesh finds (pixel centres at integers)."""
    result = mesh.process(image)
    h, w = image.shape[:2]
    return [np.array([[p.x * w - 0.5, p.y * h - 0.5] for p in face.landmark[:468]])
            for face in (result.multi_face_landmarks or [])]


def box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(0), points.max(0)])


def fit_mapping(mesh, train: list) -> np.ndarray:
    """(51,) the mesh vertex nearest each inner iBUG point on average (distances over the
    inter-ocular distance), on training photos."""
    distances, faces = np.zeros((len(INNER), 468)), 0
    for image, truth, _ in train:
        found = [m for m in mesh_points(mesh, image) if iou(box(m), box(truth)) >= 0.3]
        if found:
            scale = np.linalg.norm(truth[36] - truth[45])
            distances += np.linalg.norm(truth[INNER, None] - found[0][None], axis=-1) / scale
            faces += 1
    print(f"mapping fitted on {faces} of {len(train)} training faces", file=sys.stderr)
    return distances.argmin(axis=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="the folder holding 300w/")
    parser.add_argument("--rotations", default="0", help="comma-separated angles, degrees counter-clockwise")
    parser.add_argument("--limit", type=int, default=0, help="the first N test photos only")
    parser.add_argument("--out", type=Path, required=True, help="folder for roll_robustness.json")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args = parser.parse_args()
    import mediapipe as mp

    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4, refine_landmarks=False)
    mapping = fit_mapping(mesh, photos(args.data_root / "300w/lfpw/trainset", 300))
    test = photos(args.data_root / "300w/lfpw/testset", args.limit)
    rows = []
    for angle in (float(a) for a in args.rotations.split(",")):
        found, nmes, seconds = 0, [], 0.0
        for image, truth, _ in test:
            turned, matrix = turn_image(image, angle)
            points = apply_affine(truth, matrix)
            start = time.perf_counter()
            faces = mesh_points(mesh, turned)
            seconds += time.perf_counter() - start
            matched = [m for m in faces if iou(box(m), box(points)) >= 0.3]
            if matched:
                found += 1
                scale = np.linalg.norm(points[36] - points[45])
                nmes.append(np.linalg.norm(matched[0][mapping] - points[INNER], axis=1).mean() / scale)
        rows.append({"angle_deg": angle, "faces": len(test), "found": found,
                     "inner_nme_%": 100 * float(np.mean(nmes)) if nmes else float("nan"),
                     "inner_nme_median_%": 100 * float(np.median(nmes)) if nmes else float("nan"),
                     "ms_per_photo": 1000 * seconds / len(test)})
        print(f"{angle:6.1f} deg: {found} / {len(test)} found, inner NME {rows[-1]['inner_nme_%']:.2f} %, "
              f"{rows[-1]['ms_per_photo']:.1f} ms per photo", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "roll_robustness.json").write_text(json.dumps(
        {"model": "mediapipe 0.10.21 face mesh", "data": "300w/test", "detector": "its own", "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
