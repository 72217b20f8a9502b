#!/usr/bin/env python3
"""Generates the ONNX backend node test cases from the pinned onnx package.

onnx 1.23.2 no longer ships the node cases as files: this serializes every TestCase from
onnx.backend.test.case.node.collect_testcases into
    OUT/<case>/model.onnx
    OUT/<case>/test_data_set_N/input_K.pb, output_K.pb
(TensorProto, or SequenceProto/OptionalProto where the case uses those), plus OUT/index.txt
listing every case name, one per line. OUT defaults to Tests/Conformance/cases (git-ignored).
"""
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases


def to_proto(value, type_proto, name):
    if isinstance(value, (onnx.TensorProto, onnx.SequenceProto, onnx.OptionalProto, onnx.MapProto)):
        p = type(value)()
        p.CopyFrom(value)
        p.name = name
        return p
    which = type_proto.WhichOneof("value")
    if which == "tensor_type" or which is None:
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
        elem = type_proto.tensor_type.elem_type if which else 0
        if elem and arr.dtype == object:
            t = onnx.helper.make_tensor(name, elem, arr.shape, [v if isinstance(v, bytes) else str(v).encode() for v in arr.flat])
            return t
        return numpy_helper.from_array(arr, name)
    if which == "sequence_type":
        return numpy_helper.from_list(list(value), name)
    if which == "optional_type":
        return numpy_helper.from_optional(value, name)
    if which == "map_type":
        return numpy_helper.from_dict(value, name)
    raise ValueError(f"unsupported value type {which}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "cases")
    os.makedirs(out, exist_ok=True)
    warnings.simplefilter("ignore")
    with np.errstate(all="ignore"):
        cases = collect_testcases()
    names = []
    failed = 0
    for case in cases:
        if case.kind != "node":
            continue
        d = os.path.join(out, case.name)
        os.makedirs(d, exist_ok=True)
        names.append(case.name)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        graph = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(ds, exist_ok=True)
            try:
                for k, v in enumerate(inputs):
                    p = to_proto(v, graph.input[k].type, graph.input[k].name)
                    with open(os.path.join(ds, f"input_{k}.pb"), "wb") as f:
                        f.write(p.SerializeToString())
                for k, v in enumerate(outputs):
                    p = to_proto(v, graph.output[k].type, graph.output[k].name)
                    with open(os.path.join(ds, f"output_{k}.pb"), "wb") as f:
                        f.write(p.SerializeToString())
            except Exception as e:  # recorded, never hidden: the harness reports such a case as failing
                failed += 1
                with open(os.path.join(d, "GENERATION_ERROR"), "w") as f:
                    f.write(f"{type(e).__name__}: {e}\n")
        with open(os.path.join(d, "tolerance.txt"), "w") as f:
            f.write(f"{case.rtol} {case.atol}\n")
    names.sort()
    with open(os.path.join(out, "index.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"generated {len(names)} node cases into {out} ({failed} data sets could not be serialized)")


if __name__ == "__main__":
    main()
