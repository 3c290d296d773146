"""MediaPipe's .tflite face detectors read into the layer lists heatnet.blazeface runs
(tools/convert_blazeface.py writes them as heatnet/assets/blazeface_*_range.pt).

    state = tflite_layers(data, "face_detection_short_range.tflite")   # needs `pip install tflite`

Each operator becomes (kind, input names, output name, options) with its float16 weights, as
stored, in PyTorch's layouts; sparse weights (the full-range file's) are made dense; the weights'
DEQUANTIZE and DENSIFY operators are resolved into the layers that use them. An operator or an
option LayerList does not run raises UnsupportedGraph naming it.
"""
from __future__ import annotations

import numpy as np

from heatnet.errors import HeatnetError


class UnsupportedGraph(HeatnetError, ValueError):
    """A .tflite graph with an operator or option heatnet.blazeface.LayerList does not run."""


def tflite_layers(data: bytes, source: str) -> dict:
    """The layer list of a BlazeFace .tflite file's bytes: {"input", "layers", "input_size",
    "outputs": {"boxes", "scores"}, "source"}."""
    import tflite
    import torch

    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    names = {value: key for key, value in vars(tflite.BuiltinOperator).items() if not key.startswith("_")}

    def array(index: int) -> np.ndarray:
        """A constant tensor's values, as stored (float16 weights, int32 shapes and paddings), made
        dense when it is stored sparse."""
        tensor = graph.Tensors(index)
        dtype = {tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.FLOAT32: np.float32,
                 tflite.TensorType.INT32: np.int32}[tensor.Type()]
        values = np.frombuffer(model.Buffers(tensor.Buffer()).DataAsNumpy().tobytes(), dtype)
        if tensor.Sparsity() is None:
            return values.reshape(tensor.ShapeAsNumpy())
        return dense(tensor.Sparsity(), tensor.ShapeAsNumpy(), values)

    def index_vector(kind: int, table) -> np.ndarray:
        vector = {tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
                  tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
                  tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector}[kind]()
        vector.Init(table.Bytes, table.Pos)
        return vector.ValuesAsNumpy().astype(np.int64)

    def dense(sparsity, shape: np.ndarray, values: np.ndarray) -> np.ndarray:
        """TensorFlow Lite's sparse layout (each dimension dense, or compressed rows: segments and
        indices) walked in its traversal order, the values filled in where they belong."""
        order = sparsity.TraversalOrderAsNumpy()
        if sparsity.BlockMapLength() or list(order) != list(range(len(shape))):
            raise UnsupportedGraph(f"{source}: a sparse tensor with blocks or a reordered traversal, which this converter does not read")
        dims = []
        for d in range(sparsity.DimMetadataLength()):
            meta = sparsity.DimMetadata(d)
            if meta.Format() == tflite.DimensionType.DENSE:
                dims.append((meta.DenseSize(), None, None))
            else:
                dims.append((None, index_vector(meta.ArraySegmentsType(), meta.ArraySegments()),
                             index_vector(meta.ArrayIndicesType(), meta.ArrayIndices())))
        out, stored = np.zeros(shape, values.dtype), iter(values)

        def walk(level: int, position: int, at: tuple) -> None:
            if level == len(dims):
                out[at] = next(stored)
                return
            size, segments, indices = dims[level]
            if size is not None:
                for i in range(size):
                    walk(level + 1, position * size + i, at + (i,))
            else:
                for k in range(segments[position], segments[position + 1]):
                    walk(level + 1, k, at + (int(indices[k]),))

        walk(0, 0, ())
        return out

    def options(op, cls):
        table = op.BuiltinOptions()
        parsed = cls()
        parsed.Init(table.Bytes, table.Pos)
        return parsed

    def activation(o, i: int, kind: str) -> dict:
        """A fused activation: none, or ReLU ({"relu": True})."""
        fused = o.FusedActivationFunction()
        if fused not in (tflite.ActivationFunctionType.NONE, tflite.ActivationFunctionType.RELU):
            raise UnsupportedGraph(f"{source}: operator {i} ({kind}) fuses an activation this converter does not handle")
        return {"relu": True} if fused == tflite.ActivationFunctionType.RELU else {}

    constants, layers = {}, []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        inputs, (output,) = [int(j) for j in op.InputsAsNumpy()], [int(j) for j in op.OutputsAsNumpy()]
        name = f"t{output}"
        if kind in ("DEQUANTIZE", "DENSIFY"):  # float16 weights, resolved into the layers that use them (exact)
            constants[output] = constants[inputs[0]] if inputs[0] in constants else array(inputs[0])
            continue
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = kind == "DEPTHWISE_CONV_2D"
            o = options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            if o.StrideW() != o.StrideH() or o.DilationWFactor() != 1 or o.DilationHFactor() != 1:
                raise UnsupportedGraph(f"{source}: operator {i} ({kind}) uses options this converter does not handle")
            weight = constants[inputs[1]]  # OHWI, or 1HWC when depthwise
            weight = weight.transpose(3, 0, 1, 2) if depthwise else weight.transpose(0, 3, 1, 2)  # -> OIHW / C1HW
            layers.append({"kind": "conv", "inputs": [f"t{inputs[0]}"], "output": name,
                           "weight": torch.from_numpy(weight.copy()),
                           "bias": torch.from_numpy(constants[inputs[2]].copy()),
                           "stride": o.StrideW(), "same": o.Padding() == tflite.Padding.SAME, "depthwise": depthwise,
                           **activation(o, i, kind)})
        elif kind == "MAX_POOL_2D":
            o = options(op, tflite.Pool2DOptions)
            layers.append({"kind": "max_pool", "inputs": [f"t{inputs[0]}"], "output": name, "size": o.FilterWidth(),
                           "stride": o.StrideW()})
        elif kind == "PAD":  # NHWC paddings: channels (short range's residual adds), or rows and columns
            pads = array(inputs[1])
            if pads[0].any():
                raise UnsupportedGraph(f"{source}: operator {i} pads the batch")
            if pads[1:3].any():
                layers.append({"kind": "pad", "inputs": [f"t{inputs[0]}"], "output": name,
                               "pads": [int(v) for v in (pads[2, 0], pads[2, 1], pads[1, 0], pads[1, 1], 0, pads[3, 1])]})
            else:
                layers.append({"kind": "pad_channels", "inputs": [f"t{inputs[0]}"], "output": name, "after": int(pads[3, 1])})
        elif kind in ("RELU", "CONCATENATION"):
            layers.append({"kind": kind.lower(), "inputs": [f"t{j}" for j in inputs], "output": name})
        elif kind == "ADD":
            layers.append({"kind": "add", "inputs": [f"t{j}" for j in inputs], "output": name,
                           **activation(options(op, tflite.AddOptions), i, kind)})
        elif kind == "RESIZE_BILINEAR":  # half-pixel centres: PyTorch's align_corners=False
            o = options(op, tflite.ResizeBilinearOptions)
            if o.AlignCorners() or not o.HalfPixelCenters():
                raise UnsupportedGraph(f"{source}: operator {i} resizes with corners aligned, which this converter does not handle")
            layers.append({"kind": "resize_bilinear", "inputs": [f"t{inputs[0]}"], "output": name,
                           "size": [int(v) for v in graph.Tensors(output).ShapeAsNumpy()[1:3]]})
        elif kind == "DEPTH_TO_SPACE":
            layers.append({"kind": "depth_to_space", "inputs": [f"t{inputs[0]}"], "output": name,
                           "block": options(op, tflite.DepthToSpaceOptions).BlockSize()})
        elif kind == "RESHAPE":  # an NHWC map -> (1, anchors, values)
            layers.append({"kind": "to_anchors", "inputs": [f"t{inputs[0]}"], "output": name,
                           "values": int(graph.Tensors(output).ShapeAsNumpy()[-1])})
        else:
            raise UnsupportedGraph(f"{source}: operator {i} is {kind}, which heatnet.blazeface does not run")
    # the boxes and keypoints (16 values per anchor) and the scores (1), whatever the graph names them
    outputs = {int(graph.Tensors(j).ShapeAsNumpy()[-1]): f"t{j}" for j in graph.OutputsAsNumpy()}
    state = {"input": f"t{int(graph.InputsAsNumpy()[0])}", "layers": layers,
             "input_size": int(graph.Tensors(int(graph.InputsAsNumpy()[0])).ShapeAsNumpy()[1]),
             "outputs": {"boxes": outputs[16], "scores": outputs[1]},
             "source": source}
    return state
