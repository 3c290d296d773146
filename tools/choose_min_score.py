"""Choose a model's face-score threshold on validation, and count what it drops on test.

    python tools/choose_min_score.py --data-root ../shared/datasets                 # the shipped model
    python tools/choose_min_score.py --model runs/w300_unet_js/<time>/best.pt --detector haar

A face's score is the mean of its points' heatmap peaks. Real faces (300w and ytf68 val, each
cropped as a detector that found it would, and 300w val photos turned by 45 and 180 degrees through
the detector) are scored against random non-face crops at random rolls of face-free images (the
parts of 300w and imm val photos away from the annotated face); the threshold is halfway between
the faces' 0.5th and the non-faces' 99th percentile. On test it then counts the real faces it
would drop (300w, ytf68, 300w turned) and the detector's false detections on face-free images
(300w, imm) before and after. `tools/predict.py --min-score` uses the printed value.
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a heatnet checkpoint, or a shipped model: accurate (the default) or fast")
    parser.add_argument("--detector", default="blazeface", help="the detector whose false detections are counted")
    parser.add_argument("--data-root", type=Path, help="default: $HEATNET_DATA")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args = parser.parse_args()

    from heatnet.datasets import load_split  # imported after parsing: --help answers at once
    from heatnet.detect import make_detector
    from heatnet.face_score import study_min_score
    from heatnet.predict import FacePredictor, model_path
    from heatnet.runtime import set_threads

    set_threads(args.threads)
    predictor = FacePredictor.from_checkpoint(model_path(args.model), "cpu", make_detector(args.detector), min_score=0.0)
    study = study_min_score(predictor, lambda name, split: load_split(name, split, args.data_root))
    print(f"{model_path(args.model)}, {args.detector} detector\n\n{study.table()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
