//! Any bytes as collector.toml and agent.toml: an error with a location, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(errors) = vakt_config::CollectorConfig::parse(&text, Path::new("fuzz.toml")) {
        // Every problem names the file.
        assert!(errors.to_string().contains("fuzz.toml"));
    }
    let _ = vakt_config::AgentConfig::parse(&text, Path::new("fuzz-agent.toml"));
});
