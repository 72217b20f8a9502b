#!/usr/bin/env python3
"""Builds small test models for ONNX Runtime's com.microsoft transformer contrib ops, with ONNX Runtime references.

Part A (single-op models, onnx.helper, opset imports "" 17 and com.microsoft 1): several configurations of
  Attention, MultiHeadAttention, GroupQueryAttention, RotaryEmbedding, SkipLayerNormalization,
  SkipSimplifiedLayerNormalization, SimplifiedLayerNormalization (default domain, version 1), FastGelu, BiasGelu,
  Gelu, QuickGelu and EmbedLayerNormalization, each in Models/transformers/contrib/<stem>.onnx. Weights, biases,
  gamma/beta, embedding tables and rotary caches are initializers; activations, masks, past state, sequence
  lengths and position ids are graph inputs. Every model is also recomputed by a numpy reimplementation of the op
  (the ref_* functions below, float32 where rounding matters) and the max abs difference to ONNX Runtime is printed
  and written to the manifest notes: these functions are the executable form of the op semantics.
  A configuration that ONNX Runtime rejects is listed with its error in contrib/SKIPPED.md instead.

Part B (ONNX Runtime transformer-optimizer outputs): onnxruntime.transformers.optimizer.optimize_model
  (opt_level=0: the pure-Python fusions only) on the committed exports in Models/transformers/, kept as
  contrib/<stem>.ortopt.onnx when the result contains com.microsoft ops. Inputs are the original's reference inputs;
  outputs are recomputed by ONNX Runtime on the optimized graph (ORT_DISABLE_ALL) and checked against the
  original's reference outputs (max abs diff printed and written to the manifest notes).

Reference layout (same as Models/transformers/reference): contrib/reference/<stem>/input_<i>.npy, output_<i>.npy
(graph order) and io.json {"inputs": [{"name", "file", "dtype", "shape"}], "outputs": [...], "rtol", "atol"}.
Manifest: Models/MANIFEST-contrib.tsv with columns file, op, config, sha256, bytes, notes (notes start with the
com.microsoft op types and their counts).

Every random tensor comes from numpy.random.default_rng(crc32(<stem>)), so a case does not depend on the others.
ONNX Runtime runs on CPU, 1 thread, ORT_DISABLE_ALL.

Usage:
  .venv/bin/python Models/make_contrib.py                       # parts A and B into Models/transformers/contrib
  .venv/bin/python Models/make_contrib.py --only attention.     # only stems starting with a prefix (no manifest)
  .venv/bin/python Models/make_contrib.py --minilm OUT_DIR [--minilm-model PATH]
        optimizes paraphrase-MiniLM-L3-v2 (default Models/cache/paraphrase-MiniLM-L3-v2/*.onnx; 69 MB, so it is
        written to OUT_DIR, never into the repository) and writes OUT_DIR/<stem>.ortopt.onnx plus
        OUT_DIR/reference/<stem>.ortopt/ (batch 2, sequence 16, input_ids in [1000, 30000), attention_mask row 1
        with 4 trailing zeros, token_type_ids zeros if the model has that input).
"""
import argparse
import collections
import glob
import hashlib
import json
import os
import shutil
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "transformers")
OUT = os.path.join(SRC, "contrib")
REF = os.path.join(OUT, "reference")
MANIFEST = os.path.join(HERE, "MANIFEST-contrib.tsv")
SKIPPED = os.path.join(OUT, "SKIPPED.md")
RTOL, ATOL = 1e-3, 1e-4
MS = "com.microsoft"
F32 = np.float32
NP2TP = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("int32"): TensorProto.INT32,
         np.dtype("int64"): TensorProto.INT64, np.dtype("bool"): TensorProto.BOOL}
FLOAT, INT32 = TensorProto.FLOAT, TensorProto.INT32


# ----------------------------------------------------------------------------------------------------------
# Plumbing
# ----------------------------------------------------------------------------------------------------------

class X:
    """A node input that is a graph input (fed from reference/<stem>/input_<i>.npy)."""
    def __init__(self, name, value):
        self.name, self.value = name, np.asarray(value)


class W:
    """A node input that is an initializer (stored in the model)."""
    def __init__(self, name, value):
        self.name, self.value = name, np.asarray(value)


def session(model_bytes):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def single_op_model(stem, op, inputs, outputs, attrs, domain=MS):
    """inputs: X / W / None (absent optional input) in node order; outputs: (name, elem_type) or None (absent)."""
    node_inputs = [i.name if i is not None else "" for i in inputs]
    while node_inputs and node_inputs[-1] == "":
        node_inputs.pop()
    node_outputs = [o[0] if o is not None else "" for o in outputs]
    while node_outputs and node_outputs[-1] == "":
        node_outputs.pop()
    graph_inputs = [helper.make_tensor_value_info(i.name, NP2TP[i.value.dtype], list(i.value.shape))
                    for i in inputs if isinstance(i, X)]
    inits = [numpy_helper.from_array(i.value, i.name) for i in inputs if isinstance(i, W)]
    graph_outputs = [helper.make_tensor_value_info(o[0], o[1], None) for o in outputs if o is not None]
    node = helper.make_node(op, node_inputs, node_outputs, name=f"{op}_0", domain=domain, **attrs)
    graph = helper.make_graph([node], stem, graph_inputs, graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                              ir_version=8, producer_name="SwiftONNX Models/make_contrib.py")
    return model


def contrib_counts(model):
    c = collections.Counter(n.op_type for n in model.graph.node if n.domain == MS)
    # SimplifiedLayerNormalization lives in ORT's default domain but is a contrib op as well.
    c.update(n.op_type for n in model.graph.node
             if n.domain in ("", "ai.onnx") and n.op_type == "SimplifiedLayerNormalization")
    return c


def counts_str(c):
    return " ".join(f"{k}x{v}" for k, v in sorted(c.items()))


