//! System tests of the LLM service as a user drives it from the shell and from the host: errors
//! the host can act on (no model: `ERR 0x03` at once on v0 and v1 and in the shell; a prompt
//! too long for the context: `ERR 0x0b`; a sampling value out of range: `ERR 0x01`; a finished
//! job's poll says how it ended), the README demo meeting its deadline with the budget derived
//! from the cost per token measured at load, and every sampling control end to end (the partition's token
//! ids equal the host engine's, what `llm-run` prints, for the same model, prompt and seed;
//! greedy with a repeat penalty equals llama.cpp's reference in models/test/sampling-ref.json).
//!
//! One QEMU boot for the whole file, on the tiny test model.

use std::path::PathBuf;
use std::time::Duration;

use sis_e2e::text::{self, token_ids};
use sis_e2e::{build_once, workspace_root, Options, Sis, Source};
use sis_engine::{load_gguf, SamplerConfig, Serial, Session, SessionConfig};

const BOOT: Duration = Duration::from_secs(60);
const CMD: Duration = Duration::from_secs(30);
const DATACTL: Duration = Duration::from_secs(60);
/// Inference under emulation: generous, every wait is still bounded.
const INFER: Duration = Duration::from_secs(180);

const PROMPT: &str = "why was op B slower than op A?";

fn test_model() -> PathBuf {
    workspace_root().join("models/test/tiny-llama.gguf")
}

/// What `llm-run --model tiny-llama.gguf --prompt PROMPT --max-tokens N <sampler>` generates:
/// the host engine's ids and text.
fn host_run(prompt: &str, max_tokens: usize, sampler: SamplerConfig) -> (Vec<u32>, String) {
    host_run_as(None, prompt, max_tokens, sampler)
}

/// [`host_run`] with `--chat` (and `--system` when `chat` is `Some(Some(..))`).
fn host_run_as(
    chat: Option<Option<&str>>,
    prompt: &str,
    max_tokens: usize,
    sampler: SamplerConfig,
) -> (Vec<u32>, String) {
    let file = std::fs::read(test_model()).unwrap();
    let (model, tok) = load_gguf(&file).unwrap();
    let p = match chat {
        None => tok.encode_prompt(prompt),
        Some(system) => tok.encode_chat(system, prompt).unwrap(),
    };
    let mut s = Session::new(
        &model,
        &Serial,
        SessionConfig {
            context: p.len() + max_tokens,
            max_new_tokens: max_tokens,
            sampler,
            stop_tokens: tok.stop.clone(),
        },
    )
    .unwrap();
    s.feed(&p).unwrap();
    while s.pending() > 0 {
        s.prefill(64).unwrap();
    }
    let mut ids = Vec::new();
    while let Some(t) = s.next_token().unwrap() {
        ids.push(t);
    }
    let mut text = tok.decode_all(&[*p.last().unwrap()]);
    let skip = text.len();
    let mut all = vec![*p.last().unwrap()];
    all.extend_from_slice(&ids);
    text = tok.decode_all(&all);
    (ids, String::from_utf8_lossy(&text[skip..]).into_owned())
}

/// `EMBED TOKEN: 0x...` printed by `ctlembed <rights>`.
fn embed_token(sis: &Sis, rights: &str) -> String {
    let out = sis
        .run(Source::Ctl, &format!("ctlembed {rights}"), CMD)
        .unwrap();
    format!("{:#x}", text::embedded_token(&out))
}

fn sampler(temp: f32, seed: u64) -> SamplerConfig {
    SamplerConfig {
        temperature: temp,
        seed,
        ..SamplerConfig::default()
    }
}

