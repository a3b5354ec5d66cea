//! The LLM shell commands (seed syntax): `llmctl load|budget|status|audit|server|run|workers`,
//! `llminfer`, `llmstream`, `llmgraph`, `llmjson`. Inference commands submit their job to the
//! service and wait for it while the scheduler loop keeps serving every server.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::shell::opts::{self, Spec};
use guest_rt::shell::{Command, Invocation};
use guest_rt::sync::IrqMutex;

use crate::graph::{escape_text, Chunk, Chunker, Graph};
use crate::service::args::{self, Kind};
use crate::service::{
    self, audit, shell_loop, JobError, JobKind, JobRequest, ReplySink, Report, ServerSettings,
    SERVICE,
};

/// Commands of this module.
pub static COMMANDS: [Command; 5] = [
    Command {
        name: "llmctl",
        help: "llmctl load|budget|status|audit|server|run|workers|slack|reset: LLM service control",
        run: llmctl,
    },
    Command {
        name: "llminfer",
        help:
            "llminfer \"<prompt>\" [--max-tokens N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--repeat-last-n N] [--seed S] [--stop TEXT]... [--chat [--system TEXT] [--session new|ID [--cold]]] [--server NAME]",
        run: llminfer,
    },
    Command {
        name: "llmstream",
        help: "llmstream \"<prompt>\" [--max-tokens N] [--chunk N] [...]: print tokens as produced",
        run: llmstream,
    },
    Command {
        name: "llmgraph",
        help:
            "llmgraph \"<prompt>\" [--max-tokens N] [--chunk N] [...]: producer -> channel -> sink",
        run: llmgraph,
    },
    Command {
        name: "llmjson",
        help: "llmjson: this VM's LLM audit records as JSON",
        run: llmjson,
    },
];

/// Chunks printed by `llmstream`, and their tokens (`llm_stream_chunks`,
/// `llm_stream_chunk_tokens`).
static STREAM_CHUNKS: AtomicU64 = AtomicU64::new(0);
static STREAM_CHUNK_TOKENS: AtomicU64 = AtomicU64::new(0);
/// Chunks `llmgraph` dropped on a full channel (`llm_graph_chunk_drop`).
static GRAPH_DROPS: AtomicU64 = AtomicU64::new(0);
/// Chunks `llmgraph`'s sink emitted.
static GRAPH_CHUNKS: AtomicU64 = AtomicU64::new(0);
/// Channel capacity of `llmgraph`, in chunks.
const GRAPH_CHANNEL: usize = 4;

/// Tag of the next shell job.
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

enum Mode {
    Infer { text: String, ids: Vec<u32> },
    Stream { chunker: Chunker },
    Graph { graph: Graph },
}

/// The job the shell is waiting for.
struct ShellJob {
    tag: u64,
    mode: Mode,
    over: bool,
}

static SHELL_JOB: IrqMutex<Option<ShellJob>> = IrqMutex::new(None);

/// Prints a chunk on one line (newlines shown as `\n`).
fn chunk_text(c: &Chunk) -> String {
    escape_text(&c.text)
}

fn print_stream_chunk(c: &Chunk) {
    STREAM_CHUNKS.fetch_add(1, Ordering::Relaxed);
    STREAM_CHUNK_TOKENS.fetch_add(c.ids.len() as u64, Ordering::Relaxed);
    guest_rt::println!("[LLM][STREAM] chunk {}: {}", c.index, chunk_text(c));
}

fn print_graph_chunk(c: &Chunk) {
    GRAPH_CHUNKS.fetch_add(1, Ordering::Relaxed);
    guest_rt::println!("[LLM][GRAPH-OUT] chunk: {}", chunk_text(c));
}

/// Sink of the shell's own jobs: prints as the mode asks.
struct ShellSink;
static SHELL_SINK: ShellSink = ShellSink;

impl ReplySink for ShellSink {
    fn accepted(&self, tag: u64, job: u64, prompt_tokens: u32) {
        if SHELL_JOB.lock().as_ref().is_some_and(|j| j.tag == tag) {
            guest_rt::println!("llm: job {job} admitted, prompt {prompt_tokens} tokens");
        }
    }

