//! The Prometheus remote-write 1.0 request, encoded by hand: a protobuf `WriteRequest` of
//! `TimeSeries` (sorted labels, samples in time order), compressed with snappy's block format.
//!
//! ```text
//! message WriteRequest { repeated TimeSeries timeseries = 1; }
//! message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! message Label        { string name = 1; string value = 2; }
//! message Sample       { double value = 1; int64 timestamp = 2; }  // ms since the epoch
//! ```

use std::collections::BTreeMap;

use crate::store::QueuedSample;

/// One series: its labels (sorted by name, `__name__` first) and its samples in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(i64, f64)>,
}

/// A metric name from a value's name: `vakt_probe_` and the name with anything outside
/// `[a-zA-Z0-9_]` made `_`.
pub fn metric_name(value: &str) -> String {
    let clean: String = value.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    format!("vakt_probe_{clean}")
}

/// The series of some probe results: per check and agent, `vakt_probe_success` (1 or 0),
/// `vakt_probe_duration_seconds` where a latency was measured, and one `vakt_probe_<value>`
/// per reported value (status code, certificate days left, a plugin's performance data).
pub fn series_of(samples: &[QueuedSample]) -> Vec<Series> {
    let mut by_series: BTreeMap<(String, String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for s in samples {
        let mut push = |name: String, v: f64| {
            by_series.entry((name, s.agent.clone(), s.check.clone())).or_default().push((s.timestamp_ms, v));
        };
        push("vakt_probe_success".into(), if s.success { 1.0 } else { 0.0 });
        if let Some(l) = s.latency_seconds {
            push("vakt_probe_duration_seconds".into(), l);
        }
        for (name, v) in &s.values {
            push(metric_name(name), *v);
        }
    }
    by_series
        .into_iter()
        .map(|((name, agent, check), mut samples)| {
            samples.sort_by_key(|(t, _)| *t);
            samples.dedup_by_key(|(t, _)| *t);
            Series {
                labels: vec![("__name__".into(), name), ("agent".into(), agent), ("check".into(), check)],
                samples,
            }
        })
        .collect()
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The protobuf `WriteRequest`, uncompressed.
pub fn encode(series: &[Series]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ts = Vec::new();
    let mut item = Vec::new();
    for s in series {
        ts.clear();
        for (name, value) in &s.labels {
            item.clear();
            bytes_field(&mut item, 1, name.as_bytes());
            bytes_field(&mut item, 2, value.as_bytes());
            bytes_field(&mut ts, 1, &item);
        }
        for (t, v) in &s.samples {
            item.clear();
            key(&mut item, 1, 1);
            item.extend_from_slice(&v.to_bits().to_le_bytes());
            key(&mut item, 2, 0);
            varint(&mut item, *t as u64); // int64: two's complement, as protobuf does
            bytes_field(&mut ts, 2, &item);
        }
        bytes_field(&mut out, 1, &ts);
    }
    out
}

/// The request body: the encoded `WriteRequest` in snappy's block format.
pub fn body(series: &[Series]) -> Result<Vec<u8>, String> {
    snap::raw::Encoder::new().compress_vec(&encode(series)).map_err(|e| format!("snappy: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: i64, t: i64, ok: bool) -> QueuedSample {
        QueuedSample {
            id,
            check: "web".into(),
            agent: "a1".into(),
            timestamp_ms: t,
            success: ok,
            latency_seconds: Some(0.25),
            values: [("status code".to_string(), 503.0)].into_iter().collect(),
        }
    }

    #[test]
    fn samples_become_sorted_series_per_check_agent_and_value() {
        let got = series_of(&[sample(2, 2_000, false), sample(1, 1_000, true)]);
        let names: Vec<&str> = got.iter().map(|s| s.labels[0].1.as_str()).collect();
        assert_eq!(names, ["vakt_probe_duration_seconds", "vakt_probe_status_code", "vakt_probe_success"]);
        let success = &got[2];
        assert_eq!(success.samples, vec![(1_000, 1.0), (2_000, 0.0)], "in time order whatever the queue order");
        let label_names: Vec<&str> = success.labels.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(label_names, ["__name__", "agent", "check"], "sorted, as remote write requires");
    }

    /// The bytes for one series with one label and one sample, worked out by hand from the
    /// protobuf encoding rules: field 1 of WriteRequest (0x0a) holding a TimeSeries whose
    /// label (0x0a) holds name "a" (0x0a 0x01 'a') and value "b" (0x12 0x01 'b'), and whose
    /// sample (0x12) holds value 1.0 as a little-endian double (0x09 + 8 bytes) and timestamp
    /// 300 as a varint (0x10 0xac 0x02).
    #[test]
    fn the_encoding_matches_protobuf_by_hand() {
        let series = [Series { labels: vec![("a".into(), "b".into())], samples: vec![(300, 1.0)] }];
        let label = [0x0a, 0x01, b'a', 0x12, 0x01, b'b'];
        let sample = [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xac, 0x02];
        let mut ts = vec![0x0a, label.len() as u8];
        ts.extend(label);
        ts.push(0x12);
        ts.push(sample.len() as u8);
        ts.extend(sample);
        let mut want = vec![0x0a, ts.len() as u8];
        want.extend(ts);
        assert_eq!(encode(&series), want);
        let decoded = snap::raw::Decoder::new().decompress_vec(&body(&series).unwrap()).unwrap();
        assert_eq!(decoded, want, "snappy round trip");
    }
}
