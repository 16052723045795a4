//! The contract between Vakt's agent and collector: the schema and validation of `agent.toml`
//! and `collector.toml`, durations and label selectors, and the wire types of the push protocol.
//!
//! Loading never stops at the first problem: [`ConfigErrors`] lists each one as
//! `file:line:col: message (hint)`.

pub mod agent;
pub mod check;
pub mod collector;
pub mod cron;
pub mod diagnostics;
pub mod duration;
pub mod json_assert;
pub mod notify;
pub mod rrule;
pub mod selector;
pub mod slo;
pub mod status;
pub mod wire;

pub use agent::AgentConfig;
pub use check::{CheckConfig, CheckKind, Id};
pub use collector::CollectorConfig;
pub use diagnostics::{ConfigErrors, Diagnostic};
pub use duration::HumanDuration;
pub use selector::LabelSelector;

use std::path::{Path, PathBuf};

/// `s` as a TOML string literal, for configs built from values (quickstart, `probe`).
pub fn toml_quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(#[from] ConfigErrors),
    #[error("{0}")]
    Token(String),
}

fn read_source(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })
}

/// Relative paths in a config file are relative to the file's directory.
fn resolve_path(config_file: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match config_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_survives_what_operators_type() {
        for s in ["plain", "with \"quotes\"", "back\\slash", "new\nline", "ø unicode"] {
            let doc = format!("v = {}", super::toml_quote(s));
            let parsed: toml::Table = toml::from_str(&doc).unwrap();
            assert_eq!(parsed["v"].as_str(), Some(s), "{doc}");
        }
    }
}