    fn token(&self, tag: u64, id: u32, text: &str) {
        let mut emit: Option<(bool, Chunk)> = None;
        {
            let mut g = SHELL_JOB.lock();
            let Some(j) = g.as_mut().filter(|j| j.tag == tag) else {
                return;
            };
            match &mut j.mode {
                Mode::Infer { text: t, ids } => {
                    t.push_str(text);
                    ids.push(id);
                }
                Mode::Stream { chunker } => {
                    if let Some(c) = chunker.push(id, text) {
                        emit = Some((true, c));
                    }
                }
                Mode::Graph { graph } => {
                    graph.produce(id, text);
                    graph.run_sink(|c| emit = Some((false, c.clone())));
                }
            }
        }
        // Print outside the lock.
        match emit {
            Some((true, c)) => print_stream_chunk(&c),
            Some((false, c)) => print_graph_chunk(&c),
            None => {}
        }
    }

    fn finished(&self, tag: u64, r: &Report) {
        let Some(mut j) = SHELL_JOB.lock().take().filter(|j| j.tag == tag) else {
            return;
        };
        match &mut j.mode {
            Mode::Infer { text, ids } => {
                text.push_str(&r.tail);
                guest_rt::println!("[LLM] output: {}", escape_text(text));
                guest_rt::println!("[LLM] tokens: {ids:?}");
            }
            Mode::Stream { chunker } => {
                if let Some(mut c) = chunker.flush() {
                    c.text.push_str(&r.tail);
                    print_stream_chunk(&c);
                }
                guest_rt::println!(
                    "llm_stream_chunks={} llm_stream_chunk_tokens={}",
                    STREAM_CHUNKS.load(Ordering::Relaxed),
                    STREAM_CHUNK_TOKENS.load(Ordering::Relaxed)
                );
            }
            Mode::Graph { graph } => {
                let mut out = Vec::new();
                graph.finish(|c| out.push(c.clone()));
                for c in &out {
                    print_graph_chunk(c);
                }
                GRAPH_DROPS.fetch_add(graph.dropped(), Ordering::Relaxed);
                guest_rt::println!(
                    "llm_graph_chunks={} llm_graph_chunk_drop={}",
                    graph.emitted,
                    GRAPH_DROPS.load(Ordering::Relaxed)
                );
            }
        }
        if let Some(id) = r.session {
            guest_rt::println!(
                "llm: session {id:#018x}: prompt {} tokens, {} reused from the KV cache, {} computed, first token after {} us",
                r.prompt_tokens,
                r.reused,
                r.prompt_tokens - r.reused,
                r.ttft_ns / 1000
            );
        }
        let tps100 = |n: u64, ns: u64| (n * 100_000_000_000).checked_div(ns).unwrap_or(0);
        let gen = tps100(u64::from(r.decode_passes), r.decode_ns);
        let pre = tps100(u64::from(r.prompt_tokens), r.prefill_ns);
        guest_rt::println!(
            "llm: done job {}: {} tokens ({}), prompt {} tokens, response {} us, charged {} us in {} steps, {}.{:02} tok/s, prompt {}.{:02} tok/s, deadline {} (due {} us after submission)",
            r.job,
            r.tokens,
            r.stop,
            r.prompt_tokens,
            r.response_ns / 1000,
            r.consumed_ns / 1000,
            r.steps,
            gen / 100,
            gen % 100,
            pre / 100,
            pre % 100,
            if r.missed {
                alloc::format!("MISSED by {} us", r.lateness_ns / 1000)
            } else {
                String::from("met")
            },
            r.due_ns / 1000
        );
        j.over = true;
        *SHELL_JOB.lock() = Some(j);
    }

    fn failed(&self, tag: u64, e: &JobError) {
        let mut g = SHELL_JOB.lock();
        if let Some(j) = g.as_mut().filter(|j| j.tag == tag) {
            j.over = true;
            drop(g);
            guest_rt::println!("llm: error: {e} (ERR {:#04x})", e.code().host_code());
        }
    }
}

