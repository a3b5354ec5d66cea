#!/usr/bin/env python3
"""Reference token sequences from llama.cpp's sampler chain, for the engine's sampling tests.

The chain is the one llama.cpp's common/sampling.cpp builds with its default sampler order:
penalties -> top-k -> top-p -> min-p -> temperature -> dist (DRY, top-n-sigma, typical-p and
XTC are off by default and left out), built through llama-cpp-python's bindings of the C API.

Two parts:
- "models": for each GGUF test model, greedy decoding with repetition / frequency / presence
  penalties. The prompt tokens are accepted into the chain (as llama.cpp's server and CLI
  do, so the penalty window sees the prompt), the prompt is evaluated as one batch, then
  the chain is applied to the last logits, the chosen token accepted and evaluated, up to
  STEPS tokens or an end-of-generation token (kept in the list).
- "synthetic": the chain alone on logits anyone can recompute exactly (integer hashes
  scaled by a power of two, see `synthetic_logits`), for vocabularies of 50 to 262,144
  tokens, with seeded sampling and every control: the picks depend only on the sampler,
  not on a forward pass whose logits differ from llama.cpp's in the last digits.

Usage (inside a venv with llama-cpp-python==0.3.36):
  python scripts/reference/llama_cpp_sampling_ref.py OUT.json MODEL.gguf...
"""
import ctypes
import json
import sys

import numpy as np
import llama_cpp as L
from llama_cpp import Llama

PROMPT = "Once upon a time, the little robot"
STEPS = 40

# llama.cpp's defaults (common_params_sampling) with the SIS field names.
DEFAULTS = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0,
                repeat_last_n=64, frequency_penalty=0.0, presence_penalty=0.0, seed=0)
OFF = dict(top_k=0, top_p=1.0, min_p=0.0)

MODEL_CASES = [
    ("greedy_repeat_1.3_last_64", dict(temperature=0.0, repeat_penalty=1.3)),
    ("greedy_repeat_1.3_last_8", dict(temperature=0.0, repeat_penalty=1.3, repeat_last_n=8)),
    ("greedy_repeat_3_last_64", dict(temperature=0.0, repeat_penalty=3.0)),
    ("greedy_freq_presence", dict(temperature=0.0, frequency_penalty=0.5,
                                  presence_penalty=0.5, repeat_last_n=32)),
]

SYNTHETIC_CASES = [
    ("defaults_seed_42", dict(seed=42)),
    ("temp_1_all_off", dict(temperature=1.0, seed=7, **OFF)),
    ("top_p_0.5", dict(temperature=1.0, seed=7, **{**OFF, "top_p": 0.5})),
    ("top_p_0.9_temp_2", dict(temperature=2.0, seed=8, **{**OFF, "top_p": 0.9})),
    ("min_p_0.2", dict(temperature=1.0, seed=7, **{**OFF, "min_p": 0.2})),
    ("top_k_5_temp_1.5", dict(temperature=1.5, seed=3, **{**OFF, "top_k": 5})),
    ("top_k_200", dict(temperature=1.0, seed=5, top_k=200)),
    ("greedy_repeat_1.3", dict(temperature=0.0, repeat_penalty=1.3)),
    ("penalties_sampled", dict(temperature=0.7, repeat_penalty=1.5, repeat_last_n=16,
                               frequency_penalty=0.3, presence_penalty=-0.2, seed=11)),
    ("everything", dict(temperature=0.9, top_k=20, top_p=0.9, min_p=0.02,
                        repeat_penalty=1.2, repeat_last_n=16, frequency_penalty=0.1,
                        presence_penalty=0.2, seed=1234)),
]
# (vocabulary size, steps): Gemma 3's vocabulary is 262,144.
SYNTHETIC_VOCABS = [(50, 48), (3000, 48), (262144, 12)]
SYNTHETIC_HISTORY = 24


def chain_for(s, n_vocab):
    ch = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    add = lambda x: L.llama_sampler_chain_add(ch, x)  # noqa: E731
    add(L.llama_sampler_init_penalties(n_vocab, s["repeat_last_n"], s["repeat_penalty"],
                                       s["frequency_penalty"], s["presence_penalty"]))
    add(L.llama_sampler_init_top_k(s["top_k"]))
    add(L.llama_sampler_init_top_p(s["top_p"], 0))
    add(L.llama_sampler_init_min_p(s["min_p"], 0))
    add(L.llama_sampler_init_temp_ext(s["temperature"], 0.0, 1.0))
    add(L.llama_sampler_init_dist(s["seed"]))
    return ch


TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


def pick(ch, logits):
    """Applies the chain to `logits` (all tokens, id order, unsorted) and accepts the pick."""
    data = np.zeros(len(logits), dtype=TOKEN_DATA)
    data["id"] = np.arange(len(logits), dtype=np.int32)
    data["logit"] = logits
    arr = L.llama_token_data_array(
        data=data.ctypes.data_as(L.llama_token_data_p), size=len(logits), selected=-1,
        sorted=False)
    L.llama_sampler_apply(ch, ctypes.byref(arr))
    tok = int(arr.data[arr.selected].id)
    L.llama_sampler_accept(ch, tok)
    return tok


def run_model_case(m, vocab, prompt_tokens, s):
    n_vocab = L.llama_vocab_n_tokens(vocab)
    ch = chain_for(s, n_vocab)
    for t in prompt_tokens:
        L.llama_sampler_accept(ch, t)
    m.reset()
    m.eval(prompt_tokens)
    out = []
    for _ in range(STEPS):
        tok = pick(ch, np.array(m.scores[m.n_tokens - 1], dtype=np.float32))
        out.append(tok)
        if L.llama_vocab_is_eog(vocab, tok):
            break
        m.eval([tok])
    L.llama_sampler_free(ch)
    return out


def hash32(x):
    """lowbias32 (Chris Wellons) on uint32 arrays."""
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def synthetic_logits(vocab, salt, step):
    """A stable base in [-8, 8) plus per-step noise in [-2, 2), on a 2^-22 grid:
    (4 * (hash(i ^ salt) >> 8 - 2^23) + (hash(hash(i) ^ (salt + step * 0x9e3779b9)) >> 8
    - 2^23)) as f32 / 2^22, all in wrapping u32 / exact i32 arithmetic."""
    i = np.arange(vocab, dtype=np.uint32)
    base = (hash32(i ^ np.uint32(salt)) >> np.uint32(8)).astype(np.int64) - (1 << 23)
    mix = np.uint32((salt + step * 0x9E3779B9) & 0xFFFFFFFF)
    noise = (hash32(hash32(i) ^ mix) >> np.uint32(8)).astype(np.int64) - (1 << 23)
    v = (4 * base + noise).astype(np.int32)
    return v.astype(np.float32) / np.float32(1 << 22)


def synthetic_history(vocab, salt):
    k = np.arange(SYNTHETIC_HISTORY, dtype=np.uint32)
    return [int(t) for t in hash32(k + np.uint32(salt)) % np.uint32(vocab)]


def main():
    out_path, models = sys.argv[1], sys.argv[2:]
    ref = {"llama_cpp_python": L.__version__, "prompt": PROMPT, "steps": STEPS,
           "chain": "penalties, top-k, top-p, min-p, temperature, dist", "models": {},
           "synthetic": []}
    for path in models:
        m = Llama(path, n_ctx=256, n_threads=1, n_threads_batch=1, logits_all=True,
                  verbose=False)
        vocab = L.llama_model_get_vocab(m._model.model)
        default_bos = "true" if m.metadata.get("tokenizer.ggml.model") == "llama" else "false"
        add_bos = m.metadata.get("tokenizer.ggml.add_bos_token", default_bos) == "true"
        toks = m.tokenize(PROMPT.encode(), add_bos=add_bos, special=True)
        cases = [{"name": name, "sampler": {**DEFAULTS, **over},
                  "tokens": run_model_case(m, vocab, toks, {**DEFAULTS, **over})}
                 for name, over in MODEL_CASES]
        ref["models"][path.split("/")[-1]] = {"prompt_tokens": toks, "cases": cases}
        print(f"{path}: {len(cases)} cases")
    for vocab, steps in SYNTHETIC_VOCABS:
        for n, (name, over) in enumerate(SYNTHETIC_CASES):
            s = {**DEFAULTS, **over}
            salt = 1000 * vocab + n
            ch = chain_for(s, vocab)
            history = synthetic_history(vocab, salt)
            for t in history:
                L.llama_sampler_accept(ch, t)
            toks = [pick(ch, synthetic_logits(vocab, salt, step))
                    for step in range(steps)]
            L.llama_sampler_free(ch)
            ref["synthetic"].append({"name": name, "vocab": vocab, "salt": salt,
                                     "sampler": s, "history": history, "tokens": toks})
    print(f"{len(ref['synthetic'])} synthetic cases")
    with open(out_path, "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
