//! Chat prompt templates.

use alloc::string::String;

/// SmolLM2's default system message (what its GGUF chat template inserts when the
/// conversation has none).
pub const SMOLLM2_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// Formats one user turn in ChatML, optionally preceded by a system turn, and opens the
/// assistant turn: `<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n`.
pub fn chatml(system: Option<&str>, user: &str) -> String {
    let mut s = String::new();
    if let Some(sys) = system {
        s.push_str("<|im_start|>system\n");
        s.push_str(sys);
        s.push_str("<|im_end|>\n");
    }
    s.push_str("<|im_start|>user\n");
    s.push_str(user);
    s.push_str("<|im_end|>\n<|im_start|>assistant\n");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn chatml_layout() {
        assert_eq!(
            super::chatml(None, "Hi"),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(super::chatml(Some("S"), "Hi").starts_with("<|im_start|>system\nS<|im_end|>\n"));
    }
}
