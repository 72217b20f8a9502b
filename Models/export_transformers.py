#!/usr/bin/env python3
"""Exports small transformer models with seeded random weights to ONNX, for SwiftONNX's real-model tests.

Nothing is downloaded: every config is built here, with tiny sizes (hidden 64, 2 layers, 4 heads, vocab 1000;
BERT's position table is 2,048 long so that it runs at 2,048 tokens),
and the weights come from `torch.manual_seed(0)` before each model is built (then every 1-D parameter, that is
every bias and norm weight, gets N(0, 0.1) noise so that those paths are not all zeros and ones).

Per model, up to three variants in Models/transformers/<model>.<variant>.onnx:
  ts17      TorchScript exporter (dynamo=False), opset 17, dynamic_axes for batch and sequence
  dynamo18  dynamo exporter, opset 18, dynamic_shapes (torch.export.Dim)
  dynamo23  dynamo exporter, opset 23: SDPA becomes ai.onnx Attention, and onnxscript's opset-23 fusions
            (run by the exporter's optimize step) make RMSNormalization / RotaryEmbedding where they match
A variant that cannot be exported (or that ONNX Runtime cannot run) is skipped with the reason printed; the
manifest then has no row for it. Each export is also checked in ONNX Runtime against torch on "probe" inputs with
other batch/sequence sizes and a padded attention mask (a trace can bake shapes or an all-ones mask in); a
mismatch prints WARN. Workarounds in build(): Llama gets explicit [batch, sequence] position ids (for
RotaryEmbedding's cache shape), T5 a SDPA variant with an explicit contiguous clone, and the dynamo exports pass
grouped KV heads to SDPA with enable_gqa (TRANSFORMERS_SDPA_FORCE_GQA), so opset 23 has a true GQA Attention.

Weights are stored inside each .onnx file (no external data). Then:
  Models/transformers/inputs.json           per file: input shapes, dtypes, seeded generators (reproducible)
  Models/transformers/reference/<stem>/     input_<i>.npy / output_<i>.npy in graph order (ONNX Runtime, CPU,
                                            1 thread) and io.json with the names, tolerances, ORT-vs-torch diff
  Models/MANIFEST-transformers.tsv          file, model, exporter, opset, sha256, bytes, inputs, notes

Input generators (inputs.json "gen"): randint [low, high) int64, normal(std) float32, mask = int64 ones with
row b zero from lengths[b] on; each input has its own seed (crc32("<model>/<input name>"), the same for all
variants of a model) used as numpy.random.default_rng(seed).

Usage (in the export venv, see Models/requirements-export.txt):
  .venv-export/bin/python Models/export_transformers.py [--only bert gpt2 ...] [--variants ts17 dynamo23]
"""
import argparse
import collections
import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "transformers")
REF = os.path.join(OUT, "reference")
MANIFEST = os.path.join(HERE, "MANIFEST-transformers.tsv")

VARIANTS = {  # name: (exporter, opset)
    "ts17": ("torchscript", 17),
    "dynamo18": ("dynamo", 18),
    "dynamo23": ("dynamo", 23),
}
RTOL, ATOL = 1e-3, 1e-4
BATCH, SEQ, VOCAB = 2, 16, 1000
# Ops worth calling out in the manifest notes (the fused / newer ops a runtime must implement).
NOTABLE = ["Attention", "RotaryEmbedding", "RMSNormalization", "LayerNormalization", "Gelu",
           "SimplifiedLayerNormalization", "SkipLayerNormalization", "MultiHeadAttention",
           "GroupQueryAttention", "FastGelu", "BiasGelu", "Erf", "Softmax", "Trilu", "Einsum"]


# ----------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------

def seed_for(model, name):
    return zlib.crc32(f"{model}/{name}".encode())


def I(name, shape, dims, gen, **kw):
    """An input spec: shape (concrete), dims (symbolic name or None per axis), generator and its parameters."""
    return dict(name=name, shape=list(shape), dims=list(dims), gen=gen, **kw)


def perturb_1d(module, std=0.1):
    import torch
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            if p.dim() == 1:
                p.add_(torch.randn(p.shape, generator=g) * std)
    return module


def register_sdpa_contiguous():
    import torch
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def sdpa_contiguous(*args, **kwargs):
        out, weights = sdpa_attention_forward(*args, **kwargs)
        return torch.ops.aten.clone.default(out, memory_format=torch.contiguous_format), weights
    AttentionInterface.register("sdpa_contiguous", sdpa_contiguous)
    # Without a mask function of the same name, transformers makes no mask at all (no padding, no causality).
    AttentionMaskInterface.register("sdpa_contiguous", sdpa_mask)


