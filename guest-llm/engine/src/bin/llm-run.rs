//! Host runner: load a model, generate from a prompt, print text and speeds.
//!
//! `llm-run --model PATH --prompt TEXT [--max-tokens N] [--temp T] [--top-k K]
//!  [--top-p P] [--min-p P] [--repeat-penalty R] [--repeat-last-n N]
//!  [--frequency-penalty F] [--presence-penalty P] [--seed S] [--stop TEXT]...
//!  [--chat] [--system TEXT] [--tokenizer PATH] [--context N] [--threads N] [--show-tokens]`
//!
//! Sampling defaults are `SamplerConfig::default()`: greedy, and llama.cpp's top-k 40,
//! top-p 0.95, min-p 0.05 once a temperature is given; penalties off.

use sis_engine::parallel::StdThreads;
use sis_engine::{
    load_gguf, load_llama2c, Detokenizer, SamplerConfig, Session, SessionConfig, StopStrings,
};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

struct Args {
    model: String,
    tokenizer: Option<String>,
    prompt: String,
    max_tokens: usize,
    sampler: SamplerConfig,
    stop: Vec<String>,
    chat: bool,
    system: Option<String>,
    context: Option<usize>,
    threads: usize,
    show_tokens: bool,
}

const USAGE: &str = "usage: llm-run --model PATH --prompt TEXT [--max-tokens N] [--temp T] \
[--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--repeat-last-n N] \
[--frequency-penalty F] [--presence-penalty P] [--seed S] [--stop TEXT]... [--chat] \
[--system TEXT] [--tokenizer PATH] [--context N] [--threads N] [--show-tokens]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        model: String::new(),
        tokenizer: None,
        prompt: String::new(),
        max_tokens: 128,
        sampler: SamplerConfig::default(),
        stop: Vec::new(),
        chat: false,
        system: None,
        context: None,
        threads: 1,
        show_tokens: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(s: String, name: &str) -> Result<T, String> {
            s.parse().map_err(|_| format!("{name}: cannot parse {s:?}"))
        }
        match flag.as_str() {
            "--model" => a.model = val("--model")?,
            "--tokenizer" => a.tokenizer = Some(val("--tokenizer")?),
            "--prompt" => a.prompt = val("--prompt")?,
            "--max-tokens" => a.max_tokens = num(val("--max-tokens")?, "--max-tokens")?,
            "--temp" => a.sampler.temperature = num(val("--temp")?, "--temp")?,
            "--top-k" => a.sampler.top_k = num(val("--top-k")?, "--top-k")?,
            "--top-p" => a.sampler.top_p = num(val("--top-p")?, "--top-p")?,
            "--min-p" => a.sampler.min_p = num(val("--min-p")?, "--min-p")?,
            "--repeat-penalty" => {
                a.sampler.repeat_penalty = num(val("--repeat-penalty")?, "--repeat-penalty")?
            }
            "--repeat-last-n" => {
                a.sampler.repeat_last_n = num(val("--repeat-last-n")?, "--repeat-last-n")?
            }
            "--frequency-penalty" => {
                a.sampler.frequency_penalty =
                    num(val("--frequency-penalty")?, "--frequency-penalty")?
            }
            "--presence-penalty" => {
                a.sampler.presence_penalty = num(val("--presence-penalty")?, "--presence-penalty")?
            }
            "--seed" => a.sampler.seed = num(val("--seed")?, "--seed")?,
            "--stop" => a.stop.push(val("--stop")?),
            "--context" => a.context = Some(num(val("--context")?, "--context")?),
            "--threads" => a.threads = num(val("--threads")?, "--threads")?,
            "--system" => a.system = Some(val("--system")?),
            "--chat" => a.chat = true,
            "--show-tokens" => a.show_tokens = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.model.is_empty() {
        return Err(format!("--model is required\n{USAGE}"));
    }
    Ok(a)
}

fn run() -> Result<(), String> {
    let a = parse_args()?;
    let file = std::fs::read(&a.model).map_err(|e| format!("{}: {e}", a.model))?;
    let tok_file = match &a.tokenizer {
        Some(p) => std::fs::read(p).map_err(|e| format!("{p}: {e}"))?,
        None => Vec::new(),
    };
    let t_load = Instant::now();
    let (model, tok) = if file.starts_with(b"GGUF") {
        load_gguf(&file)
    } else {
        if a.tokenizer.is_none() {
            return Err("llama2.c checkpoints need --tokenizer PATH (tokenizer.bin)".into());
        }
        load_llama2c(&file, &tok_file)
    }
    .map_err(|e| format!("{}: {e}", a.model))?;
    let load_ms = t_load.elapsed().as_secs_f64() * 1e3;

    let prompt = if a.chat {
        let sys = a.system.as_deref().filter(|s| !s.is_empty());
        tok.encode_chat(sys, &a.prompt).map_err(|e| e.to_string())?
    } else {
        tok.encode_prompt(&a.prompt)
    };
    if prompt.is_empty() {
        return Err("the prompt encodes to no tokens".into());
    }
    if a.show_tokens {
        eprintln!("prompt tokens: {prompt:?}");
    }
    let context = a
        .context
        .unwrap_or_else(|| (prompt.len() + a.max_tokens).min(model.config.max_seq_len));
    let par = StdThreads::new(a.threads);
    let mut s = Session::new(
        &model,
        &par,
        SessionConfig {
            context,
            max_new_tokens: a.max_tokens,
            sampler: a.sampler,
            stop_tokens: tok.stop.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    s.feed(&prompt).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    while s.pending() > 0 {
        s.prefill(64).map_err(|e| e.to_string())?;
    }
    let pp = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut detok = Detokenizer::new(&tok, prompt.last().copied());
    let mut stops = StopStrings::new(&a.stop).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut ids = Vec::new();
    while let Some(t) = s.next_token().map_err(|e| e.to_string())? {
        ids.push(t);
        let _ = out.write_all(stops.push(&detok.push(t)).as_bytes());
        let _ = out.flush();
        if stops.matched().is_some() {
            break;
        }
    }
    let tail = stops.push(&detok.finish());
    let _ = writeln!(out, "{tail}{}", stops.finish());
    let _ = out.flush();
    drop(out);
    let gen = t1.elapsed().as_secs_f64();
    if a.show_tokens {
        eprintln!("generated tokens: {ids:?}");
    }
    let n = ids.len();
    eprintln!(
        "[load {load_ms:.1} ms | prompt {} tok in {:.1} ms = {:.1} tok/s | generated {n} tok in {:.1} ms = {:.1} tok/s | stop: {} | weights {:.1} MB, KV cache {:.1} MB]",
        prompt.len(),
        pp * 1e3,
        prompt.len() as f64 / pp,
        gen * 1e3,
        n as f64 / gen.max(1e-9),
        match stops.matched() {
            Some(i) => format!("stop string {:?}", stops.strings()[i]),
            None => format!("{:?}", s.stop_reason()),
        },
        model.weight_bytes() as f64 / 1e6,
        s.kv_bytes() as f64 / 1e6,
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llm-run: {e}");
            ExitCode::FAILURE
        }
    }
}
