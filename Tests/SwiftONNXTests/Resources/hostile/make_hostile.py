"""Writes the hostile-input corpus (issue 12): model and input files no exporter would write, each
with the typed error SwiftONNX must give (cases.tsv: file, inputs, ONNXError case, a piece of the
message). HostileCorpusTests checks every row through the API; scripts/check_hostile_cli.py through
`swift-onnx run` (non-zero exit, the message on stderr, under 2 s and 100 MB).

    .venv/bin/python Tests/SwiftONNXTests/Resources/hostile/make_hostile.py
"""
import os
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
rows = []


def save(name, model, inputs="-", error="?", message="?"):
    path = os.path.join(HERE, name)
    data = model if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    rows.append((name, inputs, error, message))


def vi(name, dt=TensorProto.FLOAT, shape=(2,)):
    return helper.make_tensor_value_info(name, dt, list(shape) if shape is not None else None)


def model(nodes, inputs=None, outputs=None, inits=(), opset=17, ir=8, extra_opsets=()):
    g = helper.make_graph(nodes, "g", inputs if inputs is not None else [vi("x")],
                          outputs if outputs is not None else [vi("y")], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)] + list(extra_opsets))
    m.ir_version = ir
    return m


def const_i64(name, vals):
    return numpy_helper.from_array(np.array(vals, dtype=np.int64), name)


X = "x=x.npy"
np.save(os.path.join(HERE, "x.npy"), np.array([1.0, -2.0], dtype=np.float32))
relu = model([helper.make_node("Relu", ["x"], ["y"])])

# --- bytes that are not a model ---
good = relu.SerializeToString()
save("truncated.onnx", good[: len(good) // 2], X)
save("random.onnx", bytes(np.random.default_rng(7).integers(0, 256, 1024, dtype=np.uint8)), X)
save("empty.onnx", b"", X)
save("no_graph.onnx", helper.make_model(helper.make_graph([], "g", [], []), ir_version=8).SerializeToString()[:0] + b"\x08\x08", X)


# --- nesting far beyond any real model (hand-written wire format, as protobuf refuses to write it) ---
def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def nested_if(levels):
    ident = field(1, b"x") + field(2, b"y") + field(4, b"Identity")
    graph = field(1, ident) + field(2, b"inner") + field(12, field(1, b"y"))
    for _ in range(levels):
        attr = field(1, b"then_branch") + field(6, graph) + varint(20 << 3) + varint(5)
        node = field(1, b"c") + field(2, b"y") + field(4, b"If") + field(5, attr)
        graph = field(1, node) + field(2, b"g") + field(12, field(1, b"y"))
    return varint(1 << 3) + varint(8) + field(8, varint(2 << 3) + varint(13)) + field(7, graph)


save("nested_if_5000.onnx", nested_if(5000), X)

# --- versions ---
save("opset_1000.onnx", model([helper.make_node("Relu", ["x"], ["y"])], opset=1000), X)
save("ml_opset_99.onnx", model([helper.make_node("Relu", ["x"], ["y"])], extra_opsets=[helper.make_opsetid("ai.onnx.ml", 99)]), X)
save("ir_version_99.onnx", model([helper.make_node("Relu", ["x"], ["y"])], ir=99), X)
save("opset_0.onnx", model([helper.make_node("Relu", ["x"], ["y"])], opset=0), X)

# --- tensors whose sizes lie ---
big = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40])
save("dims_overflow.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[big]), X)
neg = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-1, 2])
save("negative_dim.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[neg]), X)
short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2], raw_data=b"\0\0\0\0\0\0")
save("raw_data_short.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[short]), X)
fd = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3], float_data=[1.0, 2.0])
save("float_data_short.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[fd]), X)
badtype = TensorProto(name="w", data_type=99, dims=[2], raw_data=b"\0" * 8)
save("unknown_dtype.onnx", model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[badtype]), X)
s = TensorProto(name="s", data_type=TensorProto.STRING, dims=[1], string_data=[b"\xff\xfe\x80"])
save("string_invalid_utf8.onnx", model([helper.make_node("Identity", ["s"], ["y"])], inputs=[vi("x")],
                                      outputs=[vi("y", TensorProto.STRING, [1])], inits=[s]), X)

# --- shapes that would allocate terabytes ---
def huge(op_nodes, inits, out_dt=TensorProto.FLOAT):
    return model(op_nodes, outputs=[helper.make_tensor_value_info("y", out_dt, None)], inits=inits)


