#!/usr/bin/env python3
"""Make the small seeded test models checked into models/test/.

Outputs (all deterministic for a given numpy/gguf version):
  tiny-llama.gguf       llama-architecture GGUF: dim 64, 2 layers, 4 heads / 2 KV heads,
                        FFN 192, context 256, GPT-2 byte-level BPE vocabulary (256 byte
                        symbols + merges trained on a small built-in corpus + ChatML
                        control tokens). Tensor types: Q8_0, Q4_1, F32 and F16.
  tiny-l2c-f32.bin      llama2.c legacy (version 0) float checkpoint, separate classifier.
  tiny-l2c-q8.bin       llama2.c version 2 (Q8_0, group 32) checkpoint, shared classifier.
  tiny-tokenizer.bin    llama2.c tokenizer.bin for both llama2.c checkpoints.
  tiny-l2c-ref.json     reference logits (float64 numpy forward pass written from the
                        llama2.c run.c math) for both llama2.c checkpoints.
  tiny-gemma3.gguf      gemma3-architecture GGUF: dim 256, 2 layers (one local with a
                        4-position sliding window, one global), 3 query heads / 1 KV head
                        of 128, FFN 256, SentencePiece vocabulary (control tokens, Gemma's
                        turn tokens, user-defined newline/space runs, 256 byte tokens,
                        scored pieces). Tensor types: Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K,
                        Q8_0 (embedding, tied classifier) and F32 norms.

Usage: python3 scripts/make-test-models.py [OUT_DIR]   (needs numpy and gguf)
"""
import json
import os
import struct
import sys
from collections import Counter

import numpy as np

SEED = 20251126
CORPUS = """Once upon a time there was a little robot who lived in a small house by the sea.
The robot liked to count the waves: one, two, three, four, five. Every morning the sun
rose over the water and the robot said hello to the birds. What is the capital of France?
The capital of France is Paris. The quick brown fox jumps over the lazy dog. It's 2024 and
we're testing a tiny model; they'll see that it works. Hello, world! Numbers like 12345
and 67890 are split into digits. Über café naïve résumé — emoji 😀 and 日本語 text too."""

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def train_bpe(text, n_merges):
    """Tiny BPE trainer over space-prefixed words (enough to give real merges)."""
    b2u = bytes_to_unicode()
    words = Counter()
    for i, w in enumerate(text.split()):
        piece = (" " if i else "") + w
        words[tuple(b2u[b] for b in piece.encode())] += 1
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        new = Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] += c
        words = new
    return merges


