//! Chat turn formats: ChatML (SmolLM2 and most small models) and Gemma's turns.
//!
//! A format is chosen from the file's `tokenizer.chat_template` (its markers) and, when
//! the file has no template or one this engine does not know, from the vocabulary's
//! control tokens. [`crate::Tokenizer::encode_chat`] inserts the markers by id and encodes
//! the user's text as plain text, so text that looks like a marker cannot open a turn.

use alloc::string::String;
use alloc::vec::Vec;

/// SmolLM2's default system message (what its GGUF chat template inserts when the
/// conversation has none).
pub const SMOLLM2_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// How a model's chat turns are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// The model has no chat turns this engine knows.
    None,
    /// `<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n`.
    ChatMl,
    /// `<start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n`; a system message
    /// goes before the user's text, separated by a blank line; both trimmed (as llama.cpp's
    /// Gemma template does).
    Gemma,
}

/// One turn: role and content.
pub type Turn = (&'static str, String);

impl ChatFormat {
    /// The format `template` uses, else the one whose markers the vocabulary has
    /// (`has_token` tells whether a token with that text exists).
    pub fn choose(template: Option<&str>, has_token: impl Fn(&str) -> bool) -> Self {
        let by_markers = |f: ChatFormat| {
            let (start, end) = f.markers();
            has_token(start) && has_token(end)
        };
        let from_template = template.and_then(|t| {
            [ChatFormat::Gemma, ChatFormat::ChatMl]
                .into_iter()
                .find(|f| t.contains(f.markers().0))
        });
        match from_template {
            Some(f) if by_markers(f) => f,
            _ => [ChatFormat::Gemma, ChatFormat::ChatMl]
                .into_iter()
                .find(|&f| by_markers(f))
                .unwrap_or(ChatFormat::None),
        }
    }

    /// The turn start and end markers.
    pub fn markers(self) -> (&'static str, &'static str) {
        match self {
            ChatFormat::ChatMl => ("<|im_start|>", "<|im_end|>"),
            ChatFormat::Gemma => ("<start_of_turn>", "<end_of_turn>"),
            ChatFormat::None => ("", ""),
        }
    }

    /// The role of the turn the model writes.
    pub fn model_role(self) -> &'static str {
        match self {
            ChatFormat::Gemma => "model",
            _ => "assistant",
        }
    }

    /// The closed turns of a conversation of one user message after an optional system
    /// message.
    pub fn turns(self, system: Option<&str>, user: &str) -> Vec<Turn> {
        match self {
            ChatFormat::Gemma => {
                let mut content = String::new();
                if let Some(s) = system.map(str::trim).filter(|s| !s.is_empty()) {
                    content.push_str(s);
                    content.push_str("\n\n");
                }
                content.push_str(user.trim());
                alloc::vec![("user", content)]
            }
            _ => {
                let mut t = Vec::new();
                if let Some(s) = system {
                    t.push(("system", String::from(s)));
                }
                t.push(("user", String::from(user)));
                t
            }
        }
    }

    /// The prompt as text (markers written out), opening the model's turn.
    pub fn text(self, system: Option<&str>, user: &str) -> String {
        let (start, end) = self.markers();
        let mut s = String::new();
        for (role, content) in self.turns(system, user) {
            s.push_str(start);
            s.push_str(role);
            s.push('\n');
            s.push_str(&content);
            s.push_str(end);
            s.push('\n');
        }
        s.push_str(start);
        s.push_str(self.model_role());
        s.push('\n');
        s
    }
}

/// Formats one user turn in ChatML, optionally preceded by a system turn, and opens the
/// assistant turn: `<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n`.
pub fn chatml(system: Option<&str>, user: &str) -> String {
    ChatFormat::ChatMl.text(system, user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(
            chatml(None, "Hi"),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(chatml(Some("S"), "Hi").starts_with("<|im_start|>system\nS<|im_end|>\n"));
        assert_eq!(
            ChatFormat::Gemma.text(Some(" Be brief. "), " Hi\n"),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn chosen_from_template_then_vocabulary() {
        let all = |_: &str| true;
        let gemma_only = |t: &str| t.contains("_of_turn");
        assert_eq!(
            ChatFormat::choose(Some("{{ '<|im_start|>' }}"), all),
            ChatFormat::ChatMl
        );
        assert_eq!(
            ChatFormat::choose(Some("<start_of_turn>"), all),
            ChatFormat::Gemma
        );
        assert_eq!(ChatFormat::choose(None, gemma_only), ChatFormat::Gemma);
        // A template naming markers the vocabulary lacks falls back to the vocabulary.
        assert_eq!(
            ChatFormat::choose(Some("<|im_start|>"), gemma_only),
            ChatFormat::Gemma
        );
        assert_eq!(ChatFormat::choose(None, |_| false), ChatFormat::None);
    }
}