def tiny_whisper():
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    cfg = WhisperConfig(
        vocab_size=VOCAB, num_mel_bins=16, d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=16, max_target_positions=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=3, suppress_tokens=None, begin_suppress_tokens=None)
    torch.manual_seed(0)
    return perturb_1d(WhisperForConditionalGeneration(cfg).eval())


def build(model):
    """Returns (torch module whose forward takes the inputs by name and returns a tuple, inputs, outputs, note).
    outputs: list of (name, symbolic dims)."""
    import torch
    import transformers as tf

    if model == "bert":
        # 2,048 positions: the memory figure runs this export at 2,048 tokens
        cfg = tf.BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=128, max_position_embeddings=2048, type_vocab_size=2)
        torch.manual_seed(0)
        m = perturb_1d(tf.BertModel(cfg).eval())

        class W(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, token_type_ids):
                o = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return o.last_hidden_state, o.pooler_output
        ins = [I("input_ids", [BATCH, SEQ], ["batch", "sequence"], "randint", low=0, high=VOCAB),
               I("attention_mask", [BATCH, SEQ], ["batch", "sequence"], "mask", lengths=[SEQ, SEQ - 4]),
               I("token_type_ids", [BATCH, SEQ], ["batch", "sequence"], "randint", low=0, high=2)]
        outs = [("last_hidden_state", ["batch", "sequence", None]), ("pooler_output", ["batch", None])]
        return W(), ins, outs, "BertModel; row 1 of attention_mask has 4 trailing zeros"

    if model == "gpt2":
        cfg = tf.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4, n_inner=128,
                            use_cache=False, bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
        torch.manual_seed(0)
        m = perturb_1d(tf.GPT2LMHeadModel(cfg).eval())

        class W(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                return (self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits,)
        ins = [I("input_ids", [BATCH, SEQ], ["batch", "sequence"], "randint", low=0, high=VOCAB),
               I("attention_mask", [BATCH, SEQ], ["batch", "sequence"], "mask", lengths=[SEQ, SEQ])]
        outs = [("logits", ["batch", "sequence", None])]
        return W(), ins, outs, "GPT2LMHeadModel, no past, gelu_new (tanh formula), tied embeddings"

    if model == "llama":
        cfg = tf.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                             rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False, use_cache=False,
                             pad_token_id=0, bos_token_id=1, eos_token_id=2)
        torch.manual_seed(0)
        m = perturb_1d(tf.LlamaForCausalLM(cfg).eval())

        class W(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                # Explicit position ids of shape [batch, sequence] (what the model makes itself is [1, sequence]):
                # then the rotary cos/sin have the batch dim, as opset 23's RotaryEmbedding requires of them
                # without position_ids (onnxscript's fusion otherwise gives [1, sequence, 8] caches, which ONNX
                # Runtime rejects for batch 2).
                b, n = input_ids.shape
                pos = torch.arange(n, dtype=torch.int64, device=input_ids.device).unsqueeze(0).expand(b, n)
                return (self.m(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos,
                               use_cache=False).logits,)
        ins = [I("input_ids", [BATCH, SEQ], ["batch", "sequence"], "randint", low=0, high=VOCAB),
               I("attention_mask", [BATCH, SEQ], ["batch", "sequence"], "mask", lengths=[SEQ, SEQ])]
        outs = [("logits", ["batch", "sequence", None])]
        return W(), ins, outs, ("LlamaForCausalLM, 4 query heads / 2 KV heads, rotary, RMSNorm, SiLU MLP, no past; "
                                "position ids arange(sequence) expanded to the batch")

    if model == "vit":
        cfg = tf.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=128)
        torch.manual_seed(0)
        m = perturb_1d(tf.ViTModel(cfg).eval())

        class W(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = m

            def forward(self, pixel_values):
                o = self.m(pixel_values=pixel_values)
                return o.last_hidden_state, o.pooler_output
        ins = [I("pixel_values", [BATCH, 3, 32, 32], ["batch", None, None, None], "normal", std=1.0)]
        outs = [("last_hidden_state", ["batch", None, None]), ("pooler_output", ["batch", None])]
        return W(), ins, outs, "ViTModel, 32x32 image, 8x8 patches (16 patches + CLS)"

    if model == "whisper_encoder":
        m = tiny_whisper().model.encoder

        class W(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = m

            def forward(self, input_features):
                return (self.m(input_features=input_features).last_hidden_state,)
        # Whisper's encoder requires exactly 2 * max_source_positions frames: only the batch is dynamic.
        ins = [I("input_features", [BATCH, 16, 32], ["batch", None, None], "normal", std=1.0)]
        outs = [("last_hidden_state", ["batch", None, None])]
        return W(), ins, outs, "Whisper encoder: 16 mel bins x 32 frames (fixed), 16 output positions"

    if model == "whisper_decoder":
        full = tiny_whisper()
        dec, proj = full.model.decoder, full.proj_out

        class W(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.dec, self.proj = dec, proj

            def forward(self, decoder_input_ids, decoder_attention_mask, encoder_hidden_states):
                h = self.dec(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                             encoder_hidden_states=encoder_hidden_states, use_cache=False).last_hidden_state
                return (self.proj(h),)
        ins = [I("decoder_input_ids", [BATCH, SEQ], ["batch", "decoder_sequence"], "randint", low=0, high=VOCAB),
               I("decoder_attention_mask", [BATCH, SEQ], ["batch", "decoder_sequence"], "mask", lengths=[SEQ, SEQ]),
               I("encoder_hidden_states", [BATCH, 16, 64], ["batch", "encoder_sequence", None], "normal", std=1.0)]
        outs = [("logits", ["batch", "decoder_sequence", None])]
        return W(), ins, outs, ("Whisper decoder + proj_out (same weights as whisper_encoder), no past; "
                                "explicit decoder attention mask")

    if model == "t5":
        cfg = tf.T5Config(vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
                          num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=32,
                          feed_forward_proj="relu", decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                          use_cache=False)
        torch.manual_seed(0)
        m = perturb_1d(tf.T5ForConditionalGeneration(cfg).eval())
        # transformers' sdpa attention returns transpose(1, 2).contiguous() of SDPA's output, and T5 reshapes it;
        # torch.export keeps that as a view of the transpose (contiguous() was a no-op for the CPU kernel's
        # layout), which then fails in the ONNX exporter's decomposition ("Cannot view a tensor with shape
        # [b, s, 4, 16] ... as (b, s, 64)"). The same SDPA with an explicit clone to contiguous exports.
        register_sdpa_contiguous()
        for sub in m.modules():
            if getattr(sub, "config", None) is not None:
                sub.config._attn_implementation = "sdpa_contiguous"

        class W(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask, decoder_input_ids):
                return (self.m(input_ids=input_ids, attention_mask=attention_mask,
                               decoder_input_ids=decoder_input_ids, use_cache=False).logits,)
        ins = [I("input_ids", [BATCH, SEQ], ["batch", "sequence"], "randint", low=0, high=VOCAB),
               I("attention_mask", [BATCH, SEQ], ["batch", "sequence"], "mask", lengths=[SEQ, SEQ]),
               I("decoder_input_ids", [BATCH, SEQ], ["batch", "decoder_sequence"], "randint", low=0, high=VOCAB)]
        outs = [("logits", ["batch", "decoder_sequence", None])]
        return W(), ins, outs, ("T5ForConditionalGeneration (encoder-decoder), relative position buckets, T5 RMS "
                                "LayerNorm, ReLU FFN; SDPA + explicit contiguous clone (see build)")

    raise ValueError(model)


MODELS = ["bert", "gpt2", "llama", "vit", "whisper_encoder", "whisper_decoder", "t5"]


PROBE_DIMS = {"batch": 3, "sequence": 11, "decoder_sequence": 9, "encoder_sequence": 7}


def probe_specs(specs):
    """Other sizes for every symbolic dim, and 3 trailing zeros in the last row of every mask: to check that an
    export really has dynamic shapes and does not ignore the mask (a trace can bake either in)."""
    out = []
    for s in specs:
        p = dict(s, shape=[PROBE_DIMS[d] if d else n for d, n in zip(s["dims"], s["shape"])])
        if s["gen"] == "mask":
            b, n = p["shape"]
            p["lengths"] = [n] * (b - 1) + [n - 3]
        out.append(p)
    return out


def make_inputs(model, specs, salt=""):
    arrays = []
    for s in specs:
        rng = np.random.default_rng(seed_for(model, s["name"] + salt))
        if s["gen"] == "randint":
            a = rng.integers(s["low"], s["high"], size=s["shape"], dtype=np.int64)
        elif s["gen"] == "normal":
            a = (rng.standard_normal(s["shape"]) * s["std"]).astype(np.float32)
        elif s["gen"] == "mask":
            a = np.ones(s["shape"], dtype=np.int64)
            for b, n in enumerate(s["lengths"]):
                a[b, n:] = 0
        else:
            raise ValueError(s["gen"])
        arrays.append(a)
    return arrays


# ----------------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------------

def export(module, specs, outs, args, path, variant):
    import onnx
    import torch
    exporter, opset = VARIANTS[variant]
    in_names = [s["name"] for s in specs]
    out_names = [o[0] for o in outs]
    if exporter == "torchscript":
        dyn = {}
        for s in specs:
            d = {i: n for i, n in enumerate(s["dims"]) if n}
            if d:
                dyn[s["name"]] = d
        for name, dims in outs:
            d = {i: n for i, n in enumerate(dims) if n}
            if d:
                dyn[name] = d
        torch.onnx.export(module, tuple(args), path, dynamo=False, opset_version=opset, input_names=in_names,
                          output_names=out_names, dynamic_axes=dyn, do_constant_folding=True)
    else:
        dims = {}
        shapes = {}
        for s in specs:
            d = {}
            for i, n in enumerate(s["dims"]):
                if n:
                    dims.setdefault(n, torch.export.Dim(n, min=1, max=4096))
                    d[i] = dims[n]
            shapes[s["name"]] = d or None
        prog = torch.onnx.export(module, tuple(args), dynamo=True, opset_version=opset, input_names=in_names,
                                 output_names=out_names, dynamic_shapes=shapes, external_data=False,
                                 optimize=True, verbose=False)
        prog.save(path, external_data=False)
    # Weights inside the file: re-save if anything went to external data.
    m = onnx.load(path, load_external_data=True)
    ext = [t.name for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    sidecars = [f for f in os.listdir(os.path.dirname(path))
                if f.startswith(os.path.basename(path)) and f != os.path.basename(path)]
    if ext or sidecars:
        onnx.save(m, path, save_as_external_data=False)
        for f in sidecars:
            os.remove(os.path.join(os.path.dirname(path), f))
    # The dynamo exporter annotates every node with its torch module path and FX node (metadata_props); they
    # take about a third of these small files, so they go (the graph is unchanged).
    if any(n.metadata_props for n in m.graph.node):
        for n in m.graph.node:
            del n.metadata_props[:]
        onnx.save(m, path, save_as_external_data=False)
    onnx.checker.check_model(path, full_check=False)
    return onnx.load(path)


def op_histogram(m):
    c = collections.Counter()

    def walk(g):
        for n in g.node:
            c[(n.domain or "ai.onnx") + "::" + n.op_type if n.domain not in ("", "ai.onnx") else n.op_type] += 1
            for a in n.attribute:
                if a.g is not None and a.g.node:
                    walk(a.g)
                for sg in a.graphs:
                    walk(sg)
    walk(m.graph)
    for f in m.functions:
        for n in f.node:
            c["(fn)" + n.op_type] += 1
    return c


def describe_io(vi):
    import onnx
    t = vi.type.tensor_type
    dt = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
    dims = [d.dim_param if d.dim_param else (str(d.dim_value) if d.HasField("dim_value") else "?")
            for d in t.shape.dim]
    return f"{vi.name}:{dt}:[{','.join(dims)}]"


def ort_run(path, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    outs = sess.run(None, {n: feeds[n] for n in names})
    return names, [o.name for o in sess.get_outputs()], outs


def maxabs(want, got):
    if want.shape != got.shape:
        return float("inf")
    return float(np.max(np.abs(want.astype(np.float64) - got.astype(np.float64))))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


@contextlib.contextmanager
def quiet():
    """The exporters print a lot (warnings, progress): keep it in a buffer, shown only on failure."""
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            yield buf


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="model names (default: all)")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    t_start = time.time()

    import logging
    import onnx
    import onnxruntime
    import torch
    import transformers
    torch.set_num_threads(1)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" per export
    transformers.logging.set_verbosity_error()
    os.makedirs(REF, exist_ok=True)
    versions = (f"torch {torch.__version__}, transformers {transformers.__version__}, onnx {onnx.__version__}, "
                f"onnxruntime {onnxruntime.__version__}")
    print(versions)

    inputs_path = os.path.join(OUT, "inputs.json")
    all_inputs = json.load(open(inputs_path)) if os.path.exists(inputs_path) else {}
    rows = {}
    if os.path.exists(MANIFEST):
        with open(MANIFEST) as f:
            head = f.readline().rstrip("\n").split("\t")
            for line in f:
                r = dict(zip(head, line.rstrip("\n").split("\t")))
                rows[r["file"]] = r
    skipped = []

    for model in (args.only or MODELS):
        module, specs, outs, note = build(model)
        arrays = make_inputs(model, specs)
        feeds = {s["name"]: a for s, a in zip(specs, arrays)}
        pspecs = probe_specs(specs)
        parrays = make_inputs(model, pspecs, salt="/probe")
        probe_feeds = {s["name"]: a for s, a in zip(pspecs, parrays)}
        os.environ["TRANSFORMERS_SDPA_FORCE_GQA"] = "0"
        with torch.no_grad():
            want = [t.detach().numpy() for t in module(*[torch.from_numpy(a) for a in arrays])]
            probe_want = [t.detach().numpy() for t in module(*[torch.from_numpy(a) for a in parrays])]
        for variant in args.variants:
            exporter, opset = VARIANTS[variant]
            fname = f"{model}.{variant}.onnx"
            path = os.path.join(OUT, fname)
            t0 = time.time()
            try:
                # A fresh module per variant: after a TorchScript export of the same module object, the dynamo
                # exporter gave a different opset-23 BERT graph that ONNX Runtime rejects (Add on a bool mask).
                module = build(model)[0]
                # Grouped KV heads (llama): transformers repeats K/V to all heads before SDPA unless told to pass
                # enable_gqa=True; then the opset-23 export is one Attention with 4 query and 2 KV heads. The
                # TorchScript exporter cannot convert SDPA with enable_gqa ("not implemented"), so ts17 keeps the
                # repeat (Expand + Reshape). The outputs are the same.
                os.environ["TRANSFORMERS_SDPA_FORCE_GQA"] = "1" if exporter == "dynamo" else "0"
                with quiet() as log:
                    m = export(module, specs, outs, [torch.from_numpy(a) for a in arrays], path, variant)
            except Exception as e:
                reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
                print(f"SKIP {fname}: export failed: {reason}")
                with open(os.path.join(tempfile.gettempdir(), f"export-{model}.{variant}.log"), "w") as f:
                    f.write(log.getvalue() + "\n" + traceback.format_exc())
                skipped.append((fname, reason))
                if os.path.exists(path):
                    os.remove(path)
                rows.pop(fname, None)
                all_inputs.pop(fname, None)
                continue
            t_export = time.time() - t0
            ops = op_histogram(m)
            # ONNX Runtime vs torch
            try:
                in_names, out_names, got = ort_run(path, feeds)
            except Exception as e:
                reason = f"ONNX Runtime failed: {type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
                print(f"SKIP {fname}: {reason}")
                skipped.append((fname, reason))
                os.remove(path)
                rows.pop(fname, None)
                all_inputs.pop(fname, None)
                continue
            diffs = [maxabs(w, g) for w, g in zip(want, got)]
            maxdiff = max(diffs)
            # Other shapes and a padded mask, ORT vs torch (not saved)
            try:
                _, _, pgot = ort_run(path, probe_feeds)
                probe = max(maxabs(w, g) for w, g in zip(probe_want, pgot))
            except Exception as e:
                probe = float("inf")
                print(f"     {fname}: probe inputs fail in ONNX Runtime: {str(e).strip().splitlines()[0][:200]}")
            if not probe <= 1e-4:
                print(f"WARN {fname}: on probe inputs (batch/sequence {PROBE_DIMS}, padded masks) ORT differs "
                      f"from torch by {probe:.3g}")
            # reference
            rdir = os.path.join(REF, fname[:-len(".onnx")])
            os.makedirs(rdir, exist_ok=True)
            for f in os.listdir(rdir):
                os.remove(os.path.join(rdir, f))
            io_json = {"model": fname, "rtol": RTOL, "atol": ATOL, "inputs": [], "outputs": [],
                       "max_abs_diff_ort_vs_torch": diffs}
            for i, n in enumerate(in_names):
                np.save(os.path.join(rdir, f"input_{i}.npy"), feeds[n])
                io_json["inputs"].append({"name": n, "file": f"input_{i}.npy", "dtype": feeds[n].dtype.name,
                                          "shape": list(feeds[n].shape)})
            for i, (n, a) in enumerate(zip(out_names, got)):
                np.save(os.path.join(rdir, f"output_{i}.npy"), a)
                io_json["outputs"].append({"name": n, "file": f"output_{i}.npy", "dtype": a.dtype.name,
                                           "shape": list(a.shape)})
            with open(os.path.join(rdir, "io.json"), "w") as f:
                json.dump(io_json, f, indent=1)
                f.write("\n")
            # inputs.json entry (graph input order; an exporter may drop an unused input)
            graph_inputs = [describe_io(v) for v in m.graph.input]
            graph_outputs = [describe_io(v) for v in m.graph.output]
            dims = {}
            ent_inputs = {}
            for s in specs:
                if s["name"] not in in_names:
                    continue
                e = {k: v for k, v in s.items() if k not in ("name", "dims")}
                e["dtype"] = feeds[s["name"]].dtype.name
                e["seed"] = seed_for(model, s["name"]) if s["gen"] != "mask" else None
                if e["seed"] is None:
                    del e["seed"]
                ent_inputs[s["name"]] = e
                for v in m.graph.input:
                    if v.name == s["name"]:
                        for d, size in zip(v.type.tensor_type.shape.dim, s["shape"]):
                            if d.dim_param:
                                dims[d.dim_param] = size
            all_inputs[fname] = {"model": model, "exporter": exporter, "opset": opset, "dims": dims,
                                 "inputs": ent_inputs, "outputs": [o.split(":")[0] for o in graph_outputs],
                                 "rtol": RTOL, "atol": ATOL}
            notable = [f"{k}x{ops[k]}" for k in NOTABLE if ops.get(k)]
            notable += [f"{k}x{v}" for k, v in sorted(ops.items()) if "::" in k]  # non-ai.onnx domains
            notes = (f"{note}; {len(m.graph.node)} nodes; ops of note: {' '.join(notable) or 'none'}; "
                     f"ORT vs torch max abs diff {maxdiff:.3g} (probe shapes {probe:.3g}); outputs {' '.join(graph_outputs)}")
            if model == "llama":
                notes += ("; K/V enter SDPA with their 2 heads (enable_gqa)" if exporter == "dynamo"
                          else "; K/V repeated to 4 heads before attention (repeat_kv)")
            opset_seen = {o.domain or "ai.onnx": o.version for o in m.opset_import}
            if opset_seen.get("ai.onnx") != opset:
                notes += f"; opset_import {opset_seen}"
            rows[fname] = {"file": fname, "model": model, "exporter": exporter, "opset": str(opset),
                           "sha256": sha256(path), "bytes": str(os.path.getsize(path)),
                           "inputs": " ".join(graph_inputs), "notes": notes}
            print(f"ok   {fname}: {os.path.getsize(path) / 1e6:.2f} MB, {len(m.graph.node)} nodes, export "
                  f"{t_export:.1f}s, ORT vs torch max abs diff {maxdiff:.3g} (probe {probe:.3g}); {' '.join(notable)}")

    doc = ("Inputs of Models/transformers/*.onnx (made by Models/export_transformers.py). Per file: dims = values "
           "of the symbolic dims for these inputs; inputs by name in graph order: shape, dtype, gen: randint "
           "[low, high) or normal(std) from numpy.random.default_rng(seed) (int64 via rng.integers(low, high, "
           "size=shape, dtype=int64), float32 via (rng.standard_normal(shape) * std).astype(float32)), or mask: "
           "int64 ones with row b set to 0 from lengths[b] on. The seed is crc32('<model>/<input name>'), the "
           "same for every variant of a model. Reference inputs and ONNX Runtime outputs are in "
           "reference/<file stem>/ (input_<i>.npy, output_<i>.npy, io.json).")
    with open(inputs_path, "w") as f:
        json.dump({"_doc": doc, **{k: all_inputs[k] for k in sorted(all_inputs) if k != "_doc"}}, f, indent=1)
        f.write("\n")
    cols = ["file", "model", "exporter", "opset", "sha256", "bytes", "inputs", "notes"]
    order = {m: i for i, m in enumerate(MODELS)}
    vorder = {v: i for i, v in enumerate(VARIANTS)}
    with open(MANIFEST, "w") as f:
        f.write("\t".join(cols) + "\n")
        for fname in sorted(rows, key=lambda n: (order.get(n.split(".")[0], 99), vorder.get(n.split(".")[1], 99))):
            f.write("\t".join(rows[fname][c] for c in cols) + "\n")
    for fname, reason in skipped:
        print(f"skipped {fname}: {reason}")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"{versions}; Models/transformers is {total / 1e6:.2f} MB; wall time {time.time() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
