#!/usr/bin/env python3
"""Reference values from llama.cpp (llama-cpp-python) for the engine's comparison tests.

For a GGUF model and a prompt this writes JSON with:
  prompt / prompt_tokens     llama.cpp's tokenization (special tokens parsed, BOS as the
                             model's metadata says)
  greedy                     greedy continuation (argmax of llama.cpp's logits) of N steps
  logits                     for every evaluated position p (prompt + greedy steps):
                             full logits (--full) or the top-K (index, value) pairs
  tokenize                   llama.cpp tokenizations (no BOS, no special parsing) of a set
                             of test strings, to check the engine's tokenizer

Usage (inside a venv with llama-cpp-python==0.3.36):
  python scripts/reference/llama_cpp_ref.py MODEL.gguf OUT.json [--prompt TEXT]
         [--steps N] [--full] [--topk K] [--chat]
"""
import argparse
import json

import numpy as np
from llama_cpp import Llama

TOKENIZE_CASES = [
    "Hello world",
    "Once upon a time, there was a robot.",
    "  leading spaces and trailing   ",
    "Numbers 12345 and 3.14159, dates 2024-11-26!",
    "line one\nline two\n\n\tindented",
    "It's we're they'll I'd you've",
    "Über café naïve résumé — emoji 😀 日本語",
    "<|im_start|>user text<|im_end|>",
    "a\u00a0b\u2003c",
    "two  spaces,   three, tab\tand\n\n\nnewlines<table><tr>",
    "<start_of_turn>user\nhi<end_of_turn>",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--prompt", default="Once upon a time, the little robot")
    ap.add_argument("--chat", action="store_true",
                    help="wrap the prompt in the model's chat turns (Gemma's if the "
                         "vocabulary has <start_of_turn>, else ChatML)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--full", action="store_true", help="store full logits")
    ap.add_argument("--topk", type=int, default=64)
    ap.add_argument("--sequential", action="store_true",
                    help="evaluate the prompt one token at a time (llama.cpp's batched and "
                         "token-by-token logits differ by up to ~1 on real models)")
    a = ap.parse_args()

    m = Llama(a.model, n_ctx=512, n_threads=1, n_threads_batch=1, logits_all=True,
              verbose=False, seed=0)
    prompt = a.prompt
    if a.chat:
        gemma = m.tokenize(b"<start_of_turn>", add_bos=False, special=True)
        if len(gemma) == 1:
            prompt = f"<start_of_turn>user\n{prompt.strip()}<end_of_turn>\n<start_of_turn>model\n"
        else:
            prompt = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    default_bos = "true" if m.metadata.get("tokenizer.ggml.model") == "llama" else "false"
    add_bos = m.metadata.get("tokenizer.ggml.add_bos_token", default_bos) == "true"
    toks = m.tokenize(prompt.encode(), add_bos=add_bos, special=True)
    if a.sequential:
        for t in toks:
            m.eval([t])
    else:
        m.eval(toks)
    greedy = []
    for _ in range(a.steps):
        nxt = int(np.argmax(m.scores[m.n_tokens - 1]))
        greedy.append(nxt)
        m.eval([nxt])
    logits = []
    for p in range(m.n_tokens):
        row = np.array(m.scores[p], dtype=np.float64)
        if a.full:
            logits.append([round(float(v), 5) for v in row])
        else:
            idx = np.argsort(-row, kind="stable")[: a.topk]
            logits.append([[int(i), round(float(row[i]), 5)] for i in idx])
    ref = {
        "model": a.model.split("/")[-1],
        "llama_cpp_python": __import__("llama_cpp").__version__,
        "prompt": prompt,
        "prompt_eval": "sequential" if a.sequential else "batch",
        "prompt_tokens": toks,
        "greedy": greedy,
        "logits_kind": "full" if a.full else f"top{a.topk}",
        "logits": logits,
        "tokenize": [
            {"text": t, "tokens": m.tokenize(t.encode(), add_bos=False, special=False)}
            for t in TOKENIZE_CASES
        ],
    }
    with open(a.out, "w") as f:
        json.dump(ref, f, ensure_ascii=False)
    print(f"wrote {a.out}: {len(toks)} prompt tokens, {len(greedy)} greedy steps")


if __name__ == "__main__":
    main()
