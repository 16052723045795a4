//! Any bytes as an ingest body, plain and as gzip: decoded and validated, or refused with a
//! reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for encoding in [None, Some("gzip")] {
        if let Ok(batch) = vakt_collector::http::ingest::decode(data, encoding, 1 << 20) {
            let _ = vakt_collector::http::ingest::validate(&batch, 1_795_000_000_000, 100_000);
        }
    }
});
