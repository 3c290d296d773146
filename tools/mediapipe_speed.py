"""MediaPipe's face mesh timed on the photos `tools/speed.py predict` times heatnet on: the first N
lfpw test photos and the same 12-megapixel canvas, as a user calls it (FaceMesh(static_image_mode
=True).process(image)), ms per photo (the median round's mean). Runs in a venv of its own, never a heatnet dependency;
`tools/speed.py predict --mediapipe-python /tmp/mp/bin/python` runs it in the same run and prints
its row beside heatnet's:

    python3 -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.21 "numpy<2" opencv-python-headless
    /tmp/mp/bin/python tools/mediapipe_speed.py --data-root ../shared/datasets --photos 20

Prints one JSON line: {"ms_per_photo": ..., "ms_12mp": ..., "found": ...}.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, required=True, help="the folder holding 300w/")
    p.add_argument("--photos", type=int, default=20, help="the first N lfpw test photos")
    p.add_argument("--rounds", type=int, default=3, help="timed passes over the photos (the median is printed)")
    p.add_argument("--no-progress", action="store_true", help="accepted for uniformity; prints nothing anyway")
    args = p.parse_args()
    import mediapipe as mp

    folder = args.data_root / "300w/lfpw/testset"
    images = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in sorted(folder.glob("*.jpg"))[:args.photos]]
    # the 12-megapixel photo of heatnet.profiling.bench_photos: the first photo enlarged 6x on a 4000 x 3000 canvas
    large = np.zeros((3000, 4000, 3), np.uint8)
    face = cv2.resize(images[0], None, fx=6, fy=6, interpolation=cv2.INTER_LINEAR)[:3000, :4000]
    large[:face.shape[0], :face.shape[1]] = face
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        found = sum(mesh.process(image).multi_face_landmarks is not None for image in images)  # also the warm-up
        small, big = [], []
        for _ in range(args.rounds):  # as heatnet.profiling.bench_photos: each round's mean, the median round
            start = time.perf_counter()
            for image in images:
                mesh.process(image)
            small.append((time.perf_counter() - start) / len(images))
            start = time.perf_counter()
            mesh.process(large)
            big.append(time.perf_counter() - start)
    print(json.dumps({"ms_per_photo": 1000 * float(np.median(small)), "ms_12mp": 1000 * float(np.median(big)),
                      "found": found, "photos": len(images)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
