"""Landmark jitter on video, measured: a 100-frame clip made from a still photo (a known smooth
sub-pixel drift, fresh sensor noise each frame), tracked with and without One-Euro smoothing;
jitter is the mean frame-to-frame motion of the points once the known drift is taken out, in %
of the inter-ocular distance (the outer eye corners, points 36 and 45 of the 68). Where the true
points are known (a 300-W .pts beside the photo, or a dataset's annotations) the NME against
the drifting truth is given too, so the accuracy smoothing costs (its lag) is seen beside the
jitter it removes.

    python tools/jitter.py ../shared/datasets/300w/lfpw/testset/image_0001.jpg --dlib   # + dlib's predictor
    python tools/jitter.py --dataset ytf68 --split test --count 20 --data-root ../shared/datasets  # mean over frames
    python tools/jitter.py photo.jpg --model runs/w300_unet_js/<time>/best.pt --min-cutoff 0.5 --beta 0.5
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import fail, tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path, nargs="?", help="a photo with one face (or --dataset)")
    parser.add_argument("--dataset", help="instead of a photo: the first --count images of a 68-point split")
    parser.add_argument("--split", default="test", help="with --dataset: the split")
    parser.add_argument("--count", type=int, default=20, help="with --dataset: images measured")
    parser.add_argument("--data-root", help="default: $HEATNET_DATA")
    parser.add_argument("--model", help="a heatnet checkpoint, or a shipped model: accurate (the default) or fast")
    parser.add_argument("--frames", type=int, default=100, help="frames of the clip made from each photo")
    parser.add_argument("--max-shift", type=float, default=2.0, help="largest drift over the clip, pixels per axis")
    parser.add_argument("--noise", type=float, default=4.0, help="sensor noise std, grey levels")
    parser.add_argument("--min-cutoff", type=float, default=1.0, help="One-Euro cutoff of a still face, Hz")
    parser.add_argument("--beta", type=float, default=0.5, help="how fast the One-Euro cutoff rises with motion")
    parser.add_argument("--fps", type=float, default=25.0, help="the clip's frame rate, for the filter")
    parser.add_argument("--dlib", action="store_true", help="also dlib's 68-point predictor, raw (the [dlib] extra)")
    parser.add_argument("--runtime", choices=["auto", "pytorch", "onnxruntime"], default="auto",
                        help="what runs the network (auto: onnxruntime on a CPU when installed)")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args = parser.parse_args()
    if (args.photo is None) == (args.dataset is None):
        fail("give a photo or --dataset (not both)")

    import numpy as np  # imported after parsing: --help answers at once

    from heatnet.samples import read_image
    from heatnet.datasets import load_split
    from heatnet.formats import read_pts
    from heatnet.predict import DlibPredictor, FacePredictor, Runtime, model_path
    from heatnet.video import Clip, measure_jitter

    from heatnet.runtime import set_threads

    set_threads(args.threads)
    predictor = FacePredictor.from_checkpoint(model_path(args.model))
    try:
        runtime = predictor.use_runtime(Runtime(args.runtime), args.threads)
    except ImportError:
        fail('--runtime=onnxruntime needs onnx and onnxruntime: pip install -e ".[onnx]"')
    predictors = [("raw", predictor, False),
                  (f"One-Euro (min_cutoff {args.min_cutoff:g}, beta {args.beta:g})", predictor, True)]
    predictors += [("dlib, raw", DlibPredictor(), False)] if args.dlib else []
    if args.photo:
        pts = args.photo.with_suffix(".pts")
        photos = [(str(args.photo), read_image(args.photo, upright=True), read_pts(pts) if pts.is_file() else None)]
    else:
        source = load_split(args.dataset, args.split, Path(args.data_root) if args.data_root else None)
        photos = ((source.name_of(i), source[i].image, source[i].points) for i in range(min(args.count, len(source))))
    results, skipped = [], []
    for name, image, truth in photos:
        rows = measure_jitter(image, truth, predictors, Clip(args.frames, args.max_shift, args.noise, args.fps),
                              args.min_cutoff, args.beta)
        if rows is None:
            skipped.append(name)
        else:
            results.append(rows)
    if not results:
        fail(f"no photo held exactly one tracked face in every frame ({', '.join(skipped[:3])})")
    what = args.photo or f"{args.dataset}/{args.split}: mean over {len(results)} image(s)"
    print(f"{what}: {args.frames} frames at {args.fps:g} fps, drift up to {args.max_shift:g} px, noise std "
          f"{args.noise:g}" + (f"; {len(skipped)} skipped (not one face tracked in every frame)" if skipped else "")
          + "\n")
    print(f"{model_path(args.model).name}, {runtime.value}, {args.threads} "
          f"thread(s)\n")
    print("| points | jitter % of inter-ocular | mean offset from heatnet raw % | NME % vs truth | frames/s |\n"
          "|---|---|---|---|---|")
    for i, (label, *_) in enumerate(results[0]):
        jitter, offset, nme, fps = (float(np.mean([rows[i][k] for rows in results])) for k in (1, 2, 3, 4))
        print(f"| {label} | {jitter:.3f} | {offset:.3f} | {'-' if np.isnan(nme) else f'{nme:.3f}'} | {fps:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