fn infer_common(inv: &mut Invocation<'_, '_>, kind: Kind, job_kind: JobKind, mk: fn(u32) -> Mode) {
    let cmd = inv.args[0];
    let a = match args::parse_infer(&inv.args[1..], kind) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(inv.out, "{cmd}: {e}");
            return;
        }
    };
    let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
    let mut req = JobRequest {
        tag,
        server: heapless::String::new(),
        prompt: heapless::String::new(),
        max_tokens: a.max_tokens,
        sampling: a.sampling,
        stop: a.stop,
        system: heapless::String::new(),
        session: a.session.map(|s| match s {
            args::SessionArg::New => shared_ring::message::SessionRef {
                id: shell_session_id(),
                open: true,
            },
            args::SessionArg::Continue(id) => shared_ring::message::SessionRef { id, open: false },
        }),
        owner: service::session_table::Owner::Shell,
        cold: a.cold,
        chat: a.chat,
        kind: job_kind,
    };
    // Lengths were checked by the parser.
    let _ = req.prompt.push_str(&a.prompt);
    if let Some(s) = &a.server {
        let _ = req.server.push_str(s);
    }
    if let Some(s) = &a.system {
        let _ = req.system.push_str(s);
    }
    *SHELL_JOB.lock() = Some(ShellJob {
        tag,
        mode: mk(a.chunk),
        over: false,
    });
    if SERVICE.submit(req, &SHELL_SINK).is_err() {
        *SHELL_JOB.lock() = None;
        let _ = writeln!(inv.out, "{cmd}: the service inbox is full, try again");
        return;
    }
    shell_loop::run_until(|| SHELL_JOB.lock().as_ref().is_none_or(|j| j.over));
    *SHELL_JOB.lock() = None;
}

fn llminfer(inv: &mut Invocation<'_, '_>) {
    infer_common(inv, Kind::Infer, JobKind::Infer, |_| Mode::Infer {
        text: String::new(),
        ids: Vec::new(),
    });
}

fn llmstream(inv: &mut Invocation<'_, '_>) {
    infer_common(inv, Kind::Chunked, JobKind::Stream, |chunk| Mode::Stream {
        chunker: Chunker::new(chunk as usize),
    });
}

fn llmgraph(inv: &mut Invocation<'_, '_>) {
    infer_common(inv, Kind::Chunked, JobKind::Stream, |chunk| Mode::Graph {
        graph: Graph::new(chunk as usize, GRAPH_CHANNEL),
    });
}

fn llmjson(inv: &mut Invocation<'_, '_>) {
    if inv.args.len() > 1 {
        let _ = writeln!(inv.out, "llmjson: takes no arguments");
        return;
    }
    audit::print_json(inv.out);
}

const LLMCTL_USAGE: &str = "usage: llmctl load [--wcet-cycles N] | budget [--wcet-cycles N] [--period-ns N] \
[--max-tokens-per-period N] | status | audit | server add --name NAME --wcet-cycles N --period-ns N \
[--max-tokens-per-period N] | server rm --name NAME | run --server NAME --every-ns N --count N \
[--max-tokens N] \"<prompt>\" | workers [N] | slack [on|off] | reset | session list | session drop ID";

/// Longest period accepted (1 hour).
const MAX_PERIOD_NS: u64 = 3_600_000_000_000;
/// Largest token quota per period.
const MAX_QUOTA: u64 = 1_000_000;

fn num(p: &opts::Parsed<'_>, name: &str, lo: u64, hi: u64) -> Result<Option<u64>, String> {
    match p.number(name).map_err(|e| alloc::format!("{e}"))? {
        None => Ok(None),
        Some(v) if (lo..=hi).contains(&v) => Ok(Some(v)),
        Some(v) => Err(alloc::format!(
            "option {name}: {v} is out of range ({lo}..={hi})"
        )),
    }
}

fn llmctl(inv: &mut Invocation<'_, '_>) {
    let Some(&sub) = inv.args.get(1) else {
        let _ = writeln!(inv.out, "{LLMCTL_USAGE}");
        return;
    };
    let rest = &inv.args[2..];
    let res = match sub {
        "load" => ctl_load(rest, inv.out),
        "budget" => ctl_budget(rest, inv.out),
        "status" => no_args(rest).map(|()| SERVICE.print_status(inv.out)),
        "audit" => no_args(rest).map(|()| audit::print_text(inv.out)),
        "server" => ctl_server(rest, inv.out),
        "run" => ctl_run(rest, inv.out),
        "workers" => ctl_workers(rest, inv.out),
        "session" => ctl_session(rest, inv.out),
        "slack" => match rest {
            [] => {
                let _ = writeln!(
                    inv.out,
                    "llmctl slack: {}",
                    if SERVICE.slack() { "on" } else { "off" }
                );
                Ok(())
            }
            ["on"] | ["off"] => {
                SERVICE.set_slack(rest[0] == "on");
                let _ = writeln!(inv.out, "llmctl slack: {}", rest[0]);
                Ok(())
            }
            _ => Err("usage: llmctl slack [on|off]".into()),
        },
        "reset" => no_args(rest).map(|()| {
            SERVICE.reset_metrics();
            let _ = writeln!(
                inv.out,
                "llmctl reset: throughput and latency figures cleared"
            );
        }),
        other => Err(alloc::format!(
            "unknown subcommand '{other}'\n{LLMCTL_USAGE}"
        )),
    };
    if let Err(e) = res {
        let _ = writeln!(inv.out, "llmctl {sub}: {e}");
    }
}