save("constantofshape_huge.onnx", huge([helper.make_node("ConstantOfShape", ["s"], ["y"])], [const_i64("s", [1 << 20, 1 << 20, 1 << 20])]), X)
save("expand_huge.onnx", huge([helper.make_node("Expand", ["x", "s"], ["y"])], [const_i64("s", [1 << 30, 1 << 30, 2])]), X)
save("tile_huge.onnx", huge([helper.make_node("Tile", ["x", "r"], ["y"])], [const_i64("r", [1 << 62])]), X)
save("pad_huge.onnx", huge([helper.make_node("Pad", ["x", "p"], ["y"])], [const_i64("p", [0, 1 << 50])]), X)
save("range_huge.onnx", huge([helper.make_node("Range", ["a", "b", "d"], ["y"])],
                             [numpy_helper.from_array(np.array(0, np.int64), "a"), numpy_helper.from_array(np.array(1 << 62, np.int64), "b"),
                              numpy_helper.from_array(np.array(1, np.int64), "d")], TensorProto.INT64), X)
save("resize_huge.onnx", huge([helper.make_node("Resize", ["x", "", "sc"], ["y"])],
                              [numpy_helper.from_array(np.array([1e15], np.float32), "sc")]), X)
save("reshape_huge_allowzero.onnx", huge([helper.make_node("Reshape", ["x", "s"], ["y"])], [const_i64("s", [1 << 40, 1 << 40])]), X)

# --- external data escaping the model's folder ---
def external(location, offset=None, length=None):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2], data_location=TensorProto.EXTERNAL)
    for k, v in [("location", location), ("offset", offset), ("length", length)]:
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, str(v)
    return model([helper.make_node("Add", ["x", "w"], ["y"])], inits=[t])


with open(os.path.join(HERE, "weights.bin"), "wb") as f:
    f.write(struct.pack("<2f", 1.0, 2.0))
save("external_dotdot.onnx", external("../add_relu.onnx"), X)
save("external_absolute.onnx", external("/etc/passwd"), X)
save("external_symlink.onnx", external("link_to_outside.bin"), X)   # the test makes the link
save("external_offset_past_end.onnx", external("weights.bin", offset=4096), X)
save("external_length_past_end.onnx", external("weights.bin", offset=4, length=64), X)
save("external_missing_file.onnx", external("no_such_file.bin"), X)

# --- graphs that are not DAGs of known values ---
save("cycle.onnx", model([helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
                          helper.make_node("Identity", ["a"], ["y"])]), X)
save("duplicate_output.onnx", model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])]), X)
save("output_never_produced.onnx", model([helper.make_node("Relu", ["x"], ["z"])]), X)
save("undefined_value.onnx", model([helper.make_node("Add", ["x", "nowhere"], ["y"])]), X)
then_g = helper.make_graph([helper.make_node("Identity", ["ghost"], ["t"])], "then", [], [vi("t")])
else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [vi("e")])
save("subgraph_undefined_value.onnx", model([helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True), "c")),
                                             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]), X)
save("duplicate_input_name.onnx", model([helper.make_node("Relu", ["x"], ["y"])], inputs=[vi("x"), vi("x")]), X)

# --- operators and attributes ---
save("unknown_op.onnx", model([helper.make_node("NoSuchOp", ["x"], ["y"])]), X)
save("unknown_domain.onnx", model([helper.make_node("Relu", ["x"], ["y"], domain="com.nowhere")]), X)
save("transpose_bad_perm.onnx", model([helper.make_node("Transpose", ["x"], ["y"], perm=[5])]), X)
save("concat_bad_axis.onnx", model([helper.make_node("Concat", ["x", "x"], ["y"], axis=7)]), X)
save("conv_channel_mismatch.onnx", model([helper.make_node("Conv", ["x4", "w"], ["y"])], inputs=[vi("x4", shape=(1, 3, 4, 4))],
                                         inits=[numpy_helper.from_array(np.zeros((2, 5, 3, 3), np.float32), "w")]), "x4=x4.npy")
np.save(os.path.join(HERE, "x4.npy"), np.zeros((1, 3, 4, 4), np.float32))
save("reshape_mismatch.onnx", model([helper.make_node("Reshape", ["x", "s"], ["y"])], inits=[const_i64("s", [3])]), X)
save("gather_index_out_of_range.onnx", model([helper.make_node("Gather", ["x", "i"], ["y"])], inits=[const_i64("i", [5])]), X)
save("matmul_mismatch.onnx", model([helper.make_node("MatMul", ["x", "w"], ["y"])], inits=[numpy_helper.from_array(np.zeros((3, 2), np.float32), "w")]), X)
save("split_bad_sizes.onnx", model([helper.make_node("Split", ["x", "s"], ["y", "z"])], outputs=[vi("y"), vi("z")],
                                   inits=[const_i64("s", [5, 5])]), X)
