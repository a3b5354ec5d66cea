//! The engine alone as an aarch64 Linux process, the user-mode reference of
//! `scripts/bench-llm-guest.sh --against user`: run under `qemu-aarch64 -cpu cortex-a72` it does
//! the work of the LLM partition's `llminfer "<prompt>" --max-tokens N` on one core (prompt
//! encoded as plain text, prefilled in steps of the service's chunk, then greedy tokens) and
//! prints prompt speed and generation speed (forward passes per second, as the partition and
//! llama.cpp count them).
//!
//! usage: engine-bench MODEL PROMPT TOKENS [CHUNK]
#![no_std]
#![no_main]

extern crate alloc;

#[path = "../sys.rs"]
mod sys;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::arch::global_asm;
use sis_engine::{load_gguf, SamplerConfig, Serial, Session, SessionConfig};
use sys::{exit, map_file, now, write};

// Linux starts a process with `argc`, then the `argv` pointers, at the stack pointer.
global_asm!(
    ".globl _start",
    "_start:",
    "mov x0, sp",
    "b {main}",
    main = sym bench_main,
);

/// Argument `i` of the process (NUL-terminated C string under `argv`).
///
/// # Safety
/// `sp` is the process's initial stack pointer.
unsafe fn arg(sp: *const usize, i: usize) -> Option<&'static str> {
    // SAFETY: per the Linux process start ABI, argc and argc pointers follow at `sp`.
    unsafe {
        if i >= *sp {
            return None;
        }
        let p = *sp.add(1 + i) as *const u8;
        let mut n = 0;
        while *p.add(n) != 0 {
            n += 1;
        }
        core::str::from_utf8(core::slice::from_raw_parts(p, n)).ok()
    }
}

fn fail(msg: &str) -> ! {
    write(&format!("engine-bench: {msg}\n"));
    exit(1)
}

extern "C" fn bench_main(sp: *const usize) -> ! {
    // SAFETY: `_start` passes the initial stack pointer.
    let a = |i| unsafe { arg(sp, i) };
    let (Some(path), Some(prompt), Some(tokens)) = (a(1), a(2), a(3)) else {
        fail("usage: engine-bench MODEL PROMPT TOKENS [CHUNK]");
    };
    let tokens: usize = tokens
        .parse()
        .unwrap_or_else(|_| fail("TOKENS must be a number"));
    let chunk: usize = a(4)
        .map(|c| c.parse().unwrap_or_else(|_| fail("CHUNK must be a number")))
        .unwrap_or(4);
    let file = map_file(path).unwrap_or_else(|| fail(&format!("cannot map {path}")));
    let (model, tok) = load_gguf(file).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    let ids = tok.encode_prompt(prompt);
    let cfg = SessionConfig {
        context: ids.len() + tokens,
        max_new_tokens: tokens,
        // Greedy, as the partition's bench requests.
        sampler: SamplerConfig::default(),
        stop_tokens: tok.stop.clone(),
    };
    let mut s = Session::new(&model, &Serial, cfg).unwrap_or_else(|e| fail(&format!("{e}")));
    s.feed(&ids).unwrap_or_else(|e| fail(&format!("{e}")));
    let t0 = now();
    while s.prefill(chunk).unwrap_or_else(|e| fail(&format!("{e}"))) > 0 {}
    let prefill_s = now() - t0;
    let (mut passes, mut pass_s) = (0usize, 0.0f64);
    let mut out = Vec::new();
    loop {
        let pass = s.next_token_runs_forward();
        let t = now();
        let next = s.next_token().unwrap_or_else(|e| fail(&format!("{e}")));
        if pass {
            passes += 1;
            pass_s += now() - t;
        }
        match next {
            Some(id) => out.push(id),
            None => break,
        }
    }
    let text = String::from_utf8_lossy(&tok.decode_all(&out)).into_owned();
    write(&format!(
        "engine-bench: prompt_tokens={} prompt_tps={:.3} tokens={} passes={} gen_tps={:.3} text={:?}\n",
        ids.len(),
        ids.len() as f64 / prefill_s,
        out.len(),
        passes,
        passes as f64 / pass_s,
        text
    ));
    exit(0)
}