def write_reference(ref_dir, model_file, in_names, in_values, out_names, out_values, rtol, atol, extra=None):
    if os.path.isdir(ref_dir):
        shutil.rmtree(ref_dir)
    os.makedirs(ref_dir)
    io = {"model": model_file, "rtol": rtol, "atol": atol, "inputs": [], "outputs": []}
    for i, (n, v) in enumerate(zip(in_names, in_values)):
        np.save(os.path.join(ref_dir, f"input_{i}.npy"), v)
        io["inputs"].append({"name": n, "file": f"input_{i}.npy", "dtype": str(v.dtype), "shape": list(v.shape)})
    for i, (n, v) in enumerate(zip(out_names, out_values)):
        np.save(os.path.join(ref_dir, f"output_{i}.npy"), v)
        io["outputs"].append({"name": n, "file": f"output_{i}.npy", "dtype": str(v.dtype), "shape": list(v.shape)})
    if extra:
        io.update(extra)
    with open(os.path.join(ref_dir, "io.json"), "w") as f:
        json.dump(io, f, indent=1)
        f.write("\n")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def maxdiff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    if a.dtype.kind in "iub":
        return float(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.where(both_nan, 0.0, np.abs(a.astype(np.float64) - b.astype(np.float64)))
    return float(np.nanmax(np.where(np.isnan(d), np.inf, d)))


# ----------------------------------------------------------------------------------------------------------
# numpy reimplementations (the semantics ONNX Runtime 1.32 CPU implements; see /tmp/contrib_semantics.md)
# ----------------------------------------------------------------------------------------------------------

LOWEST = np.finfo(np.float32).min


def softmax32(s):
    s = s.astype(F32)
    m = s.max(-1, keepdims=True)
    e = np.exp((s - m).astype(F32)).astype(F32)
    return (e / e.sum(-1, keepdims=True, dtype=F32)).astype(F32)


def mask_to_additive(mask, B, S, T, mfv):
    """Attention / MultiHeadAttention mask_index or key_padding_mask -> additive float32 (B, 1, S|1, T) of 0 / mfv.
    1-D (B): key j masked iff j >= mask[b] (right padding lengths).
    1-D (2B): also masked iff j < mask[B + b] (left padding start positions).
    2-D (B, T) / 3-D (B, S, T): masked iff value == 0 (values > 0 keep)."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    j = np.arange(T)
    if mask.ndim == 1:
        masked = j[None, :] >= mask[:B, None]
        if mask.shape[0] == 2 * B:
            masked |= j[None, :] < np.minimum(mask[B:, None], T)
        masked = masked[:, None, None, :]
    elif mask.ndim == 2:
        masked = (mask <= 0)[:, None, None, :]
    elif mask.ndim == 3:
        masked = (mask <= 0)[:, None, :, :]
    else:
        raise ValueError("4-D masks are not supported by the CPU kernel")
    return np.where(masked, F32(mfv), F32(0)).astype(F32)


def sdpa_ref(q, k, v, scale, add_mask=None, attn_bias=None, causal_past=None):
    """q (B,N,S,H), k (B,N,T,H), v (B,N,T,Hv) -> (B,N,S,Hv), as ORT's CPU Attention / MHA kernels compute it:
    scores = float32(q.k^T * scale) + mask (0 or mask_filter_value, ADDED) + attention_bias; causal positions
    (key j > past + i, for every query row i except the last one, i = S - 1, which is never causally masked: this
    only shows in MHA cross attention with T > past + S) are REPLACED by the lowest float; softmax over all T keys (so a fully masked row is the
    softmax of score + mask_filter_value, i.e. ~ the unmasked row for -10000, NOT zeros)."""
    s = np.matmul(q.astype(F32), np.swapaxes(k, -1, -2).astype(F32)).astype(F32) * F32(scale)
    s = s.astype(F32)
    if add_mask is not None:
        s = (s + add_mask).astype(F32)
    if attn_bias is not None:
        s = (s + attn_bias).astype(F32)
    if causal_past is not None:
        S, T = s.shape[-2], s.shape[-1]
        future = np.arange(T)[None, :] > (causal_past + np.arange(S))[:, None]
        future[S - 1] = False  # ORT's PrepareMask loop skips the last query row (matters only when T > past + S)
        s = np.where(future, LOWEST, s).astype(F32)
    p = softmax32(s)
    return np.matmul(p, v.astype(F32)).astype(F32)


def bsd_to_bnsh(x, N):
    B, S, D = x.shape
    return x.reshape(B, S, N, D // N).transpose(0, 2, 1, 3)


def bnsh_to_bsd(x):
    B, N, S, H = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, S, N * H)


def ref_attention(x, w, b, mask, past, attn_bias, N, qkv_sizes=None, scale=None, unidirectional=0,
                  mfv=-10000.0, want_present=False):
    D = w.shape[1] // 3 if qkv_sizes is None else qkv_sizes[0]
    Dq, Dk, Dv = (D, D, D) if qkv_sizes is None else qkv_sizes
    qkv = (x.astype(F32) @ w.astype(F32)).astype(F32)
    if b is not None:
        qkv = (qkv + b).astype(F32)
    q, k, v = bsd_to_bnsh(qkv[..., :Dq], N), bsd_to_bnsh(qkv[..., Dq:Dq + Dk], N), bsd_to_bnsh(qkv[..., Dq + Dk:], N)
    P = 0
    if past is not None:
        P = past.shape[3]
        k = np.concatenate([past[0], k], 2)
        v = np.concatenate([past[1], v], 2)
    B, _, S, H = q.shape
    T = k.shape[2]
    sc = scale if scale is not None else 1.0 / np.sqrt(F32(H))
    o = bnsh_to_bsd(sdpa_ref(q, k, v, sc, mask_to_additive(mask, B, S, T, mfv), attn_bias,
                             P if unidirectional else None))
    return [o, np.stack([k, v]).astype(F32)] if want_present else [o]


def ref_mha(query, key, value, bias, kpm, attn_bias, past_k, past_v, N, scale=None, unidirectional=0,
            mfv=-10000.0, want_present=False):
    """MultiHeadAttention input formats:
    query (B,S,D) with key/value (B,L,D)/(B,L,Dv): bias (D+D+Dv) is added to q, k, v, then split into heads;
    query (B,S,N,3,H) packed QKV (key, value absent); key (B,L,N,2,H) packed KV (value absent);
    key/value (B,N,L,H): already projected heads, used as is (no bias, no past)."""
    if query.ndim == 5:
        q, k, v = [query[:, :, :, i].transpose(0, 2, 1, 3) for i in range(3)]
        if bias is not None:
            D = N * query.shape[-1]
            q, k, v = [(t + bias[i * D:(i + 1) * D].reshape(1, N, 1, -1)).astype(F32) for i, t in enumerate((q, k, v))]
    else:
        D = query.shape[-1]
        q = query if bias is None else (query + bias[:D]).astype(F32)
        q = bsd_to_bnsh(q, N)
        if key.ndim == 5:
            k, v = key[:, :, :, 0].transpose(0, 2, 1, 3), key[:, :, :, 1].transpose(0, 2, 1, 3)
            if bias is not None:
                k = (k + bias[D:2 * D].reshape(1, N, 1, -1)).astype(F32)
                v = (v + bias[2 * D:].reshape(1, N, 1, -1)).astype(F32)
        elif key.ndim == 4:
            k, v = key, value
        else:
            k = key if bias is None else (key + bias[D:2 * D]).astype(F32)
            v = value if bias is None else (value + bias[2 * D:]).astype(F32)
            k, v = bsd_to_bnsh(k, N), bsd_to_bnsh(v, N)
    P = 0
    if past_k is not None:
        P = past_k.shape[2]
        k = np.concatenate([past_k, k], 2)
        v = np.concatenate([past_v, v], 2)
    B, _, S, H = q.shape
    T = k.shape[2]
    sc = scale if scale is not None else 1.0 / np.sqrt(F32(H))
    o = bnsh_to_bsd(sdpa_ref(q, k, v, sc, mask_to_additive(kpm, B, S, T, mfv), attn_bias,
                             P if unidirectional else None))
    return [o, k.astype(F32), v.astype(F32)] if want_present else [o]


def rotate(x, cos, sin, interleaved, rot_dim=None):
    """x (..., H); cos/sin broadcastable to (..., rot_dim/2). Rotates the first rot_dim (default H) features:
    non-interleaved: pairs (i, i + rot_dim/2); interleaved: pairs (2i, 2i+1). Features past rot_dim pass through.
    out_a = a*cos - b*sin, out_b = b*cos + a*sin."""
    x = x.astype(F32)
    H = x.shape[-1]
    d = rot_dim or H
    h = d // 2
    out = x.copy()
    if interleaved:
        a, b = x[..., 0:d:2], x[..., 1:d:2]
        out[..., 0:d:2] = a * cos - b * sin
        out[..., 1:d:2] = b * cos + a * sin
    else:
        a, b = x[..., :h], x[..., h:d]
        out[..., :h] = a * cos - b * sin
        out[..., h:d] = b * cos + a * sin
    return out.astype(F32)


def ref_rotary(x, pos, cos_cache, sin_cache, interleaved=0, num_heads=0, rot_dim=0):
    """RotaryEmbedding: x (B,S,N*H) or (B,N,S,H); pos (B,S) absolute positions or (1,) offset (pos = offset + s)."""
    half = cos_cache.shape[1]
    d = rot_dim or 2 * half
    if x.ndim == 3:
        B, S, D = x.shape
        H = D // num_heads if num_heads else 2 * half
        xs = x.reshape(B, S, D // H, H)
    else:
        B, N, S, H = x.shape
        xs = x.transpose(0, 2, 1, 3)
    p = (pos[0] + np.arange(S))[None, :].repeat(B, 0) if pos.ndim == 1 else pos
    cos = cos_cache[p][:, :, None, :]   # (B,S,1,half)
    sin = sin_cache[p][:, :, None, :]
    y = rotate(xs, cos, sin, interleaved, d)
    return y.reshape(x.shape) if x.ndim == 3 else y.transpose(0, 2, 1, 3)


def ref_gqa(query, key, value, past_k, past_v, seqlens_k, total, N, KV, cos_cache=None, sin_cache=None,
            do_rotary=0, interleaved=0, scale=None, local_window=-1, softcap=0.0, attn_bias=None, causal=1,
            position_ids=None):
    """GroupQueryAttention (CPU). Per batch b: T_b = seqlens_k[b] + 1 keys after this step. First prompt
    (sequence_length == total_sequence_length): past length P_b = 0; otherwise P_b = T_b - S. New k/v rows are
    written to present at rows [P_b, P_b + S), past rows [0, P_b) are copied, every other present row is 0.
    present length = past_len + S (dynamic cache, total == past_len + S) or past_len (total <= past_len).
    Query row i (absolute position P_b + i) attends keys j < T_b with j <= P_b + i and, with local_window_size W,
    j > P_b + i - W (W keys, itself included); excluded keys get probability 0 (true -inf). Scores: s*scale, then softcap*tanh(s/softcap),
    then + attention_bias. Rotary (do_rotary) rotates q and k at positions P_b + i before anything else
    (with a position_ids input: position_ids[b, i], except in the first prompt, where only position_ids[0, 0]
    is read and every row b gets positions position_ids[0, 0] + i).
    q head n uses kv head n // (N / KV)."""
    B, S = query.shape[:2]
    if key is None:  # packed QKV (B, S, (N + 2 KV) H)
        H = query.shape[2] // (N + 2 * KV)
        q = query[..., :N * H]
        k = query[..., N * H:(N + KV) * H]
        v = query[..., (N + KV) * H:]
    else:
        H = query.shape[2] // N
        q, k, v = query, key, value
    q = q.reshape(B, S, N, H).astype(F32)
    k = k.reshape(B, S, KV, H).astype(F32)
    v = v.reshape(B, S, KV, H).astype(F32)
    past_len = 0 if past_k is None else past_k.shape[2]
    total = int(total)
    first_prompt = S == total
    present_len = total if past_len == 0 else (past_len + S if total == past_len + S else past_len)
    T = seqlens_k.astype(np.int64) + 1
    P = np.zeros(B, np.int64) if first_prompt else T - S
    if do_rotary:
        if position_ids is None:
            pos = P[:, None] + np.arange(S)[None, :]
        elif first_prompt:  # the first prompt only reads position_ids[0, 0]: every batch row gets [p00, p00 + S)
            pos = np.broadcast_to(position_ids.reshape(-1)[0] + np.arange(S)[None, :], (B, S))
        else:
            pos = position_ids
        cos, sin = cos_cache[pos][:, :, None, :], sin_cache[pos][:, :, None, :]
        q = rotate(q, cos, sin, interleaved)
        k = rotate(k, cos, sin, interleaved)
    present_k = np.zeros((B, KV, present_len, H), F32)
    present_v = np.zeros((B, KV, present_len, H), F32)
    out = np.zeros((B, S, N, H), F32)
    sc = F32(scale) if scale else F32(1.0 / np.sqrt(F32(H)))
    for b in range(B):
        Pb, Tb = int(P[b]), int(T[b])
        if Pb:
            present_k[b, :, :Pb] = past_k[b, :, :Pb]
            present_v[b, :, :Pb] = past_v[b, :, :Pb]
        present_k[b, :, Pb:Pb + S] = k[b].transpose(1, 0, 2)
        present_v[b, :, Pb:Pb + S] = v[b].transpose(1, 0, 2)
        Kb, Vb = present_k[b, :, :Tb], present_v[b, :, :Tb]
        for n in range(N):
            g = n // (N // KV)
            s = (q[b, :, n] @ Kb[g].T).astype(F32) * sc
            if softcap > 0:
                s = (F32(softcap) * np.tanh(s / F32(softcap))).astype(F32)
            if attn_bias is not None:
                s = s + attn_bias[b % attn_bias.shape[0], n % attn_bias.shape[1], :, :Tb]
            pos = Pb + np.arange(S)[:, None]
            j = np.arange(Tb)[None, :]
            allowed = j <= pos if causal else np.ones((S, Tb), bool)
            if local_window > 0:
                allowed &= j > pos - local_window  # the W most recent keys, the query's own position included
            s = np.where(allowed, s, -np.inf)
            p = np.exp(s - s.max(-1, keepdims=True))
            p = p / p.sum(-1, keepdims=True)
            out[b, :, n] = (p @ Vb[g]).astype(F32)
    return [out.reshape(B, S, N * H), present_k, present_v]


def layernorm(x, gamma, beta, eps):
    x = x.astype(np.float64)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    y = (x - mean) * inv * gamma
    if beta is not None:
        y = y + beta
    return y.astype(F32), mean.astype(F32), inv.astype(F32)


def rmsnorm(x, gamma, eps):
    x = x.astype(np.float64)
    inv = 1.0 / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return (x * inv * gamma).astype(F32), inv.astype(F32)


def erf(x):
    from math import erf as _erf
    return np.vectorize(_erf)(x.astype(np.float64))


def gelu_erf(x):
    x = x.astype(np.float64)
    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(F32)


def gelu_tanh(x):
    x = x.astype(np.float64)
    return (0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))).astype(F32)