save("attribute_wrong_type.onnx", model([helper.make_node("Conv", ["x4", "w"], ["y"], kernel_shape=[1.5, 2.5])], inputs=[vi("x4", shape=(1, 3, 4, 4))],
                                        inits=[numpy_helper.from_array(np.zeros((2, 3, 3, 3), np.float32), "w")]), "x4=x4.npy")

# --- inputs ---
save("relu.onnx", relu, "x=bad_object.npy")
rows[-1] = ("relu.onnx", "x=bad_object.npy", "?", "?")
np.save(os.path.join(HERE, "bad_object.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
with open(os.path.join(HERE, "bad_header.npy"), "wb") as f:
    f.write(b"\x93NUMPY\x01\x00\x20\x00{'descr': 1234, 'shape': ([, }   \n")
rows.append(("relu.onnx", "x=bad_header.npy", "?", "?"))
full = open(os.path.join(HERE, "x.npy"), "rb").read()
with open(os.path.join(HERE, "truncated.npy"), "wb") as f:
    f.write(full[:-3])
rows.append(("relu.onnx", "x=truncated.npy", "?", "?"))
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1152921504606846976,), }"
hdr = hdr + " " * (63 - (10 + len(hdr)) % 64) + "\n"
with open(os.path.join(HERE, "exabytes.npy"), "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + b"\0" * 8)
rows.append(("relu.onnx", "x=exabytes.npy", "?", "?"))
rows.append(("relu.onnx", "x=x4.npy", "?", "?"))     # wrong shape for the model
np.save(os.path.join(HERE, "x_int.npy"), np.array([1, 2], dtype=np.int32))
rows.append(("relu.onnx", "x=x_int.npy", "?", "?"))   # wrong type
with open(os.path.join(HERE, "truncated.pb"), "wb") as f:
    f.write(numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "x").SerializeToString()[:-5])
rows.append(("relu.onnx", "x=truncated.pb", "?", "?"))
rows.append(("relu.onnx", "-", "?", "?"))              # the input not given

