"""Expected outputs of the com.microsoft QOperator ops for QuantizationContribTests.swift, computed
with onnxruntime (CPU provider, graph optimizations off) on one-node models built here.

Rewrites the block between `// BEGIN GENERATED` and `// END GENERATED` in
Tests/SwiftONNXTests/QuantizationContribTests.swift with one `check(...)` call per case.
Run: .venv/bin/python Tests/SwiftONNXTests/Resources/make_quantization_contrib.py
"""
import os
import re

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
TEST = os.path.join(HERE, "..", "QuantizationContribTests.swift")
ELEM = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8, np.float32: TensorProto.FLOAT, np.int32: TensorProto.INT32}


def ort_run(op, inputs, attrs, out_type):
    """Runs one com.microsoft node; `inputs` is a list of arrays (None: omitted), all graph inputs."""
    names, vis, feeds = [], [], {}
    for i, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        a = np.asarray(a)
        n = f"in{i}"
        names.append(n)
        vis.append(helper.make_tensor_value_info(n, ELEM[a.dtype.type], a.shape))
        feeds[n] = a
    node = helper.make_node(op, names, ["y"], domain="com.microsoft", **attrs)
    g = helper.make_graph([node], "g", vis, [helper.make_tensor_value_info("y", out_type, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


def swift_tensor(a):
    if a is None:
        return "nil"
    a = np.asarray(a)
    kind = {np.uint8: "u8", np.int8: "i8", np.float32: "f32", np.int32: "i32"}[a.dtype.type]
    if a.dtype == np.float32:
        vals = ", ".join(repr(np.float32(v)).replace("np.float32(", "").rstrip(")") for v in a.ravel())
    else:
        vals = ", ".join(str(int(v)) for v in a.ravel())
    return f"{kind}({list(a.shape)}, [{vals}])"


def swift_attrs(attrs):
    if not attrs:
        return "[:]"
    items = []
    for k, v in attrs.items():
        if isinstance(v, float):
            items.append(f'"{k}": .float({repr(np.float32(v)).replace("np.float32(", "").rstrip(")")})')
        elif isinstance(v, int):
            items.append(f'"{k}": .int({v})')
        else:
            items.append(f'"{k}": .ints({list(v)})')
    return "[" + ", ".join(items) + "]"


f32 = np.float32
cases = []


def case(title, op, inputs, attrs=None, out_type=None):
    attrs = attrs or {}
    if out_type is None:
        out_type = ELEM[next(np.asarray(a).dtype.type for a in inputs if a is not None and np.asarray(a).dtype in (np.uint8, np.int8))]
    y = ort_run(op, inputs, attrs, out_type)
    cases.append(f"        // {title}\n        try check(\"{op}\", [{', '.join(swift_tensor(a) for a in inputs)}],\n"
                 f"                  {swift_attrs(attrs)}, expect: {swift_tensor(y)})")


def s(v):
    return np.array(v, dtype=f32)


rng = np.random.default_rng(20261205)
u8 = lambda shape: rng.integers(0, 256, shape).astype(np.uint8)
i8 = lambda shape: rng.integers(-128, 128, shape).astype(np.int8)

# QLinearAdd / QLinearMul
case("Add uint8, same shape", "QLinearAdd",
     [u8([2, 3]), s(0.05), np.uint8(128), u8([2, 3]), s(0.03), np.uint8(100), s(0.07), np.uint8(120)])
case("Add int8, B broadcast along rows ([2, 3, 4] + [3, 1])", "QLinearAdd",
     [i8([2, 3, 4]), s(0.02), np.int8(-5), i8([3, 1]), s(0.04), np.int8(7), s(0.05), np.int8(3)])
case("Add uint8, scalar first operand broadcast ([1] + [2, 5]), zero points 0", "QLinearAdd",
     [u8([1]), s(0.1), np.uint8(0), u8([2, 5]), s(0.02), np.uint8(0), s(0.06), np.uint8(0)])
case("Add int8 saturating (small C_scale)", "QLinearAdd",
     [np.array([-128, -100, -1, 0, 1, 100, 127, 50], np.int8), s(0.1), np.int8(0),
      np.array([-128, -50, 0, 0, 3, 100, 127, -50], np.int8), s(0.1), np.int8(0), s(0.01), np.int8(0)])
case("Mul uint8, both broadcast ([2, 1, 4] * [3, 1])", "QLinearMul",
     [u8([2, 1, 4]), s(0.02), np.uint8(120), u8([3, 1]), s(0.03), np.uint8(130), s(0.01), np.uint8(128)])
case("Mul int8 saturating, same shape", "QLinearMul",
     [np.array([-128, -64, -1, 0, 1, 64, 127, 90], np.int8), s(0.05), np.int8(-2),
      np.array([127, 100, -128, 5, 2, -100, 127, 90], np.int8), s(0.05), np.int8(1), s(0.02), np.int8(-10)])
# QLinearSigmoid / QLinearLeakyRelu
case("Sigmoid uint8", "QLinearSigmoid", [u8([3, 5]), s(0.05), np.uint8(128), s(1 / 256), np.uint8(0)])
case("Sigmoid int8, output zero point -128", "QLinearSigmoid", [i8([2, 6]), s(0.04), np.int8(3), s(1 / 256), np.int8(-128)])
case("LeakyRelu uint8, alpha 0.1", "QLinearLeakyRelu", [u8([2, 6]), s(0.05), np.uint8(128), s(0.04), np.uint8(20)], {"alpha": 0.1})
case("LeakyRelu int8, default alpha, saturating", "QLinearLeakyRelu", [i8([12]), s(0.1), np.int8(0), s(0.02), np.int8(-100)])
# QLinearSoftmax
case("Softmax uint8, last axis, opset 13", "QLinearSoftmax",
     [u8([2, 5]), s(0.1), np.uint8(128), s(1 / 256), np.uint8(0)], {"axis": -1, "opset": 13})
case("Softmax int8, axis 1 of [2, 3, 2], opset 13", "QLinearSoftmax",
     [i8([2, 3, 2]), s(0.08), np.int8(0), s(1 / 256), np.int8(-128)], {"axis": 1, "opset": 13})
case("Softmax uint8, opset 12 (coerced to 2-D at axis 1)", "QLinearSoftmax",
     [u8([2, 2, 3]), s(0.05), np.uint8(100), s(1 / 256), np.uint8(0)], {"axis": 1, "opset": 12})
# QLinearGlobalAveragePool
case("GlobalAveragePool uint8 NCHW", "QLinearGlobalAveragePool",
     [u8([2, 3, 2, 3]), s(0.05), np.uint8(128), s(0.03), np.uint8(120)], {"channels_last": 0})
case("GlobalAveragePool int8 channels_last", "QLinearGlobalAveragePool",
     [i8([2, 2, 3, 4]), s(0.05), np.int8(-3), s(0.01), np.int8(5)], {"channels_last": 1})
case("GlobalAveragePool uint8, 2 elements per channel, same scale (halves: ties, odd y_zero_point)", "QLinearGlobalAveragePool",
     [u8([1, 8, 2, 1]), s(0.05), np.uint8(100), s(0.05), np.uint8(101)], {"channels_last": 0})
# QLinearAveragePool
case("AveragePool uint8 NCHW, 2x2 stride 2, end pads, pads not counted", "QLinearAveragePool",
     [u8([1, 2, 3, 3]), s(0.05), np.uint8(128), s(0.04), np.uint8(110)],
     {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1]})
case("AveragePool int8 channels_last, 2x2 stride 1, pads counted", "QLinearAveragePool",
     [i8([1, 3, 3, 2]), s(0.05), np.int8(4), s(0.05), np.int8(-4)],
     {"kernel_shape": [2, 2], "pads": [1, 1, 0, 0], "count_include_pad": 1, "channels_last": 1})
case("AveragePool uint8, ceil_mode window over the edge, pads counted (ORT divides by the whole kernel)", "QLinearAveragePool",
     [u8([1, 1, 5, 5]), s(0.05), np.uint8(128), s(0.05), np.uint8(128)],
     {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "count_include_pad": 1})
case("AveragePool int8, 1-D, same scale in and out (halves: ties)", "QLinearAveragePool",
     [i8([1, 2, 9]), s(0.05), np.int8(3), s(0.05), np.int8(3)], {"kernel_shape": [2], "strides": [1]})
# QLinearConcat
case("Concat uint8 axis 1, second input quantized like Y (copied)", "QLinearConcat",
     [s(0.05), np.uint8(128), u8([2, 2, 2]), s(0.1), np.uint8(100), u8([2, 1, 2]), s(0.05), np.uint8(128),
      u8([2, 3, 2]), s(0.02), np.uint8(0)], {"axis": 1})
case("Concat int8 axis -1, saturating requantization", "QLinearConcat",
     [s(0.01), np.int8(0), i8([2, 3]), s(0.05), np.int8(10), i8([2, 2]), s(0.005), np.int8(-3)], {"axis": -1})
case("Concat int8, input scale half of Y's (ties), odd Y zero point", "QLinearConcat",
     [s(0.2), np.int8(-7), i8([1, 10]), s(0.1), np.int8(4)], {"axis": 0})
# QGemm
m, k, n = 3, 5, 4
case("QGemm u8u8, per-column b_scale and b_zero_point, int32 C, quantized output", "QGemm",
     [u8([m, k]), s(0.02), np.uint8(120), u8([k, n]), rng.uniform(0.01, 0.03, n).astype(f32),
      rng.integers(100, 150, n).astype(np.uint8), rng.integers(-500, 500, n).astype(np.int32), s(0.1), np.uint8(128)])
case("QGemm s8s8, transA and transB, alpha 0.5, float output", "QGemm",
     [i8([k, m]), s(0.02), np.int8(3), i8([n, k]), s(0.01), np.int8(0), None],
     {"alpha": 0.5, "transA": 1, "transB": 1}, out_type=TensorProto.FLOAT)

case("QGemm u8u8, multiplier 0.5 (ties), odd y_zero_point", "QGemm",
     [u8([2, 1]), s(0.5), np.uint8(128), rng.integers(0, 4, (1, 6)).astype(np.uint8), s(1), np.uint8(0), None, s(1), np.uint8(101)])

# MatMulNBits (weight-only; float output). B [N, blocks, block_size * bits / 8], low bits first along K.
def nbits_case(title, a_shape, k, n, bits, block, zeros, bias):
    blocks = (k + block - 1) // block
    b = rng.integers(0, 256, (n, blocks, block * bits // 8)).astype(np.uint8)
    scales = rng.uniform(0.01, 0.05, n * blocks).astype(f32)
    zp = None
    if zeros == "packed":
        zp = rng.integers(0, 256, n * ((blocks * bits + 7) // 8)).astype(np.uint8)
    elif zeros == "float":
        zp = rng.uniform(0, 2 ** bits - 1, n * blocks).astype(f32)
    inputs = [rng.standard_normal(a_shape).astype(f32), b, scales, zp, None, rng.standard_normal(n).astype(f32) if bias else None]
    while inputs[-1] is None:
        inputs.pop()
    case(title, "MatMulNBits", inputs, {"K": k, "N": n, "bits": bits, "block_size": block}, out_type=TensorProto.FLOAT)


nbits_case("MatMulNBits 4-bit, default zero point, K a multiple of the block", [3, 32], 32, 5, 4, 16, None, False)
nbits_case("MatMulNBits 4-bit, packed zero points (odd block count), K not a multiple of the block, bias, batch dims", [2, 3, 40], 40, 6, 4, 16, "packed", True)
nbits_case("MatMulNBits 8-bit, packed zero points, block 32", [2, 70], 70, 3, 8, 32, "packed", False)
nbits_case("MatMulNBits 2-bit, float zero points, bias", [1, 2, 48], 48, 4, 2, 16, "float", True)

text = open(TEST).read()
block = "// BEGIN GENERATED by Resources/make_quantization_contrib.py\n" + "\n".join(cases) + "\n        // END GENERATED"
new = re.sub(r"// BEGIN GENERATED.*?// END GENERATED", lambda _: block, text, flags=re.S)
open(TEST, "w").write(new)
print(f"{len(cases)} cases written to {os.path.normpath(TEST)} (onnxruntime {ort.__version__})")
