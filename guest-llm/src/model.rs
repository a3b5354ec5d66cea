//! The model in the LLM partition: finds the files `scripts/run.sh` placed in the read-only
//! model region (through the manifest), validates them with the engine's loaders, and keeps
//! the loaded model for the rest of the VM's life (the region cannot change while it runs).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use guest_rt::sync::IrqMutex;
use guest_rt::timer;
use sis_engine::gguf::Gguf;
use sis_engine::{Model, Tokenizer};
use sis_platform::layout::model_region::{MANIFEST_OFFSET, MANIFEST_SIZE};
use sis_platform::BootInfo;

use crate::manifest::{self, Manifest};

/// A model and its tokenizer, borrowing the model region.
pub struct Loaded {
    /// Weights and configuration.
    pub model: Model<'static>,
    /// Tokenizer.
    pub tokenizer: Tokenizer<'static>,
    /// `gguf` or `llama2c`.
    pub format: &'static str,
    /// `general.name` of a GGUF file, if present.
    pub name: String,
    /// Bytes of the model file.
    pub file_len: usize,
    /// Counter ticks the load took.
    pub load_cycles: u64,
}

static LOADED: IrqMutex<Option<&'static Loaded>> = IrqMutex::new(None);

/// The loaded model, if `llmctl load` succeeded.
pub fn get() -> Option<&'static Loaded> {
    *LOADED.lock()
}

/// The model region as a byte slice.
fn region(info: &BootInfo) -> Result<&'static [u8], String> {
    if info.model_base == 0 || info.model_size == 0 {
        return Err("this partition has no model region".into());
    }
    // SAFETY: the hypervisor maps the model region read-only (stage 2) at `model_base` for the
    // VM's whole life and nothing in this VM can write it, so an immutable `'static` slice over
    // it is sound; it is normal memory in the guest's stage-1 map. Booted natively
    // (`run.sh --native`) the region is RAM above the heap that nothing else uses.
    Ok(unsafe {
        core::slice::from_raw_parts(info.model_base as *const u8, info.model_size as usize)
    })
}

fn find(info: &BootInfo) -> Result<(Manifest, &'static [u8]), String> {
    let region = region(info)?;
    let at = MANIFEST_OFFSET as usize;
    let bytes: &[u8; MANIFEST_SIZE as usize] = region
        .get(at..at + MANIFEST_SIZE as usize)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| String::from("the model region is too small"))?;
    let m = manifest::parse(region.len(), bytes).map_err(|e| format!("{e}"))?;
    Ok((m, region))
}

/// Validates and loads the model, printing progress to `out`. A model already loaded is kept
/// (the region is immutable); the call then only re-reads the manifest.
pub fn load(info: &BootInfo, out: &mut dyn Write) -> Result<&'static Loaded, String> {
    if let Some(l) = get() {
        let _ = writeln!(
            out,
            "llmctl load: model already loaded ({} bytes, {})",
            l.file_len, l.format
        );
        return Ok(l);
    }
    let t0 = timer::counter();
    let (m, region) = find(info)?;
    let file = &region[m.model_offset..m.model_offset + m.model_len];
    let _ = writeln!(
        out,
        "llmctl load: [1/4] manifest: model file {} bytes at offset {:#x}",
        m.model_len, m.model_offset
    );
    let loaded = if file.starts_with(b"GGUF") {
        let g = Gguf::parse(file).map_err(|e| format!("{e}"))?;
        let _ = writeln!(
            out,
            "llmctl load: [2/4] GGUF v{}: {} metadata keys, {} tensors",
            g.version,
            g.metadata.len(),
            g.tensors.len()
        );
        let model = Model::from_gguf(&g).map_err(|e| format!("{e}"))?;
        print_config(out, &model);
        let tokenizer = Tokenizer::from_gguf(&g).map_err(|e| format!("{e}"))?;
        if tokenizer.vocab_size() != model.config.vocab_size {
            return Err(format!(
                "tokenizer has {} tokens, model {}",
                tokenizer.vocab_size(),
                model.config.vocab_size
            ));
        }
        let name = g.string("general.name").ok().flatten().unwrap_or("").into();
        Loaded {
            model,
            tokenizer,
            format: "gguf",
            name,
            file_len: m.model_len,
            load_cycles: 0,
        }
    } else {
        let Some((toff, tlen)) = m.tokenizer else {
            return Err(
                "not a GGUF file, and no tokenizer for a llama2.c checkpoint \
                 (scripts/run.sh --tokenizer PATH)"
                    .into(),
            );
        };
        let _ = writeln!(
            out,
            "llmctl load: [2/4] llama2.c checkpoint, tokenizer {tlen} bytes"
        );
        let model = sis_engine::llama2c::load(file).map_err(|e| format!("{e}"))?;
        print_config(out, &model);
        let tokenizer =
            Tokenizer::from_llama2c(&region[toff..toff + tlen], model.config.vocab_size)
                .map_err(|e| format!("tokenizer: {e}"))?;
        Loaded {
            model,
            tokenizer,
            format: "llama2c",
            name: String::new(),
            file_len: m.model_len,
            load_cycles: 0,
        }
    };
    let _ = writeln!(
        out,
        "llmctl load: [4/4] tokenizer: {} tokens, {} stop tokens, chat turns {:?}",
        loaded.tokenizer.vocab_size(),
        loaded.tokenizer.stop.len(),
        loaded.tokenizer.chat
    );
    let loaded = Box::leak(Box::new(Loaded {
        load_cycles: timer::counter().wrapping_sub(t0),
        ..loaded
    }));
    *LOADED.lock() = Some(loaded);
    Ok(loaded)
}

fn print_config(out: &mut dyn Write, model: &Model<'_>) {
    let c = &model.config;
    let _ = writeln!(
        out,
        "llmctl load: [3/4] weights: {} dim {} hidden {} layers {} heads {}/{} of {} vocab {} context {}, {} bytes",
        match c.arch {
            sis_engine::Arch::Llama => "llama",
            sis_engine::Arch::Gemma3(_) => "gemma3",
        },
        c.dim,
        c.hidden_dim,
        c.n_layers,
        c.n_heads,
        c.n_kv_heads,
        c.head_dim,
        c.vocab_size,
        c.max_seq_len,
        model.weight_bytes()
    );
}
