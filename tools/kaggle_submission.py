"""Write a submission for Kaggle's facial-keypoints-detection competition: the model predicts the
15 points of every image of the competition's test.csv, and IdLookupTable.csv says which
coordinate each row of the submission (RowId, Location) asks for.

    python tools/kaggle_submission.py runs/kaggle_unet_kl/<time>/best.pt --test kaggle/test.csv \\
        --lookup kaggle/IdLookupTable.csv --out results/submission.csv

The test images come without points, so the face crop cannot come from the landmark box as in
training: the first pass takes the whole 96 x 96 image, then --refine passes (default 2) crop
again around the predicted points, as training cropped around the true ones.
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import fail, tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a heatnet checkpoint trained on --dataset=kaggle")
    parser.add_argument("--test", type=Path, required=True, help="the competition's test.csv (ImageId, Image)")
    parser.add_argument("--lookup", type=Path, required=True, help="the competition's IdLookupTable.csv")
    parser.add_argument("--out", type=Path, required=True, help="the submission CSV to write")
    parser.add_argument("--refine", type=int, default=2, help="passes re-cropped around the predicted points")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args = parser.parse_args()

    import numpy as np  # imported after parsing: --help answers at once

    from heatnet.crop import square_boxes
    from heatnet.samples import to_rgb_uint8
    from heatnet.files import check_writable
    from heatnet.formats import KAGGLE_SIZE, read_kaggle_test_csv, write_kaggle_submission
    from heatnet.predict import FacePredictor

    check_writable(args.out.parent)
    predictor = FacePredictor.from_checkpoint(args.checkpoint)
    if predictor.scheme.name != "kaggle15":
        fail(f"{args.checkpoint}: trained for {predictor.scheme.name}, not the 15 Kaggle points")
    images = read_kaggle_test_csv(args.test)
    points = {}
    # the whole 96 px image as the crop: Kaggle's images are face crops already
    whole = square_boxes(np.array([[(KAGGLE_SIZE - 1) / 2] * 2]), np.array([KAGGLE_SIZE / predictor.settings.box_scale]))
    for image_id, pixels in images:
        image = to_rgb_uint8(pixels, f"{args.test} ImageId {image_id}")
        points[image_id] = predictor.predict_crop_boxes(image, whole, refine=args.refine)[0][0]
    rows = write_kaggle_submission(args.out, args.lookup, points, predictor.scheme.point_names)
    print(f"wrote {args.out}: {rows} rows for {len(images)} test images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
