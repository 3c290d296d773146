"""Find faces in photos or a video and predict their landmarks: annotated images (or an annotated
video), faces.json and points.csv.

    python tools/predict.py photo.jpg                          # the shipped 300-W model, Haar detector
    python tools/predict.py photos/ --out results/photos       # every image of a folder
    python tools/predict.py photo.jpg --model runs/w300_unet_kl/<time>/best.pt --detector dlib_hog
    python tools/predict.py clip.mp4 --min-cutoff 1 --beta 0.5 # tracked and smoothed (--no-smooth: raw)

Faces are found by a detector (OpenCV's Haar cascade by default; dlib_hog and dlib_cnn with
`pip install -e ".[dlib]"`), cropped as the model was trained, predicted in batches, and the
points mapped back to the photo's pixels (EXIF orientation applied; grayscale, RGBA, 16-bit and
huge photos work). A photo without a face is reported, not an error; an input of which no
image or frame could be read exits with code 2 and writes nothing. In a video each face is
tracked (the next crop comes from the previous frame's points; the detector runs again when a
face is lost) and its points smoothed with a One-Euro filter (heatnet/video.py). points.csv has
one row per face: name (image#face, or video@frame#face), x0, y0, ..., then the per-point scores.
"""
import argparse
import sys
import time
from pathlib import Path

from heatnet.cli import tool

