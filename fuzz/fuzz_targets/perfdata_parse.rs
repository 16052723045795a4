//! Any plugin output as performance data: parsed or skipped, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vakt_agent::probe::perfdata::parse(&String::from_utf8_lossy(data));
});