#[test]
fn errors_budgets_and_sampling_as_a_user_sees_them() {
    build_once().expect("build");
    let sis = Sis::start(Options {
        model: Some(test_model()),
        ..Options::default()
    })
    .expect("start QEMU");
    sis.expect(Source::Ctl, "VCON: READY", BOOT)
        .expect("the console port is bound");
    sis.wait_prompt(Source::Ctl, BOOT).expect("ctl> prompt");
    sis.wait_prompt(Source::Llm, BOOT).expect("llm> prompt");
    let admin = embed_token(&sis, "admin");
    let submit = embed_token(&sis, "submit");
    let host = |args: &[&str]| {
        let mut all = vec!["--wait-ack", "--token", submit.as_str()];
        all.extend_from_slice(args);
        sis.datactl(&all, DATACTL).unwrap()
    };

    // --- Before any load: ERR 0x03 at once, v0 and v1, and in the shell.
    for proto in ["0", "1"] {
        let r = host(&["--proto", proto, "llm-infer", "hi", "--max-tokens", "2"]);
        assert_eq!(r.stdout.trim(), "ERR 0x03", "v{proto}: {r:?}");
        assert_eq!(r.code, Some(1), "{r:?}");
        assert!(r.stderr.contains("no model loaded (0x03)"), "{r:?}");
    }
    let r = host(&["llm-infer", "hi", "--stream"]);
    assert_eq!(
        r.stdout.trim(),
        "ERR 0x03",
        "a stream is refused too: {r:?}"
    );
    let out = sis.run(Source::Llm, "llminfer \"hi\"", CMD).unwrap();
    assert!(
        out.contains("llm: error: no model loaded (run 'llmctl load' first) (ERR 0x03)"),
        "{out}"
    );

    // --- The README demo on an idle system: the load measures what a token costs and derives
    // the default budget from it; the chat question meets its deadline, which is shown.
    let out = sis.run(Source::Llm, "llmctl load", INFER).unwrap();
    assert!(
        out.contains("llmctl load: cost per token on this machine: prefill "),
        "{out}"
    );
    let derived = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("llmctl load: budget derived: 2 x (64 prompt + 32 new tokens) = ")
        })
        .unwrap_or_else(|| panic!("no derived budget in:\n{out}"));
    let (budget_us, period_us) = derived
        .trim()
        .strip_suffix(" us")
        .and_then(|s| s.split_once(" us per "))
        .map(|(q, t)| (q.parse::<u64>().unwrap(), t.parse::<u64>().unwrap()))
        .unwrap_or_else(|| panic!("{derived}"));
    assert_eq!(period_us, 2 * budget_us, "{out}");
    assert!(budget_us >= 250_000, "at least the floor: {out}");
    let budget = sis.run(Source::Llm, "llmctl budget", CMD).unwrap();
    assert!(
        budget.contains(&format!("period_ns={} ", period_us * 1000)),
        "the server has the derived budget: {budget}"
    );
    let demo = sis
        .run(
            Source::Llm,
            "llminfer --chat \"What is the capital of France?\"",
            INFER,
        )
        .unwrap();
    let done = demo
        .lines()
        .find(|l| l.starts_with("llm: done job"))
        .unwrap_or_else(|| panic!("{demo}"));
    eprintln!("README demo: {done}");
    assert!(
        done.ends_with(&format!(
            "deadline met (due {period_us} us after submission)"
        )),
        "{demo}"
    );
    let st = sis.run(Source::Llm, "llmctl status", CMD).unwrap();
    assert!(st.contains("deterministic_deadline_miss_count=0"), "{st}");
    assert!(
        st.contains("cost per token (measured at load): prefill_us="),
        "{st}"
    );
    // A load over the ring (datactl) keeps the server's settings.
    let r = sis
        .datactl(&["--wait-ack", "--token", &admin, "llm-load"], DATACTL)
        .unwrap();
    assert_eq!(r.stdout.trim(), "OK", "{r:?}");

    // --- Prompt + max_tokens beyond the 256-token context: ERR 0x0b at once, nothing runs.
    let r = host(&["llm-infer", PROMPT, "--max-tokens", "300"]);
    assert_eq!(r.stdout.trim(), "ERR 0x0b", "{r:?}");
    assert!(
        r.stderr
            .contains("prompt too long for the model's context (0x0b)"),
        "{r:?}"
    );
    let out = sis
        .run(
            Source::Llm,
            &format!("llminfer \"{PROMPT}\" --max-tokens 300"),
            CMD,
        )
        .unwrap();
    assert!(
        out.contains("does not fit the model's context of 256 (ERR 0x0b)"),
        "{out}"
    );

    // --- Sampling values out of range: datactl refuses before sending (exit 2); a v1 frame
    // carrying one is ERR 0x01 (the guest's frame decoder); the shell names the option.
    let r = host(&["llm-infer", "hi", "--seed", "4294967296"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    let r = host(&["llm-infer", "hi", "--top-p", "1.5"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    // v1 infer, seq 7, seed 2^32 (docs/frames.md §3).
    let mut payload = Vec::new();
    payload.extend_from_slice(&u64::from_str_radix(&submit[2..], 16).unwrap().to_le_bytes());
    payload.extend_from_slice(&7u32.to_le_bytes());
    payload.extend_from_slice(&2u16.to_le_bytes());
    payload.extend_from_slice(&800u16.to_le_bytes());
    payload.extend_from_slice(&950u16.to_le_bytes());
    payload.extend_from_slice(&(1u64 << 32).to_le_bytes());
    payload.push(b'a');
    let mut frame = vec![0x43, 1, 0x11, 0];
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&payload);
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let r = sis
        .datactl(&["--wait-ack", "raw", "--hex", &hex], DATACTL)
        .unwrap();
    assert_eq!(r.stdout.trim(), "ERR 0x01", "{r:?}");
    let out = sis
        .run(Source::Llm, "llminfer \"hi\" --seed 4294967296", CMD)
        .unwrap();
    assert!(
        out.contains("llminfer: option --seed: 4294967296 is out of range (0..=4294967295)"),
        "{out}"
    );

    // --- Every control: the partition's ids equal the host engine's (llm-run's).
    let base = sampler(0.8, 42);
    let cases: Vec<(&str, SamplerConfig)> = vec![
        ("--temp 0.8 --seed 42", base),
        ("--temp 1.5 --seed 42", sampler(1.5, 42)),
        ("--temp 0.8 --seed 7", sampler(0.8, 7)),
        (
            "--temp 0.8 --seed 42 --top-k 1",
            SamplerConfig { top_k: 1, ..base },
        ),
        (
            "--temp 0.8 --seed 42 --top-p 0.5",
            SamplerConfig { top_p: 0.5, ..base },
        ),
        (
            "--temp 0.8 --seed 42 --min-p 0.2",
            SamplerConfig { min_p: 0.2, ..base },
        ),
        (
            "--temp 0.8 --seed 42 --repeat-penalty 1.3 --repeat-last-n 8",
            SamplerConfig {
                repeat_penalty: 1.3,
                repeat_last_n: 8,
                ..base
            },
        ),
    ];
    let mut got = Vec::new();
    for (opts, cfg) in &cases {
        let out = sis
            .run(
                Source::Llm,
                &format!("llminfer \"{PROMPT}\" --max-tokens 8 {opts}"),
                INFER,
            )
            .unwrap();
        let (want, _) = host_run(PROMPT, 8, *cfg);
        assert_eq!(token_ids(&out), want, "{opts}:\n{out}");
        got.push(want);
    }
    // The same seed gives the same ids with no worker cores (the loop's core alone); the runs
    // above used every worker core there is.
    let out = sis.run(Source::Llm, "llmctl workers", CMD).unwrap();
    let workers = out
        .split("llmctl workers: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert_ne!(
        workers, "0",
        "the sampled runs above had worker cores: {out}"
    );
    let out = sis.run(Source::Llm, "llmctl workers 0", CMD).unwrap();
    assert!(out.contains("llmctl workers: 0 worker cores"), "{out}");
    let (opts, _) = &cases[6];
    let out = sis
        .run(
            Source::Llm,
            &format!("llminfer \"{PROMPT}\" --max-tokens 8 {opts}"),
            INFER,
        )
        .unwrap();
    assert_eq!(token_ids(&out), got[6], "workers 0, {opts}:\n{out}");
    let out = sis
        .run(Source::Llm, &format!("llmctl workers {workers}"), CMD)
        .unwrap();
    assert!(
        out.contains(&format!("llmctl workers: {workers} worker cores")),
        "{out}"
    );
    // top-k 1 and top-p 0.5 visibly change the sampled output.
    assert_ne!(got[3], got[0], "top-k 1 changes the output");
    assert_ne!(got[4], got[0], "top-p 0.5 changes the output");

    // The same controls over the host path (v1 frame with its sampling block, ring message):
    // streamed text equals the host engine's.
    let all = SamplerConfig {
        temperature: 1.5,
        top_k: 20,
        top_p: 0.9,
        min_p: 0.01,
        repeat_penalty: 1.3,
        repeat_last_n: 8,
        seed: 1234,
        ..SamplerConfig::default()
    };
    let (_, text) = host_run(PROMPT, 8, all);
    let r = sis
        .datactl(
            &[
                "--token",
                &submit,
                "llm-infer",
                PROMPT,
                "--stream",
                "--max-tokens",
                "8",
                "--temp",
                "1.5",
                "--top-k",
                "20",
                "--top-p",
                "0.9",
                "--min-p",
                "0.01",
                "--repeat-penalty",
                "1.3",
                "--repeat-last-n",
                "8",
                "--seed",
                "1234",
            ],
            DATACTL,
        )
        .unwrap();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout.trim_end_matches('\n'), text, "{r:?}");

    // --- Greedy with a repeat penalty equals llama.cpp's reference (sampling-ref.json).
    let refs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("models/test/sampling-ref.json")).unwrap(),
    )
    .unwrap();
    let case = refs["models"]["tiny-llama.gguf"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "greedy_repeat_1.3_last_64")
        .unwrap();
    let want: Vec<u32> = case["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let prompt = refs["prompt"].as_str().unwrap();
    let out = sis
        .run(
            Source::Llm,
            &format!(
                "llminfer \"{prompt}\" --max-tokens {} --repeat-penalty 1.3 --repeat-last-n 64",
                want.len()
            ),
            INFER,
        )
        .unwrap();
    assert_eq!(token_ids(&out), want, "{out}");
    let (plain, _) = host_run(prompt, want.len(), SamplerConfig::default());
    assert_ne!(plain, want, "the penalty changes the greedy output");

    // --- A system message in the model's chat template (ChatML here), from the shell and the
    // host: the host engine's tokens and text.
    const SYSTEM: &str = "You answer in one word.";
    let (ids, text) = host_run_as(Some(Some(SYSTEM)), PROMPT, 6, SamplerConfig::default());
    let (plain, _) = host_run_as(Some(None), PROMPT, 6, SamplerConfig::default());
    let out = sis
        .run(
            Source::Llm,
            &format!("llminfer --chat --system \"{SYSTEM}\" \"{PROMPT}\" --max-tokens 6"),
            INFER,
        )
        .unwrap();
    assert_eq!(token_ids(&out), ids, "{out}");
    assert_ne!(ids, plain, "the system message changes the reply");
    let r = sis
        .datactl(
            &[
                "--token",
                &submit,
                "llm-infer",
                PROMPT,
                "--chat",
                "--system",
                SYSTEM,
                "--stream",
                "--max-tokens",
                "6",
            ],
            DATACTL,
        )
        .unwrap();
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout.strip_suffix('\n').unwrap_or(&r.stdout),
        text,
        "{r:?}"
    );

    // --- Stop strings: "r l" spans two tokens (" br", " lik") of the greedy reply. The host
    // never receives any of it, not even the "r" that was held back while it could still
    // start the stop string; the shell ends the job with it too.
    let (_, greedy_text) = host_run(PROMPT, 8, SamplerConfig::default());
    let cut = &greedy_text[..greedy_text.find("r l").expect("the greedy reply has 'r l'")];
    let r = sis
        .datactl(
            &[
                "--token",
                &submit,
                "llm-infer",
                PROMPT,
                "--stream",
                "--max-tokens",
                "8",
                "--stop",
                "r l",
                "--stop",
                "never in the text",
            ],
            DATACTL,
        )
        .unwrap();
    assert_eq!(r.code, Some(0), "{r:?}");
    let got = r.stdout.strip_suffix('\n').unwrap_or(&r.stdout);
    assert_eq!(got, cut, "{r:?}");
    assert!(!got.contains('r'), "held-back text leaked: {r:?}");
    assert!(r.stderr.contains("n=5 reason=eos"), "{r:?}");
    let out = sis
        .run(
            Source::Llm,
            &format!("llmstream \"{PROMPT}\" --max-tokens 8 --chunk 1 --stop \"r l\""),
            INFER,
        )
        .unwrap();
    let streamed: String = out
        .lines()
        .filter_map(|l| l.strip_prefix("[LLM][STREAM] chunk "))
        .map(|c| c.split_once(": ").map_or("", |(_, t)| t))
        .collect();
    assert!(
        !streamed.contains("r l") && !streamed.contains(" br"),
        "{out}"
    );
    assert!(out.contains("5 tokens (stop string)"), "{out}");

    // --- A finished job's poll says how it ended: done=1 with end=.
    let r = host(&["llm-infer", PROMPT, "--max-tokens", "2"]);
    let id = r
        .stdout
        .trim()
        .strip_prefix("OK id=")
        .unwrap_or_else(|| panic!("{r:?}"))
        .to_string();
    let t0 = std::time::Instant::now();
    let line = loop {
        let r = host(&["llm-poll", &id]);
        if r.stdout.contains(" done=1 ") {
            break r.stdout;
        }
        assert!(t0.elapsed() < INFER, "job {id} never finished: {r:?}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(line.contains(" done=1 end=max plen="), "{line}");

    // --- A job the LLM partition cannot finish (it is stopped under it): its poll says it
    // failed and why (0x06: the partition is unavailable), at once.
    let r = host(&["llm-infer", "hi", "--max-tokens", "250"]);
    let id = r
        .stdout
        .trim()
        .strip_prefix("OK id=")
        .unwrap_or_else(|| panic!("{r:?}"))
        .to_string();
    let out = sis.run(Source::Hv, "stop llm", CMD).unwrap();
    assert!(out.contains("vm llm stopped"), "{out}");
    let t0 = std::time::Instant::now();
    let line = loop {
        let r = host(&["llm-poll", &id]);
        if r.stdout.contains(" done=1 ") {
            break r.stdout;
        }
        assert!(
            t0.elapsed() < CMD,
            "job {id} not ended after the stop: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        line.contains(" done=1 end=fail code=0x06 "),
        "{line} (the 250-token job must still run when the VM stops)"
    );
    let r = host(&["llm-poll", &id, "--text"]);
    assert!(
        r.stderr
            .contains("end=fail code=0x06 (LLM partition unavailable)"),
        "{r:?}"
    );
}

/// The README demo on the default model (`models/cache/SmolLM2-135M-Instruct.Q4_1.gguf`,
/// `scripts/fetch-model.sh`): the budget derived at load lets the chat question meet its
/// deadline. Minutes under emulation, so not in the default run.
#[test]
#[ignore = "needs models/cache/SmolLM2-135M-Instruct.Q4_1.gguf; minutes under emulation"]
fn readme_demo_on_smollm2_meets_its_deadline() {
    let model = workspace_root().join("models/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(model.exists(), "fetch the default model first");
    build_once().expect("build");
    let sis = Sis::start(Options {
        model: Some(model),
        ..Options::default()
    })
    .expect("start QEMU");
    sis.wait_prompt(Source::Llm, BOOT).expect("llm> prompt");
    let slow = Duration::from_secs(1800);
    let out = sis.run(Source::Llm, "llmctl load", slow).unwrap();
    eprintln!("{out}");
    assert!(out.contains("llmctl load: budget derived: "), "{out}");
    let out = sis
        .run(
            Source::Llm,
            "llminfer --chat \"What is the capital of France?\" --max-tokens 16",
            slow,
        )
        .unwrap();
    eprintln!("{out}");
    assert!(
        out.contains("[LLM] output: The capital of France is Paris."),
        "{out}"
    );
    assert!(out.contains("deadline met (due "), "{out}");
}
