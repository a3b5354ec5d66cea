//! Throughput benchmark: the engine next to llama.cpp (llama-cpp-python) on the same
//! GGUF, same tokens, same thread count, in the same run; prints tokens/s and ratios,
//! plus the memory the engine holds.
//!
//! `llm-bench --model PATH [--prompt-tokens N] [--gen-tokens N] [--threads N]
//!  [--runs N] [--python PATH | --no-llama-cpp]`
//!
//! The llama.cpp side runs `python3 -c ...` with `llama_cpp` importable; by default the
//! interpreter is `$SIS_REF_PYTHON` or `/root/.cache/sis/venv-ref/bin/python`.

use sis_engine::forward::{forward_in, KvCache, Logits, Workspace};
use sis_engine::parallel::StdThreads;
use sis_engine::sampler::argmax;
use sis_engine::{load_gguf, Model, Parallel};
use std::process::{Command, ExitCode};
use std::time::Instant;

const TEXT: &str = "The history of the printing press begins in the fifteenth century, when \
Johannes Gutenberg combined movable metal type, oil-based ink and a wooden press adapted \
from wine making. Within a few decades printing shops had spread across Europe, books \
became cheaper, literacy grew, and ideas travelled faster than ever before. Scholars \
argue about how much the press changed society, but few doubt that it mattered a great \
deal to science, religion and politics alike over the following centuries.";

const LLAMA_SCRIPT: &str = r#"
import json, sys, time
import llama_cpp
import numpy as np
from llama_cpp import Llama
path, toks, gen, threads, runs = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
m = Llama(path, n_ctx=512, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
best_pp = best_tg = 1e9
out = []
for _ in range(runs):
    m.reset()
    t = time.perf_counter(); m.eval(toks); best_pp = min(best_pp, time.perf_counter() - t)
    out = []
    t = time.perf_counter()
    for _ in range(gen):
        last = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(m.ctx, -1), shape=(m.n_vocab(),))
        nxt = int(last.argmax())
        out.append(nxt)
        m.eval([nxt])
    best_tg = min(best_tg, time.perf_counter() - t)
print(json.dumps({"pp_s": best_pp, "tg_s": best_tg, "tokens": out}))
"#;

struct Args {
    model: String,
    prompt_tokens: usize,
    gen_tokens: usize,
    threads: usize,
    runs: usize,
    python: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        model: String::new(),
        prompt_tokens: 64,
        gen_tokens: 64,
        threads: 1,
        runs: 3,
        python: Some(
            std::env::var("SIS_REF_PYTHON")
                .unwrap_or_else(|_| "/root/.cache/sis/venv-ref/bin/python".into()),
        ),
    };
    let mut it = std::env::args().skip(1);
    while let Some(f) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{f} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|_| format!("bad number {s:?}"));
        match f.as_str() {
            "--model" => a.model = v()?,
            "--prompt-tokens" => a.prompt_tokens = num(v()?)?,
            "--gen-tokens" => a.gen_tokens = num(v()?)?,
            "--threads" => a.threads = num(v()?)?.max(1),
            "--runs" => a.runs = num(v()?)?.max(1),
            "--python" => a.python = Some(v()?),
            "--no-llama-cpp" => a.python = None,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.model.is_empty() {
        return Err(
            "usage: llm-bench --model PATH [--prompt-tokens N] [--gen-tokens N] \
                    [--threads N] [--runs N] [--python PATH | --no-llama-cpp]"
                .into(),
        );
    }
    Ok(a)
}