def make_gguf(path, rng):
    import gguf
    from gguf import GGMLQuantizationType as Q

    b2u = bytes_to_unicode()
    merges = train_bpe(CORPUS, 200)
    tokens = list(SPECIALS) + [b2u[b] for b in range(256)]
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            tokens.append(a + b)
            seen.add(a + b)
    types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
    vocab = len(tokens)

    dim, hidden, layers, heads, kv_heads, ctx = 64, 192, 2, 4, 2, 256
    hd = dim // heads
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("sis tiny test model")
    w.add_block_count(layers)
    w.add_context_length(ctx)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(hidden)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hd)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([f"{a} {b}" for a, b in merges])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def add(name, arr, qtype):
        if qtype in (Q.F32,):
            w.add_tensor(name, arr.astype(np.float32))
        elif qtype == Q.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)

    add("token_embd.weight", normal((vocab, dim), 1.0), Q.Q8_0)
    for i in range(layers):
        # Layer 0 mostly Q4_1, layer 1 mostly Q8_0, one F32 matrix: every path is used.
        big = Q.Q4_1 if i == 0 else Q.Q8_0
        other = Q.Q8_0 if i == 0 else Q.Q4_1
        add(f"blk.{i}.attn_norm.weight", 1.0 + normal((dim,), 0.1), Q.F32)
        add(f"blk.{i}.attn_q.weight", normal((dim, dim), 1.5 / np.sqrt(dim)), big)
        add(f"blk.{i}.attn_k.weight", normal((kv_heads * hd, dim), 1.5 / np.sqrt(dim)), big)
        add(f"blk.{i}.attn_v.weight", normal((kv_heads * hd, dim), 1.0 / np.sqrt(dim)),
            Q.F32 if i == 1 else other)
        add(f"blk.{i}.attn_output.weight", normal((dim, dim), 1.0 / np.sqrt(dim)), other)
        add(f"blk.{i}.ffn_norm.weight", 1.0 + normal((dim,), 0.1), Q.F32)
        add(f"blk.{i}.ffn_gate.weight", normal((hidden, dim), 1.0 / np.sqrt(dim)), big)
        add(f"blk.{i}.ffn_up.weight", normal((hidden, dim), 1.0 / np.sqrt(dim)), other)
        add(f"blk.{i}.ffn_down.weight", normal((dim, hidden), 1.0 / np.sqrt(hidden)), big)
    add("output_norm.weight", 1.0 + normal((dim,), 0.1), Q.F32)
    add("output.weight", normal((vocab, dim), 3.0 / np.sqrt(dim)), Q.F16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def f16(v):
    return np.float16(v).astype(np.float32)


def q4k_like(x, bits):
    """Q4_K (bits 4) / Q5_K (bits 5) blocks of the rows of x (cols % 256 == 0): per
    sub-block of 32 a 6-bit scale and minimum relative to the block's f16 d and dmin."""
    top = (1 << bits) - 1
    out = bytearray()
    for sb in x.reshape(-1, 256):
        sub = sb.reshape(8, 32)
        mins = np.maximum(0.0, -sub.min(axis=1))
        scales = (sub.max(axis=1) + mins) / top
        d = f16(max(scales.max(), 1e-8) / 63)
        dmin = f16(max(mins.max(), 1e-8) / 63)
        sc = np.clip(np.round(scales / d), 1, 63).astype(np.int64)
        mn = np.clip(np.round(mins / dmin), 0, 63).astype(np.int64)
        q = np.clip(np.round((sub + (dmin * mn)[:, None]) / (d * sc)[:, None]), 0, top)
        q = q.astype(np.int64)
        packed = bytearray(12)
        for j in range(4):
            packed[j] = sc[j] | ((sc[j + 4] >> 4) << 6)
            packed[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6)
            packed[j + 8] = (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4)
        out += np.float16(d).tobytes() + np.float16(dmin).tobytes() + bytes(packed)
        if bits == 5:
            qh = np.zeros(32, np.int64)
            for j in range(8):
                qh |= ((q[j] >> 4) & 1) << j
            out += bytes(qh.astype(np.uint8))
        for c in range(4):
            out += bytes(((q[2 * c] & 15) | ((q[2 * c + 1] & 15) << 4)).astype(np.uint8))
    return np.frombuffer(bytes(out), np.uint8)


def q6k(x):
    """Q6_K blocks: 16 sub-blocks of 16 with int8 scales relative to the f16 d."""
    out = bytearray()
    for sb in x.reshape(-1, 256):
        sub = sb.reshape(16, 16)
        amax = np.abs(sub).max(axis=1)
        scales = np.where(amax > 0, amax / 31.5, 1e-8)
        d = f16(scales.max() / 127)
        sc = np.clip(np.round(scales / d), 1, 127).astype(np.int64)
        q = np.clip(np.round(sub / (d * sc)[:, None]), -32, 31).astype(np.int64) + 32
        v = q.reshape(256)
        ql = np.zeros(128, np.int64)
        qh = np.zeros(64, np.int64)
        for n in range(2):
            b = v[128 * n:128 * n + 128]
            q1, q2, q3, q4 = b[0:32], b[32:64], b[64:96], b[96:128]
            ql[64 * n:64 * n + 32] = (q1 & 15) | ((q3 & 15) << 4)
            ql[64 * n + 32:64 * n + 64] = (q2 & 15) | ((q4 & 15) << 4)
            qh[32 * n:32 * n + 32] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
        out += bytes(ql.astype(np.uint8)) + bytes(qh.astype(np.uint8))
        out += sc.astype(np.int8).tobytes() + np.float16(d).tobytes()
    return np.frombuffer(bytes(out), np.uint8)


GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
GEMMA_USER_DEFINED = ["\n", "\n\n", "  ", "<table>"]


def gemma_vocab():
    """A small SentencePiece vocabulary in Gemma's shape: control tokens, user-defined
    tokens, the 256 byte tokens, the corpus' characters (space as U+2581), then merged
    pieces scored by rank."""
    pieces = list(GEMMA_SPECIALS) + list(GEMMA_USER_DEFINED)
    types = [3] * len(GEMMA_SPECIALS) + [4] * len(GEMMA_USER_DEFINED)
    scores = [-1000.0] * len(pieces)
    for b in range(256):
        pieces.append(f"<0x{b:02X}>")
        types.append(6)
        scores.append(0.0)
    seen = set(pieces)
    text = CORPUS.replace("\n", " ")
    for ch in sorted(set(text.replace(" ", "\u2581"))):
        if ch not in seen and ch not in "日本語😀":  # leave a few to byte fallback
            pieces.append(ch)
            types.append(1)
            scores.append(-100.0)
            seen.add(ch)
    u2b = {v: k for k, v in bytes_to_unicode().items()}
    for rank, (a, b) in enumerate(train_bpe(CORPUS, 240)):
        piece = bytes(u2b[c] for c in a + b).decode("utf-8", errors="ignore")
        piece = piece.replace(" ", "\u2581")
        if piece and piece not in seen:
            pieces.append(piece)
            types.append(1)
            scores.append(-float(rank))
            seen.add(piece)
    return pieces, types, scores


def make_gemma3(path, rng):
    import gguf
    from gguf import GGMLQuantizationType as Q

    pieces, types, scores = gemma_vocab()
    vocab = len(pieces)
    dim, hidden, layers, heads, kv_heads, hd, ctx = 256, 256, 2, 3, 1, 128, 512
    w = gguf.GGUFWriter(path, "gemma3")
    w.add_name("sis tiny gemma3 test model")
    w.add_block_count(layers)
    w.add_context_length(ctx)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(hidden)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_uint32("gemma3.attention.key_length", hd)
    w.add_uint32("gemma3.attention.value_length", hd)
    w.add_float32("gemma3.attention.layer_norm_rms_epsilon", 1e-6)
    w.add_float32("gemma3.rope.freq_base", 100000.0)
    w.add_uint32("gemma3.attention.sliding_window", 4)
    w.add_uint32("gemma3.attention.sliding_window_pattern", 2)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def add(name, arr, qtype):
        if qtype == Q.F32:
            w.add_tensor(name, arr.astype(np.float32))
            return
        if qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
            raw = q6k(arr) if qtype == Q.Q6_K else q4k_like(arr, 4 if qtype == Q.Q4_K else 5)
            raw = raw.reshape(arr.shape[0], -1)
            back = gguf.quants.dequantize(raw, qtype)
            assert np.abs(back - arr).max() <= np.abs(arr).max() * 0.2, name
        else:
            raw = gguf.quants.quantize(arr, qtype)
        w.add_tensor(name, raw, raw_dtype=qtype)

    # Embeddings are scaled by sqrt(dim) = 16 in the model, and the post-norms set the
    # size of each block's contribution to the residual: comparable sizes keep the tied
    # classifier from just repeating the current token.
    add("token_embd.weight", normal((vocab, dim), 0.25), Q.Q8_0)
    kinds = [
        dict(q=Q.Q4_K, k=Q.Q5_K, v=Q.Q6_K, o=Q.Q4_0, gate=Q.Q5_0, up=Q.Q5_1, down=Q.Q6_K),
        dict(q=Q.Q5_0, k=Q.Q4_0, v=Q.Q5_1, o=Q.Q5_0, gate=Q.Q4_K, up=Q.Q5_K, down=Q.Q4_K),
    ]
    for i, t in enumerate(kinds):
        add(f"blk.{i}.attn_norm.weight", 1.0 + normal((dim,), 0.1), Q.F32)
        add(f"blk.{i}.attn_q.weight", normal((heads * hd, dim), 1.0 / np.sqrt(dim)), t["q"])
        add(f"blk.{i}.attn_k.weight", normal((kv_heads * hd, dim), 1.0 / np.sqrt(dim)), t["k"])
        add(f"blk.{i}.attn_v.weight", normal((kv_heads * hd, dim), 1.0 / np.sqrt(dim)), t["v"])
        add(f"blk.{i}.attn_q_norm.weight", 1.0 + normal((hd,), 0.2), Q.F32)
        add(f"blk.{i}.attn_k_norm.weight", 1.0 + normal((hd,), 0.2), Q.F32)
        add(f"blk.{i}.attn_output.weight", normal((dim, heads * hd), 1.0 / np.sqrt(heads * hd)), t["o"])
        add(f"blk.{i}.post_attention_norm.weight", 16.0 + normal((dim,), 2.0), Q.F32)
        add(f"blk.{i}.ffn_norm.weight", 1.0 + normal((dim,), 0.1), Q.F32)
        add(f"blk.{i}.ffn_gate.weight", normal((hidden, dim), 2.0 / np.sqrt(dim)), t["gate"])
        add(f"blk.{i}.ffn_up.weight", normal((hidden, dim), 1.0 / np.sqrt(dim)), t["up"])
        add(f"blk.{i}.ffn_down.weight", normal((dim, hidden), 1.0 / np.sqrt(hidden)), t["down"])
        add(f"blk.{i}.post_ffw_norm.weight", 16.0 + normal((dim,), 2.0), Q.F32)
    add("output_norm.weight", 1.0 + normal((dim,), 0.1), Q.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_l2c_tokenizer(path):
    """llama2.c tokenizer.bin: <unk>, <s>, </s>, 256 byte pieces, then scored pieces."""
    merges = train_bpe(CORPUS, 120)
    pieces = ["<unk>", "\n<s>\n", "\n</s>\n"] + [f"<0x{b:02X}>" for b in range(256)]
    scores = [0.0] * len(pieces)
    u2b = {v: k for k, v in bytes_to_unicode().items()}
    seen = set(pieces)
    # Single characters of the corpus (so text mostly avoids byte fallback), then merges.
    for ch in sorted(set(CORPUS.replace("\n", " "))):
        if ch not in seen and len(ch.encode()) <= 3:
            pieces.append(ch)
            scores.append(-1000.0)
            seen.add(ch)
    for rank, (a, b) in enumerate(merges):
        s = bytes(u2b[c] for c in a + b).decode("utf-8", errors="ignore")
        if s and s not in seen:
            pieces.append(s)
            scores.append(-float(rank))
            seen.add(s)
    enc = [p.encode() for p in pieces]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(e) for e in enc)))
        for e, s in zip(enc, scores):
            f.write(struct.pack("<fi", s, len(e)))
            f.write(e)
    return pieces


