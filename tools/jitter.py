"""Landmark jitter on video, measured: a 100-frame clip made from a still photo (a known smooth
sub-pixel drift, fresh sensor noise each frame), tracked with and without One-Euro smoothing; jitter is
the mean frame-to-frame motion of the points once the known shift is taken out, in % of the
inter-ocular distance (the face's outer eye corners, points 36 and 45 of the 68). When the photo
has a 300-W .pts file beside it, the NME of each against the drifting ground truth is given too,
so the accuracy that smoothing costs (its lag) is seen beside the jitter it removes.

    python tools/jitter.py ../shared/datasets/300w/lfpw/testset/image_0001.jpg   # its .pts beside it: NME too
    python tools/jitter.py photo.jpg --model runs/w300_unet_kl/<time>/best.pt --min-cutoff 0.5 --beta 0.5
    python tools/jitter.py photo.jpg --dlib        # also dlib's 68-point predictor (tracked the same way)
"""
import argparse
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path, help="a photo with one face")
    parser.add_argument("--model", type=Path, help="a heatnet checkpoint (default: the shipped model)")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--max-shift", type=float, default=2.0, help="largest drift over the clip, pixels per axis")
    parser.add_argument("--noise", type=float, default=4.0, help="sensor noise std, grey levels")
    parser.add_argument("--min-cutoff", type=float, default=1.0)
    parser.add_argument("--beta", type=float, default=0.5)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--dlib", action="store_true", help="also dlib's 68-point predictor, raw (the [dlib] extra)")
    args = parser.parse_args()

    import numpy as np  # imported after parsing: --help answers at once

    from heatnet.checkpoint import CheckpointError
    from heatnet.config import ConfigError
    from heatnet.data import ImageError, read_image
    from heatnet.formats import read_pts
    from heatnet.predict import PRETRAINED, DlibPredictor, FacePredictor
    from heatnet.video import FaceTracker, jitter, shaken_clip

    try:
        image = read_image(args.photo, upright=True)
        predictor = FacePredictor.from_checkpoint(args.model or PRETRAINED)
        dlib = DlibPredictor() if args.dlib else None
    except (ImageError, CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    clip, shifts = shaken_clip(image, args.frames, args.max_shift, args.noise)
    print(f"{args.photo}: {args.frames} frames at {args.fps:g} fps, drift up to {args.max_shift:g} px, "
          f"noise std {args.noise:g}\n")
    truth = read_pts(args.photo.with_suffix(".pts")) if args.photo.with_suffix(".pts").is_file() else None
    print("| points | jitter % of inter-ocular | mean offset from heatnet raw % | NME % vs truth |\n|---|---|---|---|")
    raw = None
    runs = [("raw", predictor, False), (f"One-Euro (min_cutoff {args.min_cutoff:g}, beta {args.beta:g})", predictor, True)]
    runs += [("dlib, raw", dlib, False)] if dlib else []
    for label, model, smooth in runs:
        tracker = FaceTracker(model, args.min_cutoff, args.beta, smooth=smooth)
        points = []
        for index, frame in enumerate(clip):
            faces = tracker(frame, index / args.fps)
            if len(faces) != 1:
                print(f"error: {args.photo}: {len(faces)} faces tracked in frame {index}; give a photo of one face",
                      file=sys.stderr)
                return 2
            points.append(faces[0].points)
        points = np.stack(points)
        raw = points if raw is None else raw
        normaliser = float(np.linalg.norm(raw.mean(0)[36] - raw.mean(0)[45]))
        offset = 100 * float(np.linalg.norm(points - raw, axis=-1).mean()) / normaliser
        nme = "-"
        if truth is not None:
            moving = truth[None] + shifts[:, None, :]  # (frames, 68, 2)
            nme = f"{100 * float(np.linalg.norm(points - moving, axis=-1).mean()) / np.linalg.norm(truth[36] - truth[45]):.3f}"
        print(f"| {label} | {jitter(points, shifts, normaliser):.3f} | {offset:.3f} | {nme} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
