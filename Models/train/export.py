"""Export trained models to ONNX and check them.

    python export.py [--tasks sr2 sr4 restore deblur color]

For each task: runs/<task>.pt -> Models/enhance/<name>.onnx (opset 17, TorchScript exporter,
dynamic H and W, float32, input `input`, output `output`). Checks: onnx.checker, the op list
against the small-runtime set, file size < 10 MB, and onnxruntime vs PyTorch max abs diff
< 1e-4 on inputs of sizes other than the export size. Writes runs/<task>.export.json.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch

import models

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(os.path.dirname(HERE), "enhance")
ALLOWED_OPS = {"Conv", "Relu", "LeakyRelu", "PRelu", "Add", "Mul", "Concat", "DepthToSpace",
               "Resize", "ConvTranspose", "MaxPool", "AveragePool", "Sigmoid", "Clip", "Pad", "ReduceMean"}
MAX_BYTES = 10 * 1000 * 1000

IO = {
    "sr2": "input RGB [0,1] 1x3xHxW -> output RGB [0,1] 1x3x(2H)x(2W); any H, W; not clamped",
    "sr4": "input RGB [0,1] 1x3xHxW -> output RGB [0,1] 1x3x(4H)x(4W); any H, W; not clamped",
    "restore": "input RGB [0,1] 1x3xHxW -> output RGB [0,1] 1x3xHxW; H, W multiples of 4; not clamped",
    "deblur": "input RGB [0,1] 1x3xHxW -> output RGB [0,1] 1x3xHxW; H, W multiples of 4; not clamped",
    "color": "input Lab L/100 1x1xHxW -> output Lab ab/128 1x2xHxW (CIE D65, skimage rgb2lab); "
             "H, W multiples of 16; not clamped",
}
TASK_NAME = {"sr2": "super-resolution x2", "sr4": "super-resolution x4",
             "restore": "restoration (denoise + JPEG artifacts)", "deblur": "deblur (defocus + motion)",
             "color": "colorization"}


def fold_pad_amounts(mp):
    """The TorchScript exporter computes a reflect Pad's `pads` with a chain of constant-only
    nodes (Constant, ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast). Evaluate each
    such input once with onnxruntime, store it as an initializer and drop the dead nodes."""
    g = mp.graph
    init_names = {t.name for t in g.initializer}
    for pad in [n for n in g.node if n.op_type == "Pad"]:
        for k in range(1, len(pad.input)):
            name = pad.input[k]
            if not name or name in init_names:
                continue
            probe = onnx.ModelProto()
            probe.CopyFrom(mp)
            del probe.graph.output[:]
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, None))
            sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
            feeds = {i.name: np.zeros([1, 3, 16, 16], np.float32) for i in sess.get_inputs()}
            value = sess.run([name], feeds)[0]
            folded = name + "_folded"
            g.initializer.append(onnx.numpy_helper.from_array(value.astype(np.int64), folded))
            pad.input[k] = folded
            init_names.add(folded)
    # drop nodes whose outputs nobody reads
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)


def in_channels(task):
    return 1 if task == "color" else 3


def export_one(task, runs, out_dir=OUT_DIR):
    model = models.build(task)
    model.load_state_dict(torch.load(os.path.join(runs, task + ".pt"), map_location="cpu"))
    model.eval()
    m = models.SIZE_MULTIPLE[task]
    c = in_channels(task)
    x = torch.rand(1, c, 4 * 16, 5 * 16)
    path = os.path.join(out_dir, models.ONNX_NAME[task])
    os.makedirs(out_dir, exist_ok=True)
    scale = {"sr2": 2, "sr4": 4}.get(task, 1)
    out_axes = {2: "height", 3: "width"} if scale == 1 else {2: f"height_x{scale}", 3: f"width_x{scale}"}
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["output"],
                      opset_version=17, do_constant_folding=True, dynamo=False,
                      dynamic_axes={"input": {2: "height", 3: "width"}, "output": out_axes})
    mp = onnx.load(path)
    # the exporter shares equal initializers through Identity nodes: give each its own copy
    inits = {t.name: t for t in mp.graph.initializer}
    for n in list(mp.graph.node):
        if n.op_type == "Identity" and n.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            mp.graph.initializer.append(t)
            mp.graph.node.remove(n)
    fold_pad_amounts(mp)
    # metadata for the pipelines
    mp.doc_string = f"SwiftONNX {TASK_NAME[task]}: {IO[task]}"
    for k, v in {"task": task, "size_multiple": str(m), "io": IO[task],
                 "scale": str(scale), "clamped": "no"}.items():
        e = mp.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(mp, path)
    onnx.checker.check_model(path, full_check=True)
    mp = onnx.load(path)
    ops = sorted({n.op_type for n in mp.graph.node})
    bad = [o for o in ops if o not in ALLOWED_OPS]
    assert not bad, f"{task}: ops outside the allowed set: {bad}"
    assert mp.opset_import[0].version == 17
    for v in list(mp.graph.input) + list(mp.graph.output):
        assert v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    nbytes = os.path.getsize(path)
    assert nbytes < MAX_BYTES, f"{task}: {nbytes} bytes"

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(7)
    worst = 0.0
    def up(v):
        return -(-v // m) * m
    shapes = [(1, c, up(37), up(53)), (1, c, up(64), up(91))]
    for shp in shapes:
        xi = torch.rand(*shp, generator=g)
        with torch.no_grad():
            ref = model(xi).numpy()
        got = sess.run(["output"], {"input": xi.numpy()})[0]
        assert got.shape == ref.shape, (got.shape, ref.shape)
        worst = max(worst, float(np.abs(got - ref).max()))
    assert worst < 1e-4, f"{task}: onnxruntime vs torch max abs diff {worst}"
    info = {"file": os.path.relpath(path, os.path.dirname(out_dir)), "bytes": nbytes, "ops": ops,
            "max_abs_diff_vs_torch": worst, "params": models.n_params(model), "io": IO[task],
            "size_multiple": m, "task_name": TASK_NAME[task]}
    with open(os.path.join(runs, task + ".export.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"{task}: {path} {nbytes} bytes, {info['params']} params, ops {ops}, max|ort-torch| {worst:.2e}")
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="*", default=models.TASKS)
    ap.add_argument("--runs", default=os.path.join(HERE, "runs"))
    ap.add_argument("--out", default=OUT_DIR)
    args = ap.parse_args()
    torch.set_num_threads(2)
    for t in args.tasks:
        export_one(t, args.runs, args.out)


if __name__ == "__main__":
    sys.exit(main())
