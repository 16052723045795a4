//! Latency histograms (hdrhistogram, microseconds, two significant digits) kept per check and
//! minute, merged over SLO windows.

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

/// Highest latency recorded: one hour; slower values are clamped.
const MAX_US: u64 = 3_600_000_000;

#[expect(clippy::expect_used, reason = "constant bounds and precision within hdrhistogram's limits")]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 2).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, seconds: f64) {
    let us = (seconds * 1e6).round().clamp(1.0, MAX_US as f64) as u64;
    h.saturating_record(us);
}

pub fn encode(h: &Histogram<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = V2Serializer::new().serialize(h, &mut out) {
        tracing::error!(error = %e, "encoding a latency histogram failed");
    }
    out
}

pub fn decode(bytes: &[u8]) -> Option<Histogram<u64>> {
    Deserializer::new().deserialize(&mut std::io::Cursor::new(bytes)).ok()
}

/// Recorded values strictly above `threshold_seconds`.
pub fn count_above(h: &Histogram<u64>, threshold_seconds: f64) -> u64 {
    let t = (threshold_seconds * 1e6).round() as u64;
    if t >= h.max() {
        return 0;
    }
    h.iter_recorded().filter(|v| v.value_iterated_to() > t).map(|v| v.count_at_value()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_threshold_counts() {
        let mut h = new_histogram();
        for ms in [10.0, 20.0, 250.0, 400.0, 1200.0] {
            record(&mut h, ms / 1000.0);
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(count_above(&back, 0.3), 2);
        assert_eq!(count_above(&back, 2.0), 0);
        assert_eq!(count_above(&back, 0.001), 5);
        let p99 = back.value_at_quantile(0.99) as f64 / 1e6;
        assert!((1.19..=1.21).contains(&p99), "{p99}");
    }
}
