//! The forward pass's workspace: a warm workspace makes the token loop allocation-free,
//! and reusing one (after larger batches, other positions, another model) never changes
//! a result.

use sis_engine::forward::{forward, forward_in, KvCache, Logits, Workspace};
use sis_engine::parallel::Serial;
use sis_engine::{load_gguf, load_llama2c, Model};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the allocations of the current thread.
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell` with a const initializer, which allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

fn read(rel: &str) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read(root.join(rel)).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Prefills `toks`, warms up with one token, then checks eight more allocate nothing.
fn check_warm_loop(name: &str, model: &Model<'_>, toks: &[u32]) {
    let mut cache = KvCache::new(model, 64).unwrap();
    let mut ws = Workspace::default();
    forward_in(model, &mut cache, &mut ws, &Serial, toks, Logits::Last).unwrap();
    // One warm-up token sizes the single-token buffers.
    forward_in(model, &mut cache, &mut ws, &Serial, &[5], Logits::Last).unwrap();
    for t in 0..8u32 {
        let before = allocs();
        let logits =
            forward_in(model, &mut cache, &mut ws, &Serial, &[t + 7], Logits::Last).unwrap();
        assert_eq!(logits.len(), model.config.vocab_size);
        assert_eq!(allocs(), before, "{name}: token {t} allocated");
    }
}

#[test]
fn warm_token_loop_allocates_nothing() {
    for file in [
        "models/test/tiny-llama.gguf",
        "models/test/tiny-gemma3.gguf",
    ] {
        let f = read(file);
        let (model, tok) = load_gguf(&f).unwrap();
        let toks = tok.encode("Once upon a time, the little robot counted waves.");
        check_warm_loop(file, &model, &toks);
    }
    let tok = read("models/test/tiny-tokenizer.bin");
    for file in [
        "models/test/tiny-l2c-f32.bin",
        "models/test/tiny-l2c-q8.bin",
    ] {
        let f = read(file);
        let (model, _) = load_llama2c(&f, &tok).unwrap();
        check_warm_loop(file, &model, &[1, 20, 30, 40, 50]);
    }
}

#[test]
fn reused_workspace_gives_fresh_results() {
    let g = read("models/test/tiny-llama.gguf");
    let (llama, tok) = load_gguf(&g).unwrap();
    let l2c = read("models/test/tiny-l2c-q8.bin");
    let l2c_tok = read("models/test/tiny-tokenizer.bin");
    let (other, _) = load_llama2c(&l2c, &l2c_tok).unwrap();
    let toks = tok.encode("Once upon a time, the little robot counted 12345 waves.");
    // Fresh workspaces: the reference.
    let mut cache = KvCache::new(&llama, 64).unwrap();
    let mut want = bits(&forward(&llama, &mut cache, &Serial, &toks[..9], Logits::All).unwrap());
    for &t in &toks[9..] {
        want.extend(bits(
            &forward(&llama, &mut cache, &Serial, &[t], Logits::Last).unwrap(),
        ));
    }
    // One workspace, dirtied by another model and a larger batch first.
    let mut ws = Workspace::default();
    let mut oc = KvCache::new(&other, 32).unwrap();
    forward_in(&other, &mut oc, &mut ws, &Serial, &[1; 20], Logits::All).unwrap();
    let mut cache = KvCache::new(&llama, 64).unwrap();
    let mut got = bits(
        forward_in(
            &llama,
            &mut cache,
            &mut ws,
            &Serial,
            &toks[..9],
            Logits::All,
        )
        .unwrap(),
    );
    for &t in &toks[9..] {
        got.extend(bits(
            forward_in(&llama, &mut cache, &mut ws, &Serial, &[t], Logits::Last).unwrap(),
        ));
    }
    assert_eq!(got, want);
}
