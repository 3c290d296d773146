"""Convert MediaPipe's BlazeFace face detectors (Apache-2.0), short range and full range, from
their .tflite files into heatnet/assets/blazeface_{short,full}_range.pt, the layer lists
heatnet.blazeface runs in PyTorch.

    pip download mediapipe==0.10.21 --no-deps -d /tmp/mp && pip install tflite   # any venv
    python tools/convert_blazeface.py /tmp/mp/mediapipe-0.10.21-*.whl                   # short range
    python tools/convert_blazeface.py /tmp/mp/mediapipe-0.10.21-*.whl --range full      # full range

Reads the graph with the `tflite` package (its flatbuffer schema; only this conversion needs it)
into a layer list (heatnet.tflite_graph) and writes it. The weights' notice:
heatnet/assets/BLAZEFACE_LICENSE.txt.
"""
import argparse
import io
import sys
import zipfile
from pathlib import Path

from heatnet.cli import fail, tool

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = {"short": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
           "full": "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="mediapipe's wheel (.whl) or the model's .tflite file")
    p.add_argument("--range", choices=sorted(MEMBERS), default="short", help="which detector (default: short)")
    p.add_argument("--out", type=Path, help="the converted layer list (default: heatnet's asset for the range)")
    p.add_argument("--no-progress", action="store_true", help="accepted for uniformity; prints nothing anyway")
    return p.parse_args()


@tool
def main() -> int:
    args = parse_args()
    import importlib.util

    if importlib.util.find_spec("tflite") is None:
        fail("the tflite package reads .tflite files: pip install tflite")
    if not args.source.is_file():
        fail(f"{args.source}: no such file")
    member = MEMBERS[args.range]
    out = args.out or ROOT / "heatnet" / "assets" / f"blazeface_{args.range}_range.pt"
    if args.source.suffix == ".whl":
        with zipfile.ZipFile(args.source) as wheel:
            if member not in wheel.namelist():
                fail(f"{args.source}: holds no {member}")
            data = wheel.read(member)
    else:
        data = args.source.read_bytes()

    import torch

    from heatnet.files import write_atomic
    from heatnet.tflite_graph import UnsupportedGraph, tflite_layers

    try:
        state = tflite_layers(data, f"{args.source.name}:{member if args.source.suffix == '.whl' else ''}")
    except UnsupportedGraph as e:
        fail(str(e))
    layers = state["layers"]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(out, buffer.getvalue())
    print(f"wrote {out}: {len(layers)} layers, {sum(l['weight'].numel() for l in layers if 'weight' in l)} weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