/// Best-of-`runs` prompt and generation times; returns (pp seconds, gen seconds, tokens).
fn bench_engine(
    model: &Model<'_>,
    par: &dyn Parallel,
    prompt: &[u32],
    gen: usize,
    runs: usize,
) -> Result<(f64, f64, Vec<u32>, usize), String> {
    let (mut best_pp, mut best_tg) = (f64::MAX, f64::MAX);
    let mut out = Vec::new();
    let mut kv = 0;
    let mut ws = Workspace::default();
    for _ in 0..runs {
        let mut cache = KvCache::new(model, 512).map_err(|e| e.to_string())?;
        kv = cache.byte_len();
        let t = Instant::now();
        for chunk in prompt.chunks(64) {
            forward_in(model, &mut cache, &mut ws, par, chunk, Logits::Last)
                .map_err(|e| e.to_string())?;
        }
        best_pp = best_pp.min(t.elapsed().as_secs_f64());
        out.clear();
        let t = Instant::now();
        for _ in 0..gen {
            let nxt = argmax(ws.logits());
            out.push(nxt);
            forward_in(model, &mut cache, &mut ws, par, &[nxt], Logits::Last)
                .map_err(|e| e.to_string())?;
        }
        best_tg = best_tg.min(t.elapsed().as_secs_f64());
    }
    Ok((best_pp, best_tg, out, kv))
}

fn rss_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn run() -> Result<(), String> {
    let a = parse()?;
    let file = std::fs::read(&a.model).map_err(|e| format!("{}: {e}", a.model))?;
    let (model, tok) = load_gguf(&file).map_err(|e| e.to_string())?;
    let mut prompt = Vec::new();
    while prompt.len() < a.prompt_tokens {
        prompt.extend(tok.encode(TEXT));
    }
    prompt.truncate(a.prompt_tokens);
    if prompt.len() + a.gen_tokens > 512 {
        return Err("prompt + generated tokens must fit the 512-token context".into());
    }
    let par = StdThreads::new(a.threads);
    let (pp, tg, ours, kv) = bench_engine(&model, &par, &prompt, a.gen_tokens, a.runs)?;
    let (np, ng) = (prompt.len() as f64, a.gen_tokens as f64);
    println!(
        "model: {} ({} bytes), threads: {}, best of {} runs",
        a.model,
        file.len(),
        a.threads,
        a.runs
    );
    println!(
        "engine    : prompt {:>8.1} tok/s   generation {:>7.1} tok/s",
        np / pp,
        ng / tg
    );
    if let Some(py) = &a.python {
        let toks = format!("{prompt:?}");
        let o = Command::new(py)
            .args(["-c", LLAMA_SCRIPT, &a.model, &toks])
            .arg(a.gen_tokens.to_string())
            .arg(a.threads.to_string())
            .arg(a.runs.to_string())
            .output()
            .map_err(|e| format!("running {py}: {e}"))?;
        let text = String::from_utf8_lossy(&o.stdout);
        let line = text.lines().last().unwrap_or("");
        let field = |k: &str| -> Option<f64> {
            let i = line.find(&format!("\"{k}\": "))? + k.len() + 4;
            line[i..].split([',', '}']).next()?.trim().parse().ok()
        };
        match (o.status.success(), field("pp_s"), field("tg_s")) {
            (true, Some(lpp), Some(ltg)) => {
                println!(
                    "llama.cpp : prompt {:>8.1} tok/s   generation {:>7.1} tok/s",
                    np / lpp,
                    ng / ltg
                );
                println!(
                    "ratio     : prompt {:>8.2}x        generation {:>7.2}x   (engine / llama.cpp)",
                    lpp / pp,
                    ltg / tg
                );
                let theirs: Vec<u32> = line
                    .split("\"tokens\": [")
                    .nth(1)
                    .and_then(|s| s.split(']').next())
                    .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
                    .unwrap_or_default();
                let same = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
                println!(
                    "greedy    : {same} of {} generated tokens identical to llama.cpp",
                    ours.len()
                );
            }
            _ => println!(
                "llama.cpp : not measured ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
        }
    }
    println!(
        "memory    : weights {:.1} MiB (kept quantized, borrowed from the file), KV cache {:.2} MiB at 512 tokens (f16), process RSS {:.1} MiB (peak {:.1} MiB, includes the file)",
        model.weight_bytes() as f64 / 1048576.0,
        kv as f64 / 1048576.0,
        rss_kib("VmRSS:").unwrap_or(0) as f64 / 1024.0,
        rss_kib("VmHWM:").unwrap_or(0) as f64 / 1024.0,
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llm-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
