#!/usr/bin/env python3
"""Writes the small ONNX models the unit tests load (committed; rerun only to change them)."""
import os
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


def save(model, name, **kw):
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, name), **kw)


# Y = Relu(X + B) with a symbolic batch dim.
b = numpy_helper.from_array(np.array([0.5, -1.0, 2.0, -3.0], np.float32), "B")
g = helper.make_graph(
    [helper.make_node("Add", ["X", "B"], ["S"], name="add"), helper.make_node("Relu", ["S"], ["Y"], name="relu")],
    "add_relu",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4])],
    [b],
)
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="swiftonnx-tests"), "add_relu.onnx")

# An op nobody implements, in a custom domain.
g = helper.make_graph(
    [helper.make_node("FrobnicateTensor", ["X"], ["Y"], name="mystery", domain="com.example")],
    "unknown_op",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])],
)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 3)])
onnx.save(m, os.path.join(HERE, "unknown_op.onnx"))

# Conv -> BatchNormalization -> Relu -> Conv -> Clip(0,6): exercises BN folding and activation fusion.
def conv_w(co, ci, k):
    return (rng.standard_normal((co, ci, k, k)) * 0.3).astype(np.float32)
inits = [
    numpy_helper.from_array(conv_w(8, 3, 3), "W1"),
    numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "B1"),
    numpy_helper.from_array((rng.random(8) + 0.5).astype(np.float32), "gamma"),
    numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "beta"),
    numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "mean"),
    numpy_helper.from_array((rng.random(8) + 0.5).astype(np.float32), "var"),
    numpy_helper.from_array(conv_w(4, 8, 1), "W2"),
    numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
    numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
]
nodes = [
    helper.make_node("Conv", ["X", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
    helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["bn"], epsilon=1e-5, name="bn1"),
    helper.make_node("Relu", ["bn"], ["r"], name="relu1"),
    helper.make_node("Identity", ["r"], ["r2"], name="id"),
    helper.make_node("Conv", ["r2", "W2"], ["c2"], name="conv2"),
    helper.make_node("Clip", ["c2", "lo", "hi"], ["Y"], name="clip"),
]
g = helper.make_graph(nodes, "conv_bn_relu",
                      [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 10, 12])],
                      [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4, 10, 12])], inits)
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "conv_bn_relu.onnx")

# Weights in an external file next to the model.
ext_dir = os.path.join(HERE, "external")
os.makedirs(ext_dir, exist_ok=True)
w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "W")
g = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "external",
                      [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])],
                      [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])], [w])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.save(m, os.path.join(ext_dir, "external.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
          location="external.weights", size_threshold=0)
# Same model, but its external data location tries to leave the model's folder.
m2 = onnx.load(os.path.join(ext_dir, "external.onnx"), load_external_data=False)
for e in m2.graph.initializer[0].external_data:
    if e.key == "location":
        e.value = "../../escape.weights"
onnx.save(m2, os.path.join(ext_dir, "escaping.onnx"))
print("wrote test models to", HERE)

# Reference input/output of conv_bn_relu from ONNX Runtime (optimizations off), for the pass tests.
import onnxruntime as ort
x = rng.standard_normal((1, 3, 10, 12)).astype(np.float32)
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
y = ort.InferenceSession(os.path.join(HERE, "conv_bn_relu.onnx"), so, providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
with open(os.path.join(HERE, "conv_bn_relu_input.pb"), "wb") as f:
    f.write(numpy_helper.from_array(x, "X").SerializeToString())
with open(os.path.join(HERE, "conv_bn_relu_output.pb"), "wb") as f:
    f.write(numpy_helper.from_array(y, "Y").SerializeToString())

# Residual block: Y = Relu(Conv(X) + X), with a symbolic batch: exercises Conv+Add(+Relu) fusion.
w = numpy_helper.from_array(conv_w(4, 4, 3), "Wr")
g = helper.make_graph(
    [helper.make_node("Conv", ["X", "Wr"], ["c"], pads=[1, 1, 1, 1], name="conv"),
     helper.make_node("Add", ["c", "X"], ["s"], name="residual"),
     helper.make_node("Relu", ["s"], ["Y"], name="relu")],
    "conv_residual",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4, 6, 7])],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 4, 6, 7])], [w])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "conv_residual.onnx")
xr = rng.standard_normal((2, 4, 6, 7)).astype(np.float32)
yr = ort.InferenceSession(os.path.join(HERE, "conv_residual.onnx"), so, providers=["CPUExecutionProvider"]).run(None, {"X": xr})[0]
with open(os.path.join(HERE, "conv_residual_input.pb"), "wb") as f:
    f.write(numpy_helper.from_array(xr, "X").SerializeToString())
with open(os.path.join(HERE, "conv_residual_output.pb"), "wb") as f:
    f.write(numpy_helper.from_array(yr, "Y").SerializeToString())