# ----------------------------------------------------------------------------------------------------------
# Part A cases
# ----------------------------------------------------------------------------------------------------------

CASES = []  # (stem, op, config, fn(rng) -> dict)


def case(stem, op, config):
    def deco(fn):
        CASES.append((stem, op, config, fn))
        return fn
    return deco


def randn(rng, shape, std=1.0):
    return (rng.standard_normal(shape) * std).astype(F32)


O = lambda name: (name, FLOAT)  # noqa: E731

# ---- com.microsoft Attention: B=2, S=5, input hidden 32, 4 heads of 8 --------------------------------------
AB, AS, AD, AN = 2, 5, 32, 4


def attention_case(stem, config, mask=None, past_len=0, attn_bias_shape=None, qkv_sizes=None, attrs=None,
                   bias=True, atol=ATOL, present=None):
    attrs = dict(attrs or {})

    @case(stem, "Attention", config)
    def fn(rng):
        sizes = qkv_sizes or (AD, AD, AD)
        x = randn(rng, (AB, AS, AD))
        w = randn(rng, (AD, sum(sizes)), 0.25)
        b = randn(rng, (sum(sizes),), 0.1) if bias else None
        m = mask(rng) if callable(mask) else mask
        past = randn(rng, (2, AB, AN, past_len, AD // AN)) if past_len else None
        T = past_len + AS
        ab = randn(rng, attn_bias_shape[:3] + (T,)) if attn_bias_shape else None
        a = dict(num_heads=AN, **attrs)
        if qkv_sizes:
            a["qkv_hidden_sizes"] = list(qkv_sizes)
        ins = [X("input", x), W("weights", w), W("bias", b) if bias else None,
               X("mask_index", m) if m is not None else None, X("past", past) if past is not None else None,
               X("attention_bias", ab) if ab is not None else None]
        want_present = past is not None if present is None else present
        outs = [O("output")] + ([O("present")] if want_present else [])
        ref = lambda: ref_attention(x, w, b, m, past, ab, AN, qkv_sizes, attrs.get("scale"),  # noqa: E731
                                    attrs.get("unidirectional", 0), attrs.get("mask_filter_value", -10000.0),
                                    want_present)
        return dict(inputs=ins, outputs=outs, attrs=a, ref=ref, atol=atol)
    return fn


def _mask2d(rng):
    m = np.ones((AB, AS), np.int32)
    m[0, 1] = 0          # a hole in row 0
    m[1, 3:] = 0         # right padding in row 1
    return m


def _mask3d(rng):
    m = (rng.random((AB, AS, AS)) > 0.35).astype(np.int32)
    m[:, :, 0] = 1       # no fully masked query row
    return m


attention_case("attention.basic", "no mask, bias")
attention_case("attention.no_bias", "no mask, no bias", bias=False)
attention_case("attention.mask_1d", "mask_index (B) right-padding lengths [5, 3]",
               mask=np.array([5, 3], np.int32))
attention_case("attention.mask_1d_left", "mask_index (2B) end positions [5, 5] then start positions [0, 2]",
               mask=np.array([5, 5, 0, 2], np.int32))
attention_case("attention.mask_2d", "raw mask (B, T) int32 0/1, a hole in row 0, row 1 padded from 3",
               mask=_mask2d)
attention_case("attention.mask_3d", "raw mask (B, S, T) int32 0/1", mask=_mask3d)
attention_case("attention.mask_4d", "mask (B, 1, M, M) M=8 int32 0/1 (Megatron)",
               mask=lambda rng: (np.tril(np.ones((8, 8), np.int32))[None, None].repeat(AB, 0)))
attention_case("attention.unidirectional", "unidirectional=1, no mask", attrs=dict(unidirectional=1))
attention_case("attention.unidirectional_mask_2d", "unidirectional=1 + raw mask (B, T)", mask=_mask2d,
               attrs=dict(unidirectional=1))
attention_case("attention.past", "past (2,B,N,P=3,H) + present, unidirectional=1", past_len=3,
               attrs=dict(unidirectional=1))
attention_case("attention.present_no_past", "no past, present output (2,B,N,S,H) requested, unidirectional=1",
               present=True, attrs=dict(unidirectional=1))
attention_case("attention.past_bidirectional", "past (2,B,N,P=3,H) + present, unidirectional=0", past_len=3)
attention_case("attention.past_mask_2d", "past P=3 + present, unidirectional=1, raw mask (B, P+S) row 1 left-padded 2",
               past_len=3, attrs=dict(unidirectional=1),
               mask=np.array([[1] * 8, [0, 0] + [1] * 6], np.int32))
attention_case("attention.past_mask_1d", "past P=3 + present, unidirectional=1, mask_index (B) lengths [8, 6]",
               past_len=3, attrs=dict(unidirectional=1), mask=np.array([8, 6], np.int32))
attention_case("attention.qkv_hidden_sizes", "qkv_hidden_sizes [32, 32, 16] (v head size 4), weights (32, 80)",
               qkv_sizes=(32, 32, 16))
attention_case("attention.qk_hidden_48", "qkv_hidden_sizes [48, 48, 16] (q/k head 12, v head 4)",
               qkv_sizes=(48, 48, 16))
attention_case("attention.attention_bias_1nst", "attention_bias (1, N, S, T)", attn_bias_shape=(1, AN, AS))
attention_case("attention.attention_bias_bnst", "attention_bias (B, N, S, T)", attn_bias_shape=(AB, AN, AS))
attention_case("attention.attention_bias_b1st", "attention_bias (B, 1, S, T)", attn_bias_shape=(AB, 1, AS))
attention_case("attention.attention_bias_mask_uni", "attention_bias (1,N,S,T) + mask_index (B) + unidirectional=1",
               attn_bias_shape=(1, AN, AS), mask=np.array([5, 3], np.int32), attrs=dict(unidirectional=1))
attention_case("attention.past_attention_bias", "past P=3 + present + attention_bias (1,N,S,P+S), unidirectional=1",
               past_len=3, attn_bias_shape=(1, AN, AS), attrs=dict(unidirectional=1))
attention_case("attention.scale", "scale=0.5 (instead of 1/sqrt(8))", attrs=dict(scale=0.5))
attention_case("attention.mask_filter_value", "mask_filter_value=-2 (masked keys keep some weight: it is added)",
               mask=_mask2d, attrs=dict(mask_filter_value=-2.0))
attention_case("attention.fully_masked_row", "raw mask (B,T) with row 1 all 0, default mask_filter_value -10000",
               mask=np.array([[1, 1, 1, 0, 1], [0, 0, 0, 0, 0]], np.int32))
attention_case("attention.fully_masked_row_1d", "mask_index (B) lengths [5, 0]: row 1 fully masked",
               mask=np.array([5, 0], np.int32))
attention_case("attention.mask_2d_values", "raw mask (B,T) with values -1, 0, 1, 2 (> 0 keeps, <= 0 masks)",
               mask=np.array([[1, 2, -1, 1, 0], [2, 0, 1, -1, 1]], np.int32))
attention_case("attention.unidirectional_fully_masked", "unidirectional=1 + mask_index (B) lengths [5, 0]",
               mask=np.array([5, 0], np.int32), attrs=dict(unidirectional=1))
attention_case("attention.unidirectional_mfv", "unidirectional=1 + raw mask (B,T) + mask_filter_value=-2: future keys "
               "stay fully excluded (the causal mask does not use mask_filter_value)", mask=_mask2d,
               attrs=dict(unidirectional=1, mask_filter_value=-2.0))
attention_case("attention.mask_filter_value_lowest", "mask_index (B) lengths [5, 0] + mask_filter_value=-3.4028235e38 "
               "(float lowest, as ORT's BERT fusion writes it)", mask=np.array([5, 0], np.int32),
               attrs=dict(mask_filter_value=float(np.finfo(np.float32).min)))
attention_case("attention.fully_masked_row_mfv1e9", "raw mask (B,T) row 1 all 0, mask_filter_value=-1e9",
               mask=np.array([[1, 1, 1, 0, 1], [0, 0, 0, 0, 0]], np.int32), attrs=dict(mask_filter_value=-1e9))


# ---- com.microsoft MultiHeadAttention: B=2, S=5, L=7 (cross), hidden 32, 4 heads of 8 ----------------------
MB, MS_, ML, MD, MN = 2, 5, 7, 32, 4
MH = MD // MN


def mha_case(stem, config, fmt="3d", L=None, bias=False, kpm=None, ab_shape=None, past_len=0, attrs=None,
             Dv=None, atol=ATOL, present=None):
    attrs = dict(attrs or {})

    @case(stem, "MultiHeadAttention", config)
    def fn(rng):
        Lk = L or MS_
        dv = Dv or MD
        q3 = randn(rng, (MB, MS_, MD))
        k3 = randn(rng, (MB, Lk, MD))
        v3 = randn(rng, (MB, Lk, dv))
        b = randn(rng, (2 * MD + dv,), 0.2) if bias else None
        if fmt == "3d":
            query, key, value = q3, k3, v3
        elif fmt == "bnsh_kv":
            query, key, value = q3, bsd_to_bnsh(k3, MN).copy(), bsd_to_bnsh(v3, MN).copy()
        elif fmt == "packed_qkv":
            query = np.stack([q3.reshape(MB, MS_, MN, MH), k3.reshape(MB, MS_, MN, MH),
                              v3.reshape(MB, MS_, MN, MH)], 3).astype(F32)
            key = value = None
        elif fmt == "packed_kv":
            query, value = q3, None
            key = np.stack([k3.reshape(MB, Lk, MN, MH), v3.reshape(MB, Lk, MN, MH)], 3).astype(F32)
        m = kpm(rng) if callable(kpm) else kpm
        pk = randn(rng, (MB, MN, past_len, MH)) if past_len else None
        pv = randn(rng, (MB, MN, past_len, dv // MN)) if past_len else None
        T = past_len + Lk
        ab = randn(rng, ab_shape[:3] + (T,)) if ab_shape else None
        ins = [X("query", query), X("key", key) if key is not None else None,
               X("value", value) if value is not None else None, W("bias", b) if b is not None else None,
               X("key_padding_mask", m) if m is not None else None, X("attention_bias", ab) if ab is not None else None,
               X("past_key", pk) if pk is not None else None, X("past_value", pv) if pv is not None else None]
        want_present = bool(past_len) if present is None else present
        outs = [O("output")] + ([O("present_key"), O("present_value")] if want_present else [])
        ref = ref_mha(query, key, value, b, m, ab, pk, pv, MN, attrs.get("scale"), attrs.get("unidirectional", 0),
                      attrs.get("mask_filter_value", -10000.0), want_present)
        return dict(inputs=ins, outputs=outs, attrs=dict(num_heads=MN, **attrs), ref=ref, atol=atol)
    return fn


mha_case("mha.separate", "query/key/value (B,S,32) separate, no bias")
mha_case("mha.separate_bias", "query/key/value (B,S,32) + bias (96)", bias=True)
mha_case("mha.v_hidden_16", "value hidden 16 (v head 4) + bias (80)", bias=True, Dv=16)
mha_case("mha.cross", "cross attention: key/value (B,L=7,32) + bias", L=ML, bias=True)
mha_case("mha.cross_bnsh_kv", "cross attention with precomputed key/value (B,N,L=7,H), no bias", fmt="bnsh_kv", L=ML)
mha_case("mha.cross_bnsh_kv_bias", "precomputed key/value (B,N,L=7,H) + bias (96): only bias[0:32] (query) is used",
         fmt="bnsh_kv", L=ML, bias=True)
mha_case("mha.cross_present", "cross L=7 + bias, no past, present_key/present_value (B,N,L,H) requested", L=ML,
         bias=True, present=True)
mha_case("mha.packed_qkv", "packed QKV query (B,S,N,3,H), key/value omitted", fmt="packed_qkv")
mha_case("mha.packed_qkv_bias", "packed QKV query (B,S,N,3,H) + bias (96)", fmt="packed_qkv", bias=True)
mha_case("mha.packed_kv", "packed KV key (B,L=7,N,2,H), value omitted", fmt="packed_kv", L=ML)
mha_case("mha.packed_kv_bias", "packed KV key (B,L=7,N,2,H) + bias (96)", fmt="packed_kv", L=ML, bias=True)
mha_case("mha.key_padding_mask_2d", "cross L=7 + bias + key_padding_mask (B,L) int32, row 1 padded from 4",
         L=ML, bias=True, kpm=np.array([[1] * 7, [1] * 4 + [0] * 3], np.int32))
mha_case("mha.key_padding_mask_1d", "cross L=7 + bias + key_padding_mask (B) lengths [7, 3]",
         L=ML, bias=True, kpm=np.array([7, 3], np.int32))
mha_case("mha.key_padding_mask_3d", "self + mask (B,S,T) int32 0/1", bias=True,
         kpm=lambda rng: np.concatenate([np.ones((MB, MS_, 1), np.int32),
                                         (rng.random((MB, MS_, MS_ - 1)) > 0.35).astype(np.int32)], 2))
mha_case("mha.fully_masked_row", "self + bias + key_padding_mask (B,T) with row 1 all 0 (default -10000)", bias=True,
         kpm=np.array([[1, 0, 1, 1, 1], [0, 0, 0, 0, 0]], np.int32))
mha_case("mha.mask_filter_value", "cross + key_padding_mask (B,L) + mask_filter_value=-2", L=ML,
         kpm=np.array([[1] * 7, [1] * 4 + [0] * 3], np.int32), attrs=dict(mask_filter_value=-2.0))
mha_case("mha.attention_bias", "cross L=7 + attention_bias (1,N,S,L)", L=ML, bias=True, ab_shape=(1, MN, MS_))
mha_case("mha.attention_bias_bnst", "self + attention_bias (B,N,S,T) + key_padding_mask (B)", bias=True,
         ab_shape=(MB, MN, MS_), kpm=np.array([5, 2], np.int32))
mha_case("mha.past", "self + bias + past_key/past_value (B,N,P=3,H) -> present_key/present_value (B,N,8,H)",
         bias=True, past_len=3)
mha_case("mha.past_unidirectional", "self + bias + past P=3 + present, unidirectional=1", bias=True, past_len=3,
         attrs=dict(unidirectional=1))
mha_case("mha.past_mask_2d", "past P=3 + present, unidirectional=1, key_padding_mask (B, P+S) row 1 left-padded 2",
         bias=True, past_len=3, attrs=dict(unidirectional=1), kpm=np.array([[1] * 8, [0, 0] + [1] * 6], np.int32))
mha_case("mha.unidirectional", "self + bias, unidirectional=1", bias=True, attrs=dict(unidirectional=1))
mha_case("mha.unidirectional_mfv", "self + unidirectional=1 + key_padding_mask (B,T) + mask_filter_value=-2",
         bias=True, attrs=dict(unidirectional=1, mask_filter_value=-2.0),
         kpm=np.array([[1, 1, 0, 1, 1], [1, 1, 1, 0, 0]], np.int32))
mha_case("mha.unidirectional_cross", "cross L=7 + bias, unidirectional=1: rows i < S-1 see keys j <= i, the last row "
         "sees all L keys (ORT quirk)", L=ML, bias=True, attrs=dict(unidirectional=1))
mha_case("mha.scale", "self, scale=0.5", attrs=dict(scale=0.5))


# ---- com.microsoft GroupQueryAttention: 4 q heads, 2 (or 1) kv heads, head size 8 ------------------------
GB, GN, GH, GMAX = 2, 4, 8, 16


def rope_cache(max_len, half, base=10000.0):
    inv = 1.0 / (base ** (np.arange(half) / half))
    ang = np.arange(max_len)[:, None] * inv[None, :]
    return np.cos(ang).astype(F32), np.sin(ang).astype(F32)


def gqa_case(stem, config, S, seqlens, total, past_len=None, KV=2, packed=False, rotary=None, attrs=None,
             ab_shape=None, B=GB, q_std=1.0, atol=ATOL, GH=GH, position_ids=None):
    attrs = dict(attrs or {})
    if rotary is not None:
        GH = 16  # the CPU kernel requires head_size % 16 == 0 with do_rotary=1

    @case(stem, "GroupQueryAttention", config)
    def fn(rng):
        q = randn(rng, (B, S, GN * GH), q_std)
        k = randn(rng, (B, S, KV * GH), q_std)
        v = randn(rng, (B, S, KV * GH))
        pk = randn(rng, (B, KV, past_len, GH)) if past_len is not None else None
        pv = randn(rng, (B, KV, past_len, GH)) if past_len is not None else None
        sk = np.array(seqlens, np.int32)
        tsl = np.array(total, np.int32)
        cos = sin = None
        a = dict(num_heads=GN, kv_num_heads=KV, **attrs)
        if rotary is not None:
            cos, sin = rope_cache(GMAX, GH // 2)
            a.update(do_rotary=1, rotary_interleaved=rotary)
        ab = randn(rng, ab_shape[:3] + (total,)) if ab_shape else None
        query = np.concatenate([q, k, v], -1) if packed else q
        ins = [X("query", query), None if packed else X("key", k), None if packed else X("value", v),
               X("past_key", pk) if pk is not None else None, X("past_value", pv) if pv is not None else None,
               X("seqlens_k", sk), X("total_sequence_length", tsl),
               W("cos_cache", cos) if cos is not None else None, W("sin_cache", sin) if sin is not None else None,
               X("position_ids", np.asarray(position_ids, np.int64)) if position_ids is not None else None,
               X("attention_bias", ab) if ab is not None else None]
        outs = [O("output"), O("present_key"), O("present_value")]
        ref = ref_gqa(query, None if packed else k, None if packed else v, pk, pv, sk, tsl, GN, KV, cos, sin,
                      rotary is not None, rotary or 0, attrs.get("scale"), attrs.get("local_window_size", -1),
                      attrs.get("softcap", 0.0), ab, attrs.get("causal", 1),
                      None if position_ids is None else np.asarray(position_ids, np.int64))
        return dict(inputs=ins, outputs=outs, attrs=a, ref=ref, atol=atol)
    return fn


gqa_case("gqa.prompt", "prompt S=5, no past, seqlens_k [4,4], total 5", S=5, seqlens=[4, 4], total=5)
gqa_case("gqa.prompt_past0", "prompt S=5, past_key/past_value (B,KV,0,H), seqlens_k [4,4], total 5",
         S=5, seqlens=[4, 4], total=5, past_len=0)
gqa_case("gqa.prompt_ragged", "prompt S=5 right-padded batch: seqlens_k [4,2] (row 1 has 3 tokens), total 5",
         S=5, seqlens=[4, 2], total=5)
gqa_case("gqa.prompt_kv1", "prompt S=5, kv_num_heads=1", S=5, seqlens=[4, 4], total=5, KV=1)
gqa_case("gqa.decode", "decode S=1, past (B,KV,6,H), seqlens_k [6,6], total 7", S=1, seqlens=[6, 6], total=7,
         past_len=6)
gqa_case("gqa.decode_ragged", "decode S=1, past (B,KV,6,H), seqlens_k [6,3] (row 1 has 3 past tokens), total 7",
         S=1, seqlens=[6, 3], total=7, past_len=6)
gqa_case("gqa.decode_kv1", "decode S=1, kv_num_heads=1, past 6, seqlens_k [6,6], total 7", S=1, seqlens=[6, 6],
         total=7, past_len=6, KV=1)
gqa_case("gqa.decode_static_cache", "decode S=1, past buffer (B,KV,8,H), seqlens_k [6,4], total 7 (<= buffer)",
         S=1, seqlens=[6, 4], total=7, past_len=8)
gqa_case("gqa.prompt_static_cache", "prompt S=5, past buffer (B,KV,8,H), seqlens_k [4,2], total 5 (<= buffer): "
         "present keeps the buffer length 8", S=5, seqlens=[4, 2], total=5, past_len=8)
gqa_case("gqa.chunk", "subsequent prompt chunk S=3, B=1, past 4, seqlens_k [6], total 7", S=3, seqlens=[6],
         total=7, past_len=4, B=1)
gqa_case("gqa.prompt_rotary", "prompt S=5, head size 16, do_rotary=1, rotary_interleaved=0, cos/sin cache (16, 8)",
         S=5, seqlens=[4, 4], total=5, rotary=0)
gqa_case("gqa.prompt_rotary_interleaved", "prompt S=5, head size 16, do_rotary=1, rotary_interleaved=1", S=5, seqlens=[4, 4],
         total=5, rotary=1)
gqa_case("gqa.prompt_ragged_rotary", "prompt S=5 seqlens_k [4,2], head size 16, do_rotary=1 interleaved=0", S=5,
         seqlens=[4, 2], total=5, rotary=0)
gqa_case("gqa.decode_rotary", "decode S=1, past 6, seqlens_k [6,3], head size 16, do_rotary=1 interleaved=0", S=1,
         seqlens=[6, 3], total=7, past_len=6, rotary=0)
gqa_case("gqa.decode_rotary_interleaved", "decode S=1, past 6, seqlens_k [6,3], head size 16, do_rotary=1 interleaved=1", S=1,
         seqlens=[6, 3], total=7, past_len=6, rotary=1)
gqa_case("gqa.chunk_rotary", "chunk S=3, B=1, past 4, seqlens_k [6], total 7, head size 16, do_rotary=1", S=3, seqlens=[6],
         total=7, past_len=4, B=1, rotary=0)
gqa_case("gqa.packed_qkv", "prompt S=5, packed QKV query (B,S,(4+2*2)*8), key/value omitted", S=5,
         seqlens=[4, 4], total=5, packed=True)
gqa_case("gqa.packed_qkv_decode_rotary", "decode S=1 packed QKV, past 6, seqlens_k [6,5], head size 16, do_rotary=1", S=1,
         seqlens=[6, 5], total=7, past_len=6, packed=True, rotary=0)
gqa_case("gqa.local_window", "prompt S=6, local_window_size=2", S=6, seqlens=[5, 5], total=6,
         attrs=dict(local_window_size=2))
gqa_case("gqa.local_window_decode", "decode S=1, past 6, seqlens_k [6,4], local_window_size=3", S=1,
         seqlens=[6, 4], total=7, past_len=6, attrs=dict(local_window_size=3))
gqa_case("gqa.local_window_rotary", "prompt S=6, head size 16, local_window_size=3, do_rotary=1", S=6,
         seqlens=[5, 5], total=6, rotary=0, attrs=dict(local_window_size=3))
gqa_case("gqa.decode_rotary_position_ids", "decode S=1 past 6 seqlens_k [6,3], head 16, do_rotary=1, "
         "position_ids (B,1) int64 [[9],[2]]", S=1, seqlens=[6, 3], total=7, past_len=6, rotary=0,
         position_ids=[[9], [2]])
gqa_case("gqa.prompt_rotary_position_ids", "prompt S=5, head 16, do_rotary=1, position_ids (B,S) int64 "
         "[[3..7],[0..4]]", S=5, seqlens=[4, 4], total=5, rotary=0, position_ids=[[3, 4, 5, 6, 7], [0, 1, 2, 3, 4]])
gqa_case("gqa.noncausal", "prompt S=5, causal=0 (bidirectional)", S=5, seqlens=[4, 4], total=5, attrs=dict(causal=0))
gqa_case("gqa.softcap", "prompt S=5, softcap=1.5 (q, k std 2)", S=5, seqlens=[4, 4], total=5,
         attrs=dict(softcap=1.5), q_std=2.0)
gqa_case("gqa.softcap_decode", "decode S=1 past 6, softcap=1.5, scale=0.5", S=1, seqlens=[6, 6], total=7,
         past_len=6, attrs=dict(softcap=1.5, scale=0.5), q_std=2.0)
gqa_case("gqa.softcap_attention_bias", "prompt S=5, softcap=1.5 + attention_bias (B,1,S,T) (order: softcap first)",
         S=5, seqlens=[4, 4], total=5, attrs=dict(softcap=1.5), q_std=2.0, ab_shape=(GB, 1, 5))
gqa_case("gqa.scale", "prompt S=5, scale=0.2", S=5, seqlens=[4, 4], total=5, attrs=dict(scale=0.2))
gqa_case("gqa.attention_bias", "prompt S=5, attention_bias (1,N,S,T)", S=5, seqlens=[4, 4], total=5,
         ab_shape=(1, GN, 5))
gqa_case("gqa.decode_attention_bias", "decode S=1 past 6, attention_bias (B,N,1,7), seqlens_k [6,6]", S=1,
         seqlens=[6, 6], total=7, past_len=6, ab_shape=(GB, GN, 1))


# ---- com.microsoft RotaryEmbedding: B=2, S=5, 4 heads of 8, cache (16, 4) -----------------------------------
RB, RS, RN, RH = 2, 5, 4, 8


def rotary_case(stem, config, layout="3d", pos="2d", interleaved=0, rot_dim=0, num_heads=0):
    @case(stem, "RotaryEmbedding", config)
    def fn(rng):
        x = randn(rng, (RB, RS, RN * RH)) if layout == "3d" else randn(rng, (RB, RN, RS, RH))
        if pos == "2d":
            p = rng.integers(0, GMAX - 1, size=(RB, RS)).astype(np.int64)
        else:
            p = np.array([3], np.int64)
        cos, sin = rope_cache(GMAX, (rot_dim or RH) // 2)
        a = dict(interleaved=interleaved)
        if rot_dim:
            a["rotary_embedding_dim"] = rot_dim
        if num_heads:
            a["num_heads"] = num_heads
        ins = [X("input", x), X("position_ids", p), W("cos_cache", cos), W("sin_cache", sin)]
        ref = [ref_rotary(x, p, cos, sin, interleaved, num_heads, rot_dim)]
        return dict(inputs=ins, outputs=[O("output")], attrs=a, ref=ref)
    return fn


rotary_case("rotary.3d", "input (B,S,N*H=32), position_ids (B,S) int64, interleaved=0 (head size from cache)")
rotary_case("rotary.3d_interleaved", "input (B,S,32), position_ids (B,S), interleaved=1", interleaved=1)
rotary_case("rotary.3d_num_heads", "input (B,S,32), num_heads=4, position_ids (B,S)", num_heads=4)
rotary_case("rotary.4d", "input (B,N,S,H), position_ids (B,S), interleaved=0", layout="4d")
rotary_case("rotary.4d_interleaved", "input (B,N,S,H), position_ids (B,S), interleaved=1", layout="4d", interleaved=1)
rotary_case("rotary.offset", "input (B,S,32), position_ids (1) = [3] (offset: position 3+s)", pos="offset")
rotary_case("rotary.offset_4d_interleaved", "input (B,N,S,H), position_ids (1) = [3], interleaved=1", layout="4d",
            pos="offset", interleaved=1)
rotary_case("rotary.partial", "input (B,S,32), num_heads=4, rotary_embedding_dim=4 (< head 8), cache (16,2)",
            rot_dim=4, num_heads=4)
rotary_case("rotary.partial_interleaved", "input (B,S,32), num_heads=4, rotary_embedding_dim=4, interleaved=1",
            rot_dim=4, num_heads=4, interleaved=1)
rotary_case("rotary.partial_4d", "input (B,N,S,H), rotary_embedding_dim=4, num_heads=4", layout="4d", rot_dim=4,
            num_heads=4)


# ---- SkipLayerNormalization / SkipSimplifiedLayerNormalization / SimplifiedLayerNormalization ---------------
LB, LS, LH = 2, 5, 32


def sln_case(stem, config, beta=True, bias=True, skip_shape=None, outputs=("output",), eps=None, simplified=False,
             in_shape=(LB, LS, LH)):
    op = "SkipSimplifiedLayerNormalization" if simplified else "SkipLayerNormalization"

    @case(stem, op, config)
    def fn(rng):
        x = randn(rng, in_shape, 2.0) + F32(0.5)
        sk = randn(rng, skip_shape or in_shape)
        g = (F32(1) + randn(rng, (LH,), 0.2)).astype(F32)
        bt = randn(rng, (LH,), 0.2) if beta and not simplified else None
        bs = randn(rng, (LH,), 0.2) if bias else None
        e = 1e-12 if eps is None else eps
        a = {} if eps is None else dict(epsilon=eps)
        s = (x + sk).astype(F32)
        if bs is not None:
            s = (s + bs).astype(F32)
        if simplified:
            y, inv = rmsnorm(s, g, e)
            mean = None
            ins = [X("input", x), X("skip", sk), W("gamma", g), W("bias", bs) if bs is not None else None]
        else:
            y, mean, inv = layernorm(s, g, bt, e)
            ins = [X("input", x), X("skip", sk), W("gamma", g), W("beta", bt) if bt is not None else None,
                   W("bias", bs) if bs is not None else None]
        vals = dict(output=y, mean=mean, inv_std_var=inv, input_skip_bias_sum=s)
        names = ["output", "mean", "inv_std_var", "input_skip_bias_sum"]
        outs = [O(n) if n in outputs else None for n in names]
        ref = [vals[n] for n in names if n in outputs]
        return dict(inputs=ins, outputs=outs, attrs=a, ref=ref)
    return fn


sln_case("skip_ln.full", "gamma, beta, bias; outputs output + input_skip_bias_sum (mean/inv_std_var empty)",
         outputs=("output", "input_skip_bias_sum"))
sln_case("skip_ln.plain", "gamma only (no beta, no bias); output only", beta=False, bias=False)
sln_case("skip_ln.beta", "gamma, beta, no bias; output only", bias=False)
sln_case("skip_ln.bias_sum", "gamma, bias, no beta; outputs output + input_skip_bias_sum", beta=False,
         outputs=("output", "input_skip_bias_sum"))
sln_case("skip_ln.sum_no_bias", "gamma, beta, no bias; outputs output + input_skip_bias_sum", bias=False,
         outputs=("output", "input_skip_bias_sum"))
sln_case("skip_ln.skip_1sh", "skip broadcast (1,S,H), gamma, beta, bias; output + input_skip_bias_sum",
         skip_shape=(1, LS, LH), outputs=("output", "input_skip_bias_sum"))
sln_case("skip_ln.skip_sh", "skip broadcast (S,H), gamma, beta, bias; output + input_skip_bias_sum",
         skip_shape=(LS, LH), outputs=("output", "input_skip_bias_sum"))
sln_case("skip_ln.mean_inv_std", "all four outputs output, mean, inv_std_var, input_skip_bias_sum",
         outputs=("output", "mean", "inv_std_var", "input_skip_bias_sum"))
sln_case("skip_ln.epsilon", "epsilon=1e-3 (inputs with small variance matter), gamma, beta, bias", eps=1e-3)
sln_case("skip_ln.2d", "input/skip 2-D (tokens=10, H), gamma, beta, bias; output + input_skip_bias_sum",
         in_shape=(LB * LS, LH), outputs=("output", "input_skip_bias_sum"))
sln_case("skip_simplified_ln.2d", "input/skip 2-D (tokens=10, H), gamma, bias; output + input_skip_bias_sum",
         in_shape=(LB * LS, LH), simplified=True, outputs=("output", "input_skip_bias_sum"))
sln_case("skip_simplified_ln.plain", "gamma only; output only", bias=False, simplified=True)
sln_case("skip_simplified_ln.bias_sum", "gamma, bias; outputs output + input_skip_bias_sum", simplified=True,
         outputs=("output", "input_skip_bias_sum"))
sln_case("skip_simplified_ln.sum_no_bias", "gamma, no bias; outputs output + input_skip_bias_sum", bias=False,
         simplified=True, outputs=("output", "input_skip_bias_sum"))
sln_case("skip_simplified_ln.inv_std", "gamma, bias; outputs output, (mean empty), inv_std_var, input_skip_bias_sum",
         simplified=True, outputs=("output", "inv_std_var", "input_skip_bias_sum"))
sln_case("skip_simplified_ln.epsilon", "gamma, bias, epsilon=1e-3", simplified=True, eps=1e-3)


def simplified_case(stem, config, inv_std=False, axis=-1, eps=None, shape=(LB, LS, LH)):
    @case(stem, "SimplifiedLayerNormalization", config)
    def fn(rng):
        x = randn(rng, shape, 2.0) + F32(0.3)
        nshape = shape[axis:] if axis != -1 else shape[-1:]
        g = (F32(1) + randn(rng, nshape, 0.2)).astype(F32)
        e = 1e-5 if eps is None else eps
        a = dict(axis=axis)
        if eps is not None:
            a["epsilon"] = eps
        ax = tuple(range(axis % len(shape), len(shape)))
        xd = x.astype(np.float64)
        inv = 1.0 / np.sqrt((xd * xd).mean(ax, keepdims=True) + e)
        y = (xd * inv * g).astype(F32)
        outs = [O("Y")] + ([O("inv_std_var")] if inv_std else [])
        ref = [y] + ([inv.astype(F32)] if inv_std else [])
        return dict(inputs=[X("X", x), W("scale", g)], outputs=outs, attrs=a, ref=ref, domain="")
    return fn


simplified_case("simplified_ln.basic", "domain \"\" (opset import \"\" 17), axis=-1, default epsilon 1e-5")
simplified_case("simplified_ln.inv_std", "axis=-1, outputs Y + inv_std_var (B,S,1)", inv_std=True)
simplified_case("simplified_ln.epsilon", "axis=-1, epsilon=1e-2", eps=1e-2)
simplified_case("simplified_ln.axis1", "axis=1 on (B,S,H): normalizes over S and H, scale (S,H)", axis=1,
                inv_std=True)


# ---- Gelu family -----------------------------------------------------------------------------------------
def act_case(stem, op, config, fn_ref, bias=False, attrs=None, bias_name="bias", x_name="X", y_name="Y"):
    @case(stem, op, config)
    def fn(rng):
        x = randn(rng, (2, 5, 32), 2.5)
        b = randn(rng, (32,), 0.5) if bias else None
        ins = [X(x_name, x)] + ([W(bias_name, b)] if bias else [])
        xb = x if b is None else (x + b).astype(F32)
        return dict(inputs=ins, outputs=[O(y_name)], attrs=dict(attrs or {}), ref=[fn_ref(xb)])
    return fn


act_case("fast_gelu.basic", "FastGelu", "X (2,5,32), no bias; tanh approximation", gelu_tanh)
act_case("fast_gelu.bias", "FastGelu", "X (2,5,32) + bias (32)", gelu_tanh, bias=True)
act_case("bias_gelu.basic", "BiasGelu", "A (2,5,32) + B (32); erf gelu of A+B", gelu_erf, bias=True, bias_name="B",
         x_name="A", y_name="C")
act_case("gelu.basic", "Gelu", "com.microsoft Gelu, X (2,5,32); erf gelu", gelu_erf)
act_case("quick_gelu.default", "QuickGelu", "default alpha 1.702: x*sigmoid(1.702x)",
         lambda x: (x / (1 + np.exp(-1.702 * x.astype(np.float64)))).astype(F32))
act_case("quick_gelu.alpha", "QuickGelu", "alpha=1.0 (SiLU)",
         lambda x: (x / (1 + np.exp(-1.0 * x.astype(np.float64)))).astype(F32), attrs=dict(alpha=1.0))


# ---- com.microsoft EmbedLayerNormalization: B=2, S=6, vocab 50, hidden 32, 16 positions, 2 segments ------
EB, ES, EV, EH, EP = 2, 6, 50, 32, 16


def embed_case(stem, config, segment=True, mask=None, position_ids=None, outputs=("output",), eps=None):
    @case(stem, "EmbedLayerNormalization", config)
    def fn(rng):
        ids = rng.integers(0, EV, size=(EB, ES)).astype(np.int32)
        seg = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]], np.int32) if segment else None
        we = randn(rng, (EV, EH))
        pe = randn(rng, (EP, EH), 0.5)
        se = randn(rng, (2, EH), 0.5) if segment else None
        g = (F32(1) + randn(rng, (EH,), 0.2)).astype(F32)
        bt = randn(rng, (EH,), 0.2)
        m = np.asarray(mask, np.int32) if mask is not None else None
        pids = np.asarray(position_ids, np.int32) if position_ids is not None else None
        e = 1e-12 if eps is None else eps
        ins = [X("input_ids", ids), X("segment_ids", seg) if segment else None, W("word_embedding", we),
               W("position_embedding", pe), W("segment_embedding", se) if segment else None, W("gamma", g),
               W("beta", bt), X("mask", m) if m is not None else None,
               X("position_ids", pids) if pids is not None else None]
        p = pids if pids is not None else np.arange(ES)[None, :]
        p = np.broadcast_to(p, (EB, ES))
        emb = (we[ids] + pe[p]).astype(F32)
        if segment:
            emb = (emb + se[seg]).astype(F32)
        y, _, _ = layernorm(emb, g, bt, e)
        mi = (m == 1).sum(1).astype(np.int32) if m is not None else np.zeros(EB, np.int32)  # counts entries == 1
        vals = dict(output=y, mask_index=mi, embedding_sum=emb)
        names = ["output", "mask_index", "embedding_sum"]
        outs = [((n, INT32) if n == "mask_index" else O(n)) if n in outputs else None for n in names]
        return dict(inputs=ins, outputs=outs, attrs={} if eps is None else dict(epsilon=eps),
                    ref=[vals[n] for n in names if n in outputs])
    return fn


embed_case("embed_ln.output_only", "input_ids (B,S) int32, segment_ids + segment_embedding, no mask; output only")
embed_case("embed_ln.basic", "input_ids (B,S) int32, segment_ids + segment_embedding, no mask; outputs output + "
           "mask_index (ORT needs >= 2 outputs)", outputs=("output", "mask_index"))
embed_case("embed_ln.no_segment", "no segment_ids / segment_embedding, no mask; outputs output + mask_index",
           segment=False, outputs=("output", "mask_index"))
embed_case("embed_ln.mask", "mask (B,S) int32 [[1]*6, [1,1,1,1,0,0]] -> mask_index output (B)",
           mask=[[1] * 6, [1, 1, 1, 1, 0, 0]], outputs=("output", "mask_index"))
embed_case("embed_ln.mask_hole", "mask with holes [[1,1,0,1,1,1],[1,0,1,0,1,0]] -> mask_index [5, 3] (count of ones, not first zero)",
           mask=[[1, 1, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0]], outputs=("output", "mask_index"))
embed_case("embed_ln.mask_values", "mask with values 2 and -1: mask_index counts entries == 1 only",
           mask=[[1, 2, 1, 1, 0, 1], [1, 1, -1, 1, 2, 0]], outputs=("output", "mask_index"))
embed_case("embed_ln.embedding_sum", "mask + outputs output, mask_index, embedding_sum",
           mask=[[1] * 6, [1, 1, 1, 0, 0, 0]], outputs=("output", "mask_index", "embedding_sum"))
embed_case("embed_ln.no_mask_index", "no mask, outputs output, mask_index (zeros), embedding_sum",
           outputs=("output", "mask_index", "embedding_sum"))
embed_case("embed_ln.position_ids", "position_ids (B,S) int32 input, no segment; output + embedding_sum",
           segment=False, position_ids=[[5, 4, 3, 2, 1, 0], [0, 2, 4, 6, 8, 10]], outputs=("output", "embedding_sum"))
embed_case("embed_ln.position_ids_1s", "position_ids (1,S) int32 input, with segment; output + embedding_sum",
           position_ids=[[3, 4, 5, 6, 7, 8]], outputs=("output", "embedding_sum"))
embed_case("embed_ln.epsilon", "epsilon=1e-5, with mask", eps=1e-5, mask=[[1] * 6, [1] * 3 + [0] * 3],
           outputs=("output", "mask_index"))


# ----------------------------------------------------------------------------------------------------------
# Runner
# ----------------------------------------------------------------------------------------------------------

def run_part_a(only, rows, skipped, verification):
    for stem, op, config, fn in CASES:
        if only and not any(stem.startswith(o) for o in only):
            continue
        rng = np.random.default_rng(zlib.crc32(stem.encode()))
        spec = fn(rng)
        domain = spec.get("domain", MS)
        model = single_op_model(stem, op, spec["inputs"], spec["outputs"], spec["attrs"], domain)
        feeds = {i.name: i.value for i in spec["inputs"] if isinstance(i, X)}
        out_names = [o[0] for o in spec["outputs"] if o is not None]
        try:
            sess = session(model.SerializeToString())
            got = sess.run(out_names, feeds)
        except Exception as e:  # noqa: BLE001
            msg = str(e).strip().replace("\n", " ")
            print(f"SKIP {stem}: {msg[:300]}")
            skipped.append((stem, op, config, msg))
            continue
        ref = spec.get("ref")
        if callable(ref):
            ref = ref()
        diffs = [maxdiff(g, r) for g, r in zip(got, ref)] if ref is not None else []
        worst = max(diffs) if diffs else None
        status = "ok" if worst is not None and worst <= 1e-5 else "MISMATCH"
        nan = any(np.isnan(g).any() for g in got if g.dtype.kind == "f")
        print(f"{stem:40s} {op:34s} numpy-vs-ORT max abs diff {worst:.3g} {status}"
              + ("  (NaN in output)" if nan else ""))
        verification.append((stem, op, worst, diffs))
        path = os.path.join(OUT, stem + ".onnx")
        onnx.save(model, path)
        atol = spec.get("atol", ATOL)
        write_reference(os.path.join(REF, stem), stem + ".onnx", list(feeds), list(feeds.values()), out_names, got,
                        RTOL, atol, {"numpy_reference_max_abs_diff": diffs})
        c = contrib_counts(model)
        notes = counts_str(c) + f"; numpy reimplementation max abs diff {worst:.2g}"
        notes += "; outputs " + " ".join(f"{n}:{list(g.shape)}" for n, g in zip(out_names, got))
        if nan:
            notes += "; output contains NaN"
        if atol != ATOL:
            notes += f"; atol {atol}"
        rows.append((stem + ".onnx", op, config, sha256(path), os.path.getsize(path), notes))


# ----------------------------------------------------------------------------------------------------------
# Part B: ORT transformer optimizer
# ----------------------------------------------------------------------------------------------------------

FAMILIES = {  # family: (candidate model_types, num_heads, hidden_size)
    "bert": (["bert"], 4, 64),
    "gpt2": (["gpt2"], 4, 64),
    "vit": (["vit"], 4, 64),
    "t5": (["t5"], 4, 64),
    "llama": (["gpt2", "phi"], 4, 64),
    "whisper_encoder": (["bart", "bert"], 4, 64),
    "whisper_decoder": (["bart", "bert"], 4, 64),
}
# Optimized exports kept in the repository (~3 MB): TorchScript exports whose fusions together cover every fused op
# kind seen (bert/vit: SkipLayerNormalization + BiasGelu, gpt2: + FastGelu, whisper_encoder: + com.microsoft Gelu,
# llama: SkipSimplifiedLayerNormalization + SimplifiedLayerNormalization). The other exports are still optimized and
# checked (printed) but fuse to the same op kinds (t5: the same as llama), so they are not kept, to keep the
# directory small.
KEEP_B = {"bert.ts17", "gpt2.ts17", "vit.ts17", "whisper_encoder.ts17", "llama.ts17"}


def optimize(path, model_type, num_heads, hidden_size):
    import logging
    from onnxruntime.transformers.optimizer import optimize_model
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    for name in ("fusion_base", "onnx_model", "fusion_utils", "shape_infer_helper", "optimizer"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return optimize_model(path, model_type=model_type, num_heads=num_heads, hidden_size=hidden_size, opt_level=0,
                          use_gpu=False, only_onnxruntime=False)


def run_optimized(model_proto, feeds):
    sess = session(model_proto.SerializeToString())
    want = {i.name: i for i in sess.get_inputs()}
    cast = {}
    type_map = {"tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(float)": np.float32,
                "tensor(bool)": np.bool_}
    for n, v in feeds.items():
        if n in want:
            cast[n] = v.astype(type_map[want[n].type]) if want[n].type in type_map else v
    names = [o.name for o in sess.get_outputs()]
    return cast, names, sess.run(names, cast)


def optimize_one(src_path, stem, families, out_dir, ref_root, in_feeds=None, want=None):
    """Returns (row, used_bytes) or None."""
    fam = stem.split(".")[0]
    model_types, nh, hs = families[fam]
    for mt in model_types:
        try:
            opt = optimize(src_path, mt, nh, hs)
        except Exception as e:  # noqa: BLE001
            print(f"  {stem} model_type={mt}: optimizer failed: {str(e)[:200]}")
            continue
        c = contrib_counts(opt.model)
        if not c:
            print(f"  {stem} model_type={mt}: no com.microsoft ops")
            continue
        feeds = dict(in_feeds)
        cast, names, got = run_optimized(opt.model, feeds)
        diffs = {}
        for n, g in zip(names, got):
            if n in want:
                diffs[n] = maxdiff(g, want[n])
        worst = max(diffs.values()) if diffs else float("nan")
        missing = [n for n in want if n not in diffs]
        print(f"  {stem} model_type={mt}: {counts_str(c)}; max abs diff vs original reference {worst:.3g}"
              + (f"; outputs missing {missing}" if missing else "") + ("" if worst <= 1e-4 else "  MISMATCH > 1e-4"))
        out_stem = stem + ".ortopt"
        path = os.path.join(out_dir, out_stem + ".onnx")
        opt.save_model_to_file(path)
        size = os.path.getsize(path)
        write_reference(os.path.join(ref_root, out_stem), out_stem + ".onnx", list(cast), list(cast.values()), names,
                        got, RTOL, ATOL, {"source": os.path.basename(os.path.realpath(src_path)), "model_type": mt,
                                          "max_abs_diff_vs_source_reference": diffs})
        in_types = " ".join(f"{n}:{v.dtype}" for n, v in cast.items())
        notes = (f"{counts_str(c)}; optimize_model(model_type={mt}, num_heads={nh}, hidden_size={hs}, opt_level=0) "
                 f"of {os.path.basename(os.path.realpath(src_path))}; max abs diff vs its reference {worst:.2g}; inputs {in_types}; "
                 f"{len(opt.model.graph.node)} nodes")
        return (out_stem + ".onnx", "+".join(sorted(c)), f"ORT transformer optimizer, model_type {mt}",
                sha256(path), size, notes), size, c
    return None


def run_part_b(only, rows):
    """Tries every export in MANIFEST-transformers.tsv; keeps the KEEP_B ones that fuse to com.microsoft ops."""
    stems = [l.split("\t")[0][:-len(".onnx")] for l in open(os.path.join(HERE, "MANIFEST-transformers.tsv"))
             .read().splitlines()[1:] if l.strip()]
    for stem in stems:
        if only and not any((stem + ".ortopt").startswith(o) for o in only):
            continue
        fam = stem.split(".")[0]
        if fam not in FAMILIES:
            continue
        src_ref = os.path.join(SRC, "reference", stem)
        io = json.load(open(os.path.join(src_ref, "io.json")))
        feeds = {i["name"]: np.load(os.path.join(src_ref, i["file"])) for i in io["inputs"]}
        want = {o["name"]: np.load(os.path.join(src_ref, o["file"])) for o in io["outputs"]}
        print(f"Part B: {stem}")
        res = optimize_one(os.path.join(SRC, stem + ".onnx"), stem, FAMILIES, OUT, REF, feeds, want)
        if res is None:
            continue
        row, size, c = res
        if stem not in KEEP_B:
            os.remove(os.path.join(OUT, row[0]))
            shutil.rmtree(os.path.join(REF, row[0][:-len(".onnx")]))
            print(f"  {stem}: fuses, but not kept (its fused op kinds are covered by a kept model; size budget)")
            continue
        rows.append(row)


def run_minilm(out_dir, model_path):
    paths = [model_path] if model_path else sorted(glob.glob(os.path.join(HERE, "cache", "paraphrase-MiniLM-L3-v2",
                                                                          "*.onnx")))
    if not paths or not os.path.exists(paths[0]):
        print("MiniLM not found (Models/cache/paraphrase-MiniLM-L3-v2/*.onnx); skipped")
        return
    src = paths[0]
    os.makedirs(out_dir, exist_ok=True)
    m = onnx.load(src, load_external_data=False)
    ty = {TensorProto.INT64: np.int64, TensorProto.INT32: np.int32}
    rng = np.random.default_rng(zlib.crc32(b"paraphrase-MiniLM-L3-v2"))
    B, S = 2, 16
    feeds = {}
    for i in m.graph.input:
        dt = ty[i.type.tensor_type.elem_type]
        if i.name == "input_ids":
            feeds[i.name] = rng.integers(1000, 30000, size=(B, S)).astype(dt)
        elif i.name == "attention_mask":
            a = np.ones((B, S), dt)
            a[1, S - 4:] = 0
            feeds[i.name] = a
        elif i.name == "token_type_ids":
            feeds[i.name] = np.zeros((B, S), dt)
        else:
            raise SystemExit(f"unexpected MiniLM input {i.name}")
    sess = session(m.SerializeToString())
    names = [o.name for o in sess.get_outputs()]
    want = dict(zip(names, sess.run(names, feeds)))
    stem = "paraphrase-MiniLM-L3-v2"
    fam = {"paraphrase-MiniLM-L3-v2": (["bert"], 12, 384)}
    res = optimize_one(src, stem, fam, out_dir, os.path.join(out_dir, "reference"), feeds, want)
    if res:
        row = res[0]
        with open(os.path.join(out_dir, "MANIFEST.tsv"), "w") as f:
            f.write("file\top\tconfig\tsha256\tbytes\tnotes\n")
            f.write("\t".join(str(x) for x in row) + "\n")
        print(f"MiniLM: wrote {os.path.join(out_dir, row[0])} ({row[4]} bytes)")


# ----------------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="stem prefixes (no manifest / SKIPPED.md written)")
    ap.add_argument("--no-part-b", action="store_true")
    ap.add_argument("--minilm", metavar="OUT_DIR", help="only optimize paraphrase-MiniLM-L3-v2 into OUT_DIR")
    ap.add_argument("--minilm-model", metavar="PATH", help="MiniLM .onnx (default Models/cache/paraphrase-MiniLM-L3-v2/*.onnx)")
    args = ap.parse_args()
    if args.minilm:
        run_minilm(args.minilm, args.minilm_model)
        return
    os.makedirs(REF, exist_ok=True)
    if not args.only:
        for f in glob.glob(os.path.join(OUT, "*.onnx")):
            os.remove(f)
        shutil.rmtree(REF)
        os.makedirs(REF)
    rows, skipped, verification = [], [], []
    run_part_a(args.only, rows, skipped, verification)
    if not args.no_part_b:
        run_part_b(args.only, rows)
    bad = [v for v in verification if v[2] is None or v[2] > 1e-5]
    print(f"{len(rows)} models written, {len(skipped)} skipped, {len(bad)} numpy mismatches > 1e-5: "
          + " ".join(v[0] for v in bad))
    if args.only:
        return
    with open(MANIFEST, "w") as f:
        f.write("file\top\tconfig\tsha256\tbytes\tnotes\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    with open(SKIPPED, "w") as f:
        f.write("# Skipped configurations\n\nConfigurations that `Models/make_contrib.py` tried and ONNX Runtime "
                f"{ort.__version__} (CPU) rejected; no model is written for them.\n\n")
        f.write("| stem | op | configuration | ONNX Runtime error |\n|---|---|---|---|\n")
        for stem, op, config, msg in skipped:
            f.write(f"| {stem} | {op} | {config} | {msg.replace('|', '/')} |\n")


if __name__ == "__main__":
    main()