fn no_args(rest: &[&str]) -> Result<(), String> {
    match rest.first() {
        None => Ok(()),
        Some(w) => Err(alloc::format!("unexpected argument '{w}'")),
    }
}

fn parse<'a>(rest: &[&'a str], spec: Spec) -> Result<opts::Parsed<'a>, String> {
    opts::parse(rest, spec).map_err(|e| alloc::format!("{e}"))
}

fn ctl_load(rest: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let p = parse(
        rest,
        Spec {
            valued: &["--wcet-cycles"],
            switches: &[],
        },
    )?;
    no_args(p.positional())?;
    let wcet = num(&p, "--wcet-cycles", 1, u64::MAX / 2)?;
    SERVICE.load(guest_rt::boot_info(), wcet, out)?;
    let s = SERVICE.server_settings(service::DEFAULT_SERVER);
    let _ = match s {
        Some(s) => writeln!(
            out,
            "llmctl load: ok, server '{}' wcet_cycles={} period_ns={} max_tokens_per_period={}",
            service::DEFAULT_SERVER,
            s.wcet_cycles,
            s.period_ns,
            s.max_tokens
        ),
        None => writeln!(out, "llmctl load: ok"),
    };
    Ok(())
}

const BUDGET_SPEC: Spec = Spec {
    valued: &[
        "--wcet-cycles",
        "--period-ns",
        "--max-tokens-per-period",
        "--name",
    ],
    switches: &[],
};

fn settings_from(
    p: &opts::Parsed<'_>,
    base: Option<ServerSettings>,
) -> Result<ServerSettings, String> {
    let wcet = num(p, "--wcet-cycles", 1, u64::MAX / 2)?;
    let period = num(p, "--period-ns", 1, MAX_PERIOD_NS)?;
    let quota = num(p, "--max-tokens-per-period", 0, MAX_QUOTA)?;
    let base = match base {
        Some(b) => b,
        None => ServerSettings {
            wcet_cycles: wcet.ok_or("--wcet-cycles is required (no current value)")?,
            period_ns: period.unwrap_or(service::DEFAULT_PERIOD_NS),
            max_tokens: 0,
        },
    };
    Ok(ServerSettings {
        wcet_cycles: wcet.unwrap_or(base.wcet_cycles),
        period_ns: period.unwrap_or(base.period_ns),
        max_tokens: quota.map_or(base.max_tokens, |q| q as u32),
    })
}

fn print_settings(out: &mut dyn Write, what: &str, name: &str, s: &ServerSettings) {
    let _ = writeln!(
        out,
        "llmctl {what}: server '{name}' wcet_cycles={} period_ns={} max_tokens_per_period={}",
        s.wcet_cycles, s.period_ns, s.max_tokens
    );
}

fn ctl_budget(rest: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let p = parse(rest, BUDGET_SPEC)?;
    no_args(p.positional())?;
    if p.value("--name").is_some() {
        return Err("--name is for 'llmctl server'; budget sets the shell's server".into());
    }
    let name = service::DEFAULT_SERVER;
    let current = SERVICE.server_settings(name);
    if rest.is_empty() {
        return match current {
            Some(s) => {
                print_settings(out, "budget", name, &s);
                Ok(())
            }
            None => Err("no budget yet (give --wcet-cycles, or run 'llmctl load')".into()),
        };
    }
    let s = settings_from(&p, current)?;
    SERVICE
        .configure_server(name, s)
        .map_err(|e| alloc::format!("rejected: {e}"))?;
    print_settings(out, "budget", name, &s);
    Ok(())
}