def l2c_weights(rng, vocab, dim, hidden, layers, heads, kv_heads):
    hd = dim // heads
    n = lambda shape, std: (rng.standard_normal(shape) * std).astype(np.float32)
    return {
        "emb": n((vocab, dim), 1.0),
        "rms_att": 1.0 + n((layers, dim), 0.1),
        "wq": n((layers, dim, dim), 1.5 / np.sqrt(dim)),
        "wk": n((layers, kv_heads * hd, dim), 1.5 / np.sqrt(dim)),
        "wv": n((layers, kv_heads * hd, dim), 1.0 / np.sqrt(dim)),
        "wo": n((layers, dim, dim), 1.0 / np.sqrt(dim)),
        "rms_ffn": 1.0 + n((layers, dim), 0.1),
        "w1": n((layers, hidden, dim), 1.0 / np.sqrt(dim)),
        "w2": n((layers, dim, hidden), 1.0 / np.sqrt(hidden)),
        "w3": n((layers, hidden, dim), 1.0 / np.sqrt(dim)),
        "rms_final": 1.0 + n((dim,), 0.1),
        "wcls": n((vocab, dim), 3.0 / np.sqrt(dim)),
    }


def write_l2c_v0(path, W, cfg):
    dim, hidden, layers, heads, kv_heads, vocab, seq = cfg
    hd = dim // heads
    with open(path, "wb") as f:
        # Negative vocab size: the classifier is stored separately.
        f.write(struct.pack("<7i", dim, hidden, layers, heads, kv_heads, -vocab, seq))
        for k in ["emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3",
                  "rms_final"]:
            f.write(W[k].astype("<f4").tobytes())
        f.write(np.zeros((2, seq, hd // 2), "<f4").tobytes())  # legacy freq_cis tables
        f.write(W["wcls"].astype("<f4").tobytes())


def q80(w, gs):
    w = w.reshape(-1, gs)
    wmax = np.abs(w).max(axis=1)
    scale = (wmax / 127.0).astype(np.float32)
    q = np.round(w / np.where(scale == 0, 1, scale)[:, None]).astype(np.int8)
    return q, scale


def write_l2c_v2(path, W, cfg, gs):
    """export.py --version 2 layout; returns the dequantized weights."""
    dim, hidden, layers, heads, kv_heads, vocab, seq = cfg
    D = dict(W)
    with open(path, "wb") as f:
        f.write(struct.pack("<Ii", 0x616B3432, 2))
        f.write(struct.pack("<7i", dim, hidden, layers, heads, kv_heads, vocab, seq))
        f.write(struct.pack("<Bi", 1, gs))
        f.write(b"\0" * (256 - f.tell()))
        for k in ["rms_att", "rms_ffn"]:
            f.write(W[k].astype("<f4").tobytes())
        f.write(W["rms_final"].astype("<f4").tobytes())
        mats = [("emb", None)] + [(k, i) for k in ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]
                                  for i in range(layers)]
        for k, i in mats:
            w = W[k] if i is None else W[k][i]
            q, s = q80(w, gs)
            f.write(q.tobytes())
            f.write(s.astype("<f4").tobytes())
            deq = (q.astype(np.float32) * s[:, None]).reshape(w.shape)
            if i is None:
                D[k] = deq
            else:
                D[k] = D[k].copy() if D[k] is W[k] else D[k]
                D[k][i] = deq
    D["wcls"] = D["emb"]
    return D


def ref_forward(W, cfg, tokens, act_group=None):
    """float64 llama2.c forward pass; returns logits for every position. With
    `act_group`, matrix inputs are quantized per group to int8 first, as runq.c does.
    Like the engine (and llama.cpp), q, the K/V cache and the attention probabilities
    are rounded to float16."""
    f16 = lambda a: np.asarray(a, dtype=np.float16).astype(np.float64)
    dim, hidden, layers, heads, kv_heads, vocab, seq = cfg
    hd = dim // heads
    kvd = kv_heads * hd
    W = {k: v.astype(np.float64) for k, v in W.items()}
    kc = np.zeros((layers, len(tokens), kvd))
    vc = np.zeros((layers, len(tokens), kvd))

    def mm(w, x):
        if act_group:
            g = x.reshape(-1, act_group)
            sc = np.abs(g).max(axis=1) / 127.0
            q = np.round(g / np.where(sc == 0, 1, sc)[:, None])
            x = (q * sc[:, None]).reshape(-1)
        return w @ x

    def rms(x, w):
        return w * (x / np.sqrt(np.mean(x * x) + 1e-5))

    def rope(v, pos):
        v = v.copy()
        for i in range(0, len(v), 2):
            freq = 1.0 / (10000.0 ** ((i % hd) / hd))
            c, s = np.cos(pos * freq), np.sin(pos * freq)
            v[i], v[i + 1] = v[i] * c - v[i + 1] * s, v[i] * s + v[i + 1] * c
        return v

    out = []
    for pos, t in enumerate(tokens):
        x = W["emb"][t].copy()
        for l in range(layers):
            xb = rms(x, W["rms_att"][l])
            q = f16(rope(mm(W["wq"][l], xb), pos))
            kc[l, pos] = f16(rope(mm(W["wk"][l], xb), pos))
            vc[l, pos] = f16(mm(W["wv"][l], xb))
            att = np.zeros(dim)
            for h in range(heads):
                g = h // (heads // kv_heads)
                qh = q[h * hd:(h + 1) * hd]
                sc = kc[l, :pos + 1, g * hd:(g + 1) * hd] @ qh / np.sqrt(hd)
                p = np.exp(sc - sc.max())
                p = f16(p / p.sum())
                att[h * hd:(h + 1) * hd] = p @ vc[l, :pos + 1, g * hd:(g + 1) * hd]
            x = x + mm(W["wo"][l], att)
            xb = rms(x, W["rms_ffn"][l])
            a = mm(W["w1"][l], xb)
            x = x + mm(W["w2"][l], (a / (1 + np.exp(-a))) * mm(W["w3"][l], xb))
        out.append(mm(W["wcls"], rms(x, W["rms_final"])))
    return np.array(out)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "models", "test")
    os.makedirs(out, exist_ok=True)
    make_gguf(os.path.join(out, "tiny-llama.gguf"), np.random.default_rng(SEED))
    make_gemma3(os.path.join(out, "tiny-gemma3.gguf"), np.random.default_rng(SEED + 3))

    pieces = make_l2c_tokenizer(os.path.join(out, "tiny-tokenizer.bin"))
    cfg = (64, 160, 2, 4, 2, len(pieces), 128)
    W = l2c_weights(np.random.default_rng(SEED + 1), len(pieces), *cfg[:5])
    write_l2c_v0(os.path.join(out, "tiny-l2c-f32.bin"), W, cfg)
    D = write_l2c_v2(os.path.join(out, "tiny-l2c-q8.bin"), W, cfg, 32)

    # Fixed token ids (not tokenizer output) so the reference tests only the model math.
    tokens = [1] + [int(t) for t in np.random.default_rng(SEED + 2).integers(3, len(pieces), 11)]
    ref = {
        "tokens": tokens,
        "f32_logits": ref_forward(W, cfg, tokens).round(6).tolist(),
        "q8_logits": ref_forward(D, cfg, tokens, act_group=32).round(6).tolist(),
    }
    with open(os.path.join(out, "tiny-l2c-ref.json"), "w") as f:
        json.dump(ref, f)
    for name in sorted(os.listdir(out)):
        print(f"{os.path.getsize(os.path.join(out, name)):>9}  {name}")


if __name__ == "__main__":
    main()