# The error each case must give: the ONNXError case and a piece of its message.
EXPECT = {
    "truncated.onnx": ("invalidModel", "the protobuf cannot be parsed"),
    "random.onnx": ("invalidModel", "the protobuf cannot be parsed"),
    "empty.onnx": ("invalidModel", "the file is empty"),
    "no_graph.onnx": ("invalidModel", "the model has no graph"),
    "nested_if_5000.onnx": ("invalidModel", "nest more than 100 levels"),
    "opset_1000.onnx": ("unsupportedOpset", "imports opset 1000 of ai.onnx; this runtime supports ai.onnx opsets 1 to"),
    "ml_opset_99.onnx": ("unsupportedOpset", "imports opset 99 of ai.onnx.ml"),
    "ir_version_99.onnx": ("unsupportedIRVersion", "the model has IR version 99"),
    "opset_0.onnx": ("unsupportedOpset", "imports opset 0 of ai.onnx"),
    "dims_overflow.onnx": ("invalidGraph", "tensor 'w': shape [1099511627776, 1099511627776] is too large"),
    "negative_dim.onnx": ("invalidGraph", "tensor 'w': negative dimension in [-1, 2]"),
    "raw_data_short.onnx": ("invalidGraph", "tensor 'w': raw_data holds 6 bytes, shape [2] of float32 needs 8"),
    "float_data_short.onnx": ("invalidGraph", "tensor 'w': float_data holds 2 values, shape [3] needs 3"),
    "unknown_dtype.onnx": ("unsupportedType", "tensor 'w' has unknown data type code 99"),
    "string_invalid_utf8.onnx": ("invalidGraph", "tensor 's': string 0 is not valid UTF-8"),
    "constantofshape_huge.onnx": ("nodeFailed", "output shape [1048576, 1048576, 1048576] (1152921504606846976 elements) exceeds the size limit"),
    "expand_huge.onnx": ("nodeFailed", "Expand: output shape [1073741824, 1073741824, 2]"),
    "tile_huge.onnx": ("nodeFailed", "Tile: size overflow in [2, 4611686018427387904]"),
    "pad_huge.onnx": ("nodeFailed", "Pad: output shape [1125899906842626]"),
    "range_huge.onnx": ("nodeFailed", "Range: 4.611686018427388e+18 elements exceed the size limit"),
    "resize_huge.onnx": ("nodeFailed", "Resize: output size too large for scales"),
    "reshape_huge_allowzero.onnx": ("nodeFailed", "Reshape: shape [1099511627776, 1099511627776] is too large"),
    "external_dotdot.onnx": ("invalidGraph", "external data location '../add_relu.onnx' escapes the model's folder"),
    "external_absolute.onnx": ("invalidGraph", "external data location '/etc/passwd' must be a relative path inside the model's folder"),
    "external_symlink.onnx": ("invalidGraph", "external data location 'link_to_outside.bin' escapes the model's folder"),
    "external_offset_past_end.onnx": ("invalidGraph", "tensor 'w': external data [4096, +-4088) is outside 'weights.bin' (8 bytes)"),
    "external_length_past_end.onnx": ("invalidGraph", "tensor 'w': external data [4, +64) is outside 'weights.bin' (8 bytes)"),
    "external_missing_file.onnx": ("io", "no_such_file.bin': No such file or directory"),
    "cycle.onnx": ("invalidGraph", "cycle through node 'Add_0' and value 'a'"),
    "duplicate_output.onnx": ("invalidGraph", "value 'y' is produced twice (second time by node 'Neg_1')"),
    "output_never_produced.onnx": ("invalidGraph", "graph 'g': value 'y' is used but never defined"),
    "undefined_value.onnx": ("invalidGraph", "graph 'g': value 'nowhere' is used but never defined"),
    "subgraph_undefined_value.onnx": ("invalidGraph", "value 'ghost' is used but never defined"),
    "duplicate_input_name.onnx": ("invalidGraph", "graph 'g': input 'x' is declared twice"),
    "unknown_op.onnx": ("unsupportedOperator", "unsupported operator ai.onnx::NoSuchOp (opset 17) at node 'NoSuchOp_0'"),
    "unknown_domain.onnx": ("unsupportedOperator", "unsupported operator com.nowhere::Relu"),
    "transpose_bad_perm.onnx": ("nodeFailed", "Transpose: perm [5] is not a permutation for input [2]"),
    "concat_bad_axis.onnx": ("nodeFailed", "Concat axis 7 is out of range for rank 1"),
    "conv_channel_mismatch.onnx": ("nodeFailed", "Conv: X has 3 channels but W [2, 5, 3, 3] with group 1 expects 5"),
    "reshape_mismatch.onnx": ("nodeFailed", "Reshape: input [2] (2 elements) cannot take shape [3] (3 elements)"),
    "gather_index_out_of_range.onnx": ("nodeFailed", "Gather: index 5 is out of range for dimension 2"),
    "matmul_mismatch.onnx": ("nodeFailed", "MatMul: inner dimensions differ: A [2] and B [3, 2]"),
    "split_bad_sizes.onnx": ("nodeFailed", "Split: split sizes [5, 5] do not sum to dimension 2 of [2]"),
    "attribute_wrong_type.onnx": ("invalidAttribute", "attribute 'kernel_shape': expected ints, got floats"),
    ("relu.onnx", "x=bad_object.npy"): ("unsupportedType", ".npy dtype '|O'"),
    ("relu.onnx", "x=bad_header.npy"): ("io", "not a usable .npy file: malformed header: descr is not a dtype string"),
    ("relu.onnx", "x=truncated.npy"): ("io", "not a usable .npy file: shape [2] of float32 needs 8 bytes of data, the file has 5"),
    ("relu.onnx", "x=exabytes.npy"): ("io", "not a usable .npy file: shape [1152921504606846976] is too large"),
    ("relu.onnx", "x=x4.npy"): ("inputShapeMismatch", "input 'x': expected shape [2], got [1, 3, 4, 4]"),
    ("relu.onnx", "x=x_int.npy"): ("inputTypeMismatch", "input 'x': expected element type float32, got int32"),
    ("relu.onnx", "x=truncated.pb"): ("io", "not a serialized TensorProto"),
    ("relu.onnx", "-"): ("missingInput", "missing input 'x'"),
}
with open(os.path.join(HERE, "cases.tsv"), "w") as f:
    f.write("file\tinputs\terror\tmessage\n")
    for name, inputs, _, _ in rows:
        error, message = EXPECT[(name, inputs)] if (name, inputs) in EXPECT else EXPECT[name]
        f.write("\t".join([name, inputs, error, message]) + "\n")
print(len(rows), "cases")