fn ctl_server(rest: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let (verb, rest) = rest
        .split_first()
        .ok_or("usage: llmctl server add|rm --name NAME ...")?;
    let p = parse(rest, BUDGET_SPEC)?;
    no_args(p.positional())?;
    let name = args::parse_name(p.value("--name").ok_or("--name NAME is required")?)?;
    match *verb {
        "add" => {
            if SERVICE.server_settings(name).is_some() {
                return Err(alloc::format!(
                    "server '{name}' exists (use budget to change the default server)"
                ));
            }
            if p.value("--period-ns").is_none() {
                return Err("--period-ns is required".into());
            }
            let s = settings_from(&p, None)?;
            SERVICE
                .configure_server(name, s)
                .map_err(|e| alloc::format!("rejected: {e}"))?;
            print_settings(out, "server add", name, &s);
            Ok(())
        }
        "rm" => {
            if rest.len() != 2 {
                return Err("usage: llmctl server rm --name NAME".into());
            }
            SERVICE.remove_server(name)?;
            let _ = writeln!(out, "llmctl server rm: server '{name}' removed");
            Ok(())
        }
        other => Err(alloc::format!("unknown verb '{other}' (add or rm)")),
    }
}

fn ctl_run(rest: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let p = parse(
        rest,
        Spec {
            valued: &["--server", "--every-ns", "--count", "--max-tokens"],
            switches: &[],
        },
    )?;
    let prompt = match p.positional() {
        [one] if !one.is_empty() => *one,
        _ => return Err("give one quoted prompt".into()),
    };
    if prompt.len() > args::MAX_PROMPT_BYTES {
        return Err("prompt too long".into());
    }
    let server = args::parse_name(p.value("--server").ok_or("--server NAME is required")?)?;
    let every =
        num(&p, "--every-ns", 1_000_000, MAX_PERIOD_NS)?.ok_or("--every-ns N is required")?;
    let count = num(&p, "--count", 1, 100_000)?.ok_or("--count N is required")? as u32;
    let max_tokens = num(&p, "--max-tokens", 1, args::MAX_TOKENS_LIMIT)?
        .map_or(args::DEFAULT_MAX_TOKENS, |v| v as u32);
    SERVICE.start_periodic(server, prompt, max_tokens, every, count)?;
    let _ = writeln!(
        out,
        "llmctl run: server '{server}': {count} jobs of {max_tokens} tokens, one every {every} ns"
    );
    Ok(())
}

fn ctl_session(rest: &[&str], out: &mut dyn Write) -> Result<(), String> {
    match rest {
        ["list"] => {
            let list = SERVICE.sessions();
            let _ = writeln!(out, "llmctl session: {} open", list.len());
            for s in list {
                let _ = writeln!(
                    out,
                    "session {:#018x}: owner={} tokens={} turns={}{}",
                    s.id,
                    s.owner,
                    s.tokens,
                    s.turns,
                    if s.busy { " (turn running)" } else { "" }
                );
            }
            Ok(())
        }
        ["drop", id] => {
            let id = guest_rt::shell::parse_u64(id)
                .ok_or_else(|| alloc::format!("'{id}' is not a session id"))?;
            SERVICE
                .drop_session(id)
                .map_err(|e| alloc::format!("{e}"))?;
            let _ = writeln!(out, "llmctl session: dropped {id:#018x}");
            Ok(())
        }
        _ => Err("usage: llmctl session list | llmctl session drop ID".into()),
    }
}

/// A conversation id for the shell: the counter, the sequence and a fixed mix. Not secret:
/// only the console may continue a shell conversation (the owner check); host conversations
/// get ids from the control guest's entropy source.
fn shell_session_id() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(1);
    let mut z = guest_rt::timer::counter() ^ SEQ.fetch_add(1, Ordering::Relaxed).rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).max(1)
}

fn ctl_workers(rest: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let avail = crate::parallel::workers_available();
    match rest {
        [] => {}
        [n] => {
            let n = guest_rt::shell::parse_u64(n)
                .filter(|&n| n as usize <= avail)
                .ok_or_else(|| alloc::format!("'{n}' is not a number in 0..={avail}"))?;
            crate::parallel::set_workers(n as usize);
        }
        [_, extra, ..] => return Err(alloc::format!("unexpected argument '{extra}'")),
    }
    let _ = writeln!(
        out,
        "llmctl workers: {} worker cores besides the loop's core ({avail} running)",
        crate::parallel::workers_in_use()
    );
    Ok(())
}
