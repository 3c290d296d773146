"""Export a trained model: ONNX or TorchScript (crops in, points and scores out, the decoder
inside the graph), or a slim float16 heatnet checkpoint; the format follows --out's suffix.

    python tools/export.py --out heatnet_300w.onnx                          # the shipped model
    python tools/export.py runs/w300_unet_js/<time>/best.pt --out model.onnx
    python tools/export.py runs/w300_unet_js/<time>/best.pt --out model.torchscript
    python tools/export.py runs/w300_unet_js/<time>/best.pt --out heatnet/assets/heatnet_300w_68.pt   # float16

Graph input "images" (B, C, S, S) float32 in [0, 1]: face crops of the model's input size made as
heatnet.predict.FacePredictor.crops makes them; outputs "points" (B, K, 2) in crop pixels and
"scores" (B, K). ONNX needs `pip install -e ".[onnx]"`; tests/test_predict.py checks that
onnxruntime's points match PyTorch's. The output folder is made when missing.
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import fail, tool

FORMATS = {".onnx": "ONNX", ".torchscript": "TorchScript", ".ts": "TorchScript", ".pt": "float16 checkpoint"}


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="a heatnet checkpoint, a run folder (its best.pt) or a shipped "
                        "model: accurate (the default) or fast")
    parser.add_argument("--out", type=Path, required=True, help=f"output file: {', '.join(FORMATS)}")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args = parser.parse_args()
    if args.out.suffix not in FORMATS:
        fail(f"--out {args.out}: the suffix chooses the format: {', '.join(FORMATS)}")

    from heatnet.checkpoint import load_checkpoint  # imported after parsing: --help answers at once
    from heatnet.evaluation import load_trained
    from heatnet.export import export_onnx, export_torchscript, slim_checkpoint
    from heatnet.files import check_writable
    from heatnet.shipped import resolve_model

    checkpoint = resolve_model(args.checkpoint)
    check_writable(args.out.parent)
    method, settings, state = load_trained(checkpoint)
    if args.out.suffix == ".onnx":
        try:
            import onnx  # noqa: F401  (torch.onnx.export needs it)
        except ImportError:
            fail('ONNX export needs the onnx package: pip install -e ".[onnx]"')
        export_onnx(method, settings, args.out)
    elif args.out.suffix == ".pt":
        slim_checkpoint(load_checkpoint(checkpoint), args.out)
    else:
        export_torchscript(method, settings, args.out)
    print(f"wrote {args.out} ({FORMATS[args.out.suffix]}, {args.out.stat().st_size / 1e6:.1f} MB) from {checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
