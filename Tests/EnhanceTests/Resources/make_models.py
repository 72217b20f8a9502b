"""Tiny untrained models following the enhancement model contract, for the pipeline tests.

NCHW float32, dynamic H/W, input 'input', output 'output'. Weights are random but seeded and
built near identity so outputs land mostly in [0, 1] (real models come from Models/enhance).
Run: /work/main/.venv/bin/python Tests/EnhanceTests/Resources/make_models.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")


def conv(name, x, w, b, out, pad):
    inits = [numpy_helper.from_array(w.astype(np.float32), name + "_w"), numpy_helper.from_array(b.astype(np.float32), name + "_b")]
    node = helper.make_node("Conv", [x, name + "_w", name + "_b"], [out], name=name, pads=[pad] * 4)
    return node, inits


def save(path, nodes, inits, cin, cout, doc):
    g = helper.make_graph(
        nodes, os.path.basename(path)[:-5], [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, cin, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, cout, None, None])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="swiftonnx-enhance-tests", doc_string=doc)
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def sr(scale, seed):
    """ESPCN-like: Conv 5x5 3->8, Relu, Conv 3x3 8->3*s*s, DepthToSpace (DCR)."""
    rng = np.random.default_rng(seed)
    hid = 8
    w1 = rng.normal(0, 0.05, (hid, 3, 5, 5))
    w1[:3] = 0
    for c in range(3):
        w1[c, c, 2, 2] = 1.0  # the first three hidden channels carry the input through the Relu
    b1 = np.concatenate([np.zeros(3), rng.normal(0, 0.05, hid - 3)])
    cout = 3 * scale * scale
    w2 = rng.normal(0, 0.03, (cout, hid, 3, 3))
    for k in range(scale * scale):
        for c in range(3):
            w2[k * 3 + c, c, 1, 1] += 1.0  # DCR: output channel (by*s+bx)*3 + c
    b2 = rng.normal(0, 0.02, cout)
    n1, i1 = conv("conv1", "input", w1, b1, "h1", 2)
    r = helper.make_node("Relu", ["h1"], ["h1r"], name="relu1")
    n2, i2 = conv("conv2", "h1r", w2, b2, "h2", 1)
    d = helper.make_node("DepthToSpace", ["h2"], ["output"], name="d2s", blocksize=scale, mode="DCR")
    save(os.path.join(OUT, f"sr_x{scale}.onnx"), [n1, r, n2, d], i1 + i2, 3, 3, f"test x{scale} super-resolution (untrained)")


def restore(name, seed):
    """Residual: input + Conv 3x3 8->3 (Relu (Conv 3x3 3->8 (AvgPool 2 stride 2 -> Resize x2)))."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    nodes.append(helper.make_node("AveragePool", ["input"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
    n, i = conv("conv1", "p", rng.normal(0, 0.2, (8, 3, 3, 3)), rng.normal(0, 0.05, 8), "h1", 1); nodes.append(n); inits += i
    nodes.append(helper.make_node("Relu", ["h1"], ["h1r"], name="relu1"))
    n, i = conv("conv2", "h1r", rng.normal(0, 0.05, (3, 8, 3, 3)), rng.normal(0, 0.01, 3), "h2", 1); nodes.append(n); inits += i
    inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
    nodes.append(helper.make_node("Resize", ["h2", "", "scales"], ["up"], name="up", mode="nearest"))
    nodes.append(helper.make_node("Add", ["input", "up"], ["output"], name="residual"))
    save(os.path.join(OUT, f"{name}.onnx"), nodes, inits, 3, 3, f"test {name} model (untrained, needs even sizes)")


def colorize(seed):
    """Conv 3x3 1->8, Tanh, Conv 3x3 8->2: small ab/128 values."""
    rng = np.random.default_rng(seed)
    n1, i1 = conv("conv1", "input", rng.normal(0, 0.5, (8, 1, 3, 3)), rng.normal(0, 0.3, 8), "h1", 1)
    t = helper.make_node("Tanh", ["h1"], ["h1t"], name="tanh1")
    n2, i2 = conv("conv2", "h1t", rng.normal(0, 0.1, (2, 8, 3, 3)), rng.normal(0, 0.05, 2), "output", 1)
    save(os.path.join(OUT, "colorize.onnx"), [n1, t, n2], i1 + i2, 1, 2, "test colorization model (untrained)")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    sr(2, 1)
    sr(4, 2)
    restore("restore", 3)
    restore("deblur", 4)
    colorize(5)
    print("wrote", sorted(os.listdir(OUT)))
