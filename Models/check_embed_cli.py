#!/usr/bin/env python3
"""`swift-onnx embed` on the real paraphrase-MiniLM-L3-v2 against the Python pipeline's vectors
(tokenizers + ONNX Runtime + mean pooling + L2 normalization, committed in
Tests/TextTests/Resources/minilm_l3_* by Models/make_text_reference.py): the saved .npy within
1e-4 of the reference and cosine > 0.99999 per sentence, normalized and not (--no-normalize), the .json
output, --texts-from and --similarity; and that bad folders, models and tokenizers end in one
clear line and exit status 1 (64 for usage errors), never a crash. Needs numpy only (the project .venv), and the model folder fetch.py makes
(Models/cache/paraphrase-MiniLM-L3-v2).

Usage:  .venv/bin/python Models/check_embed_cli.py --bin .build/release/swift-onnx
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(os.path.dirname(HERE), "Tests", "TextTests", "Resources")


def run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(cmd[:3])} ... exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def expect_error(args: list[str], status: int, needle: str) -> bool:
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    first = r.stderr.strip().splitlines()[0] if r.stderr.strip() else ""
    good = r.returncode == status and needle in r.stderr and first.startswith("error: ")
    print(f"{'ok  ' if good else 'FAIL'} exit {r.returncode}: {first}")
    return good


def compare(name: str, got: np.ndarray, want: np.ndarray, sentences: list[str]) -> bool:
    if got.shape != want.shape:
        print(f"FAIL {name}: shape {got.shape}, expected {want.shape}")
        return False
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64)).max(axis=1)
    cos = (got * want).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    bad = [i for i in range(len(sentences)) if diff[i] > 1e-4 or cos[i] <= 0.99999]
    for i in bad:
        print(f"FAIL {name} #{i} {sentences[i][:50]!r}: max abs diff {diff[i]:.3g}, cosine {cos[i]:.8f}")
    print(f"{'ok  ' if not bad else 'FAIL'} {name}: {len(sentences)} sentences, max abs diff {diff.max():.3g}, "
          f"min cosine {cos.min():.8f}")
    return not bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the swift-onnx executable")
    ap.add_argument("--model-dir", default=os.path.join(HERE, "cache", "paraphrase-MiniLM-L3-v2"))
    args = ap.parse_args()
    meta = json.load(open(os.path.join(RES, "minilm_l3_reference.json"), encoding="utf-8"))
    sentences = meta["sentences"]
    want = np.load(os.path.join(RES, "minilm_l3_embeddings.npy"))
    want_pooled = np.load(os.path.join(RES, "minilm_l3_pooled.npy"))
    if not os.path.isdir(args.model_dir):
        print(f"FAIL: {args.model_dir} is missing: run .venv/bin/python Models/fetch.py")
        return 1
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "v.npy")
        run([args.bin, "embed", args.model_dir, *sentences, "--output", out, "--quiet"])
        ok &= compare("embed --output .npy", np.load(out), want, sentences)
        run([args.bin, "embed", args.model_dir, *sentences, "--output", out, "--quiet", "--no-normalize", "--batch-size", "3"])
        ok &= compare("embed --no-normalize", np.load(out), want_pooled, sentences)
        listing = os.path.join(tmp, "texts.json")
        with open(listing, "w", encoding="utf-8") as f:
            json.dump(sentences, f, ensure_ascii=False)
        run([args.bin, "embed", args.model_dir, "--texts-from", listing, "--output", out, "--quiet"])
        ok &= compare("embed --texts-from", np.load(out), want, sentences)
        js = os.path.join(tmp, "v.json")
        run([args.bin, "embed", "--model", os.path.join(args.model_dir, "model.onnx"), *sentences[:4], "--output", js, "--quiet"])
        ok &= compare("embed --model --output .json", np.array(json.load(open(js))["embeddings"], dtype=np.float32), want[:4], sentences[:4])
        text = run([args.bin, "embed", args.model_dir, sentences[0], sentences[1], "--similarity", "--quiet"])
        got = float(text.strip().split()[-1])
        expected = float(np.dot(want[0].astype(np.float64), want[1]))
        good = abs(got - expected) < 1e-5
        print(f"{'ok  ' if good else 'FAIL'} embed --similarity: {got:.6f}, reference {expected:.6f}")
        ok &= good
        # Errors: one line, status 1 (usage errors 64).
        root = os.path.dirname(HERE)
        bpe = os.path.join(tmp, "bpe.json")
        with open(bpe, "w") as f:
            json.dump({"model": {"type": "BPE", "vocab": {}, "merges": []}}, f)
        bad_json = os.path.join(tmp, "bad.json")
        with open(bad_json, "w") as f:
            f.write("{\"model\": ")
        model = os.path.join(args.model_dir, "model.onnx")
        vit = os.path.join(root, "Models", "transformers", "vit.ts17.onnx")
        checks = [
            ([args.bin, "embed", args.model_dir], 64, "give at least one text"),
            ([args.bin, "embed", os.path.join(tmp, "missing"), "x"], 1, "does not exist"),
            ([args.bin, "embed", tmp, "x"], 1, "no model.onnx"),
            ([args.bin, "embed", "--model", model, "--tokenizer", os.path.join(tmp, "none.json"), "x"], 1, "tokenizer"),
            ([args.bin, "embed", "--model", model, "--tokenizer", bpe, "x"], 1, "model of type 'BPE' is not supported"),
            ([args.bin, "embed", "--model", model, "--tokenizer", bad_json, "x"], 1, "not valid JSON"),
            ([args.bin, "embed", "--model", vit, "--tokenizer", os.path.join(args.model_dir, "tokenizer.json"), "x"], 1,
             "no input 'input_ids'"),
            ([args.bin, "embed", args.model_dir, "x", "--output", os.path.join(tmp, "v.txt")], 1, "give a .npy or .json"),
            ([args.bin, "embed", args.model_dir, "x", "--similarity"], 64, "at least two texts"),
        ]
        for cmd, status, needle in checks:
            ok &= expect_error(cmd, status, needle)
    print("embed: all checks passed" if ok else "embed: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