ROOT = Path(__file__).resolve().parents[1]
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def inputs_of(path: Path) -> list[Path]:
    """The photos a path names: itself, or a folder's images (sorted, not recursive)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    return [path]


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="an image, a folder of images, or a video")
    parser.add_argument("--model", type=Path, help="a heatnet checkpoint (default: the shipped 300-W model)")
    parser.add_argument("--detector", default="haar", help="haar (default), dlib_hog or dlib_cnn")
    parser.add_argument("--out", type=Path, help="output folder (default results/predict_<time>)")
    parser.add_argument("--device", default="", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, default=16, help="faces per forward pass")
    parser.add_argument("--refine", type=int, default=1, help="passes re-cropped around the predicted points "
                        "(0: the detector's crop only, half the time)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--onnxruntime", action="store_true", help="run the network in onnxruntime (CPU; faster at "
                        "batch 1; the [onnx] extra)")
    parser.add_argument("--min-cutoff", type=float, default=1.0, help="video: One-Euro cutoff of a still face, Hz "
                        "(lower: smoother)")
    parser.add_argument("--beta", type=float, default=0.5, help="video: how fast the cutoff rises with motion "
                        "(higher: less lag)")
    parser.add_argument("--no-smooth", action="store_true", help="video: raw per-frame points")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if not args.input.exists():
        print(f"error: {args.input}: no such image or folder", file=sys.stderr)
        return 2
    photos = inputs_of(args.input)
    if not photos:
        print(f"error: {args.input}: no images ({', '.join(sorted(PHOTO_SUFFIXES))}) in this folder", file=sys.stderr)
        return 2

    import json  # imported after parsing: --help answers at once

    import cv2
    import numpy as np
    from tqdm import tqdm

    from heatnet.checkpoint import CheckpointError
    from heatnet.config import ConfigError
    from heatnet.data import ImageError, read_image
    from heatnet.detect import make_detector
    from heatnet.drawing import draw_points
    from heatnet.files import check_writable
    from heatnet.formats import write_points_csv
    from heatnet.predict import PRETRAINED, FacePredictor
    from heatnet.runtime import choose_device, set_threads

    set_threads(args.threads)
    out = args.out or ROOT / "results" / f"predict_{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        device = choose_device(args.device)
        check_writable(out)
        predictor = FacePredictor.from_checkpoint(args.model or PRETRAINED, device, make_detector(args.detector))
        predictor.batch_size, predictor.refine = max(1, args.batch_size), max(0, args.refine)
        if args.onnxruntime:
            try:
                predictor.use_onnxruntime(args.threads)
            except ImportError:
                raise ConfigError('--onnxruntime needs onnx and onnxruntime: pip install -e ".[onnx]"') from None
    except (ConfigError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # the output folder is made when the first result is written: an input of which nothing could
    # be read leaves nothing behind
    if args.input.suffix.lower() in VIDEO_SUFFIXES:
        return predict_video(args, predictor, out)
    records, names, all_points, all_scores = [], [], [], []
    detect_s = predict_s = 0.0
    faces_total, read = 0, 0
    for photo in tqdm(photos, desc="photos", disable=args.no_progress or len(photos) == 1, unit="photo"):
        try:
            image = read_image(photo, upright=True)
        except ImageError as e:
            print(f"{photo}: skipped ({e})", file=sys.stderr)
            records.append({"image": str(photo), "error": str(e), "faces": []})
            continue
        read += 1
        start = time.perf_counter()
        boxes, detection_scores = predictor.detector(image)
        detect_s += time.perf_counter() - start
        start = time.perf_counter()
        points, scores = predictor.predict_boxes(image, boxes)
        predict_s += time.perf_counter() - start
        faces_total += len(boxes)
        if len(boxes) == 0:
            print(f"{photo}: no face found")
        drawn = image.copy()
        faces = []
        for i, (box, detection_score, p, s) in enumerate(zip(boxes, detection_scores, points, scores)):
            x0, y0, x1, y1 = np.round(box).astype(int)
            cv2.rectangle(drawn, (x0, y0), (x1, y1), (255, 255, 0), max(1, round(max(image.shape) / 500)))
            drawn = draw_points(drawn, p, scheme=predictor.scheme, radius=max(1, round((x1 - x0) / 80)))
            faces.append({"box": box.tolist(), "detection_score": float(detection_score), "points": p.tolist(),
                          "scores": s.tolist()})
            names.append(f"{photo.name}#{i}")
            all_points.append(p)
            all_scores.append(s)
        records.append({"image": str(photo), "width": image.shape[1], "height": image.shape[0], "faces": faces})
        out.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / f"{photo.stem}_landmarks.jpg"), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    if not read:
        print(f"error: {args.input}: no image could be read ({len(photos)} tried); nothing written", file=sys.stderr)
        return 2
    (out / "faces.json").write_text(json.dumps({"model": str(args.model or PRETRAINED), "detector": args.detector,
                                                "scheme": predictor.scheme.name, "images": records}, indent=1))
    if all_points:
        write_points_csv(out / "points.csv", names, np.stack(all_points), np.stack(all_scores))
    print(f"{faces_total} face(s) in {len(photos)} image(s); detector {1000 * detect_s / len(photos):.1f} ms per image, "
          f"landmarks {1000 * predict_s / max(faces_total, 1):.1f} ms per face (batches of {predictor.batch_size}, "
          f"{device.type})")
    print(f"wrote {out}")
    return 0


def predict_video(args, predictor, out: Path) -> int:
    """A video, frame by frame: tracked, smoothed, written as an annotated video plus JSON and CSV."""
    import json

    import cv2
    import numpy as np
    from tqdm import tqdm

    from heatnet.drawing import draw_points
    from heatnet.formats import write_points_csv
    from heatnet.video import FaceTracker

    capture = cv2.VideoCapture(str(args.input))
    if not capture.isOpened():
        print(f"error: {args.input}: cannot open this video", file=sys.stderr)
        return 2
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    tracker = FaceTracker(predictor, args.min_cutoff, args.beta, smooth=not args.no_smooth)
    writer, frames, names, all_points, all_scores = None, [], [], [], []
    start = time.perf_counter()
    for index in tqdm(range(count or 10**9), total=count, desc="frames", disable=args.no_progress, unit="frame"):
        ok, bgr = capture.read()
        if not ok:
            break
        frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        faces = tracker(frame, index / fps)
        drawn = frame
        for i, face in enumerate(faces):
            drawn = draw_points(drawn, face.points, scheme=predictor.scheme, radius=2)
            names.append(f"{args.input.stem}@{index}#{i}")
            all_points.append(face.points)
            all_scores.append(face.scores)
        frames.append({"frame": index, "time_s": index / fps, "faces": [
            {"points": f.points.tolist(), "scores": f.scores.tolist()} for f in faces]})
        if writer is None:
            out.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(str(out / f"{args.input.stem}_landmarks.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                     fps, (frame.shape[1], frame.shape[0]))
        writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    capture.release()
    if writer is None:
        print(f"error: {args.input}: no frame could be read (an empty or truncated video?); nothing written",
              file=sys.stderr)
        return 2
    writer.release()
    seconds = time.perf_counter() - start
    (out / "faces.json").write_text(json.dumps({
        "video": str(args.input), "fps": fps, "smoothing": None if args.no_smooth else
        {"filter": "one-euro", "min_cutoff": args.min_cutoff, "beta": args.beta},
        "detector": args.detector, "scheme": predictor.scheme.name, "frames": frames}, indent=1))
    if all_points:
        write_points_csv(out / "points.csv", names, np.stack(all_points), np.stack(all_scores))
    print(f"{len(frames)} frames, {len(all_points)} face(s) in all, detector run on {tracker.detections}; "
          f"{1000 * seconds / len(frames):.1f} ms per frame")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
