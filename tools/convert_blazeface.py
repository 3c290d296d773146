"""Convert MediaPipe's BlazeFace short-range face detector (Apache-2.0) from its .tflite file into
heatnet/assets/blazeface_short_range.pt, the layer list heatnet.blazeface runs in PyTorch.

    pip download mediapipe==0.10.21 --no-deps -d /tmp/mp && pip install tflite   # any venv
    python tools/convert_blazeface.py /tmp/mp/mediapipe-0.10.21-*.whl

Reads the graph with the `tflite` package (its flatbuffer schema; only this tool needs it) and
writes each operator as (kind, input names, output name, options) with its float16 weights, as
stored, in PyTorch's layouts. The weights' notice: heatnet/assets/BLAZEFACE_LICENSE.txt.
"""
import argparse
import io
import sys
import zipfile
from pathlib import Path

from heatnet.cli import fail, tool

ROOT = Path(__file__).resolve().parents[1]
MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="mediapipe's wheel (.whl) or face_detection_short_range.tflite")
    p.add_argument("--out", type=Path, default=ROOT / "heatnet" / "assets" / "blazeface_short_range.pt",
                   help="the converted layer list (default: heatnet's asset)")
    p.add_argument("--no-progress", action="store_true", help="accepted for uniformity; prints nothing anyway")
    return p.parse_args()


@tool
def main() -> int:
    args = parse_args()
    try:
        import tflite
    except ImportError:
        fail("the tflite package reads .tflite files: pip install tflite")
    if not args.source.is_file():
        fail(f"{args.source}: no such file")
    if args.source.suffix == ".whl":
        with zipfile.ZipFile(args.source) as wheel:
            if MEMBER not in wheel.namelist():
                fail(f"{args.source}: holds no {MEMBER}")
            data = wheel.read(MEMBER)
    else:
        data = args.source.read_bytes()

    import numpy as np
    import torch

    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    names = {value: key for key, value in vars(tflite.BuiltinOperator).items() if not key.startswith("_")}

    def array(index: int) -> np.ndarray:
        """A constant tensor's values, as stored (float16 weights, int32 shapes and paddings)."""
        tensor = graph.Tensors(index)
        dtype = {tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.FLOAT32: np.float32,
                 tflite.TensorType.INT32: np.int32}[tensor.Type()]
        raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
        return np.frombuffer(raw.tobytes(), dtype).reshape(tensor.ShapeAsNumpy())

    def options(op, cls):
        table = op.BuiltinOptions()
        parsed = cls()
        parsed.Init(table.Bytes, table.Pos)
        return parsed

    constants, layers = {}, []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        inputs, (output,) = [int(j) for j in op.InputsAsNumpy()], [int(j) for j in op.OutputsAsNumpy()]
        name = f"t{output}"
        if kind == "DEQUANTIZE":  # float16 weights, resolved into the layers that use them (kept float16: exact)
            constants[output] = array(inputs[0])
            continue
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = kind == "DEPTHWISE_CONV_2D"
            o = options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            if o.FusedActivationFunction() != 0 or o.StrideW() != o.StrideH():
                fail(f"{args.source}: operator {i} ({kind}) uses options this converter does not handle")
            weight = constants[inputs[1]]  # OHWI, or 1HWC when depthwise
            weight = weight.transpose(3, 0, 1, 2) if depthwise else weight.transpose(0, 3, 1, 2)  # -> OIHW / C1HW
            layers.append({"kind": "conv", "inputs": [f"t{inputs[0]}"], "output": name,
                           "weight": torch.from_numpy(weight.copy()),
                           "bias": torch.from_numpy(constants[inputs[2]].copy()),
                           "stride": o.StrideW(), "same": o.Padding() == tflite.Padding.SAME, "depthwise": depthwise})
        elif kind == "MAX_POOL_2D":
            o = options(op, tflite.Pool2DOptions)
            layers.append({"kind": "max_pool", "inputs": [f"t{inputs[0]}"], "output": name, "size": o.FilterWidth(),
                           "stride": o.StrideW()})
        elif kind == "PAD":  # NHWC paddings; BlazeFace pads channels only, for its residual adds
            pads = array(inputs[1])
            if pads[:3].any():
                fail(f"{args.source}: operator {i} pads more than channels")
            layers.append({"kind": "pad_channels", "inputs": [f"t{inputs[0]}"], "output": name, "after": int(pads[3, 1])})
        elif kind in ("RELU", "ADD", "CONCATENATION"):
            layers.append({"kind": kind.lower(), "inputs": [f"t{j}" for j in inputs], "output": name})
        elif kind == "RESHAPE":  # an NHWC map -> (1, anchors, values)
            layers.append({"kind": "to_anchors", "inputs": [f"t{inputs[0]}"], "output": name,
                           "values": int(graph.Tensors(output).ShapeAsNumpy()[-1])})
        else:
            fail(f"{args.source}: operator {i} is {kind}, which heatnet.blazeface does not run")
    outputs = {graph.Tensors(j).Name().decode(): f"t{j}" for j in graph.OutputsAsNumpy()}
    state = {"input": f"t{int(graph.InputsAsNumpy()[0])}", "layers": layers,
             "outputs": {"boxes": outputs["regressors"], "scores": outputs["classificators"]},
             "source": f"{args.source.name}:{MEMBER if args.source.suffix == '.whl' else ''}"}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    from heatnet.files import write_atomic

    write_atomic(args.out, buffer.getvalue())
    print(f"wrote {args.out}: {len(layers)} layers, {sum(l['weight'].numel() for l in layers if 'weight' in l)} weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
