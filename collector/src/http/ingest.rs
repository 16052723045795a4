//! Decoding and checking pushed batches. Every rejection has a status and a reason a person can
//! act on; none of them takes the collector down.

use axum::http::StatusCode;
use flate2::bufread::GzDecoder;
use std::io::Read;
use vakt_config::check::valid_id;
use vakt_config::wire::{Batch, PROTOCOL_VERSION};

/// Samples stamped further in the future than this are refused (agent clock wrong).
pub const MAX_FUTURE_MS: i64 = 10 * 60 * 1000;
/// Samples older than this are refused (retention would drop them anyway).
pub const MAX_AGE_MS: i64 = 30 * 24 * 3600 * 1000;
/// Longest error text kept per sample.
pub const MAX_ERROR_LEN: usize = 4096;
pub const MAX_VALUES_PER_SAMPLE: usize = 64;
/// Longest name of a sample's value (a label of the series it becomes).
pub const MAX_VALUE_NAME_LEN: usize = 128;
/// Longest plausible probe latency: no probe waits a day.
pub const MAX_LATENCY_SECONDS: f64 = 86_400.0;
/// Longest agent version string.
pub const MAX_VERSION_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Malformed(String),
    #[error("protocol version {0} is not supported (this collector speaks version {PROTOCOL_VERSION})")]
    UnsupportedVersion(u32),
    #[error("{0}")]
    Invalid(String),
    #[error("storing the batch failed: {0}")]
    Store(String),
    #[error("agent {agent:?} pushes faster than agent_push_rate allows; retry in {retry_after_ms} ms")]
    RateLimited { agent: String, retry_after_ms: i64 },
    #[error("the collector holds as many pushed bodies as ingest_memory_bytes allows; retry shortly")]
    Overloaded,
    #[error("the body did not arrive within {0}")]
    BodyTimeout(String),
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            IngestError::Forbidden(_) => StatusCode::FORBIDDEN,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Malformed(_) | IngestError::UnsupportedVersion(_) | IngestError::Invalid(_) => {
                StatusCode::BAD_REQUEST
            }
            IngestError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The `reason` label of `vakt_ingest_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Unauthorized(_) => "unauthorized",
            IngestError::Forbidden(_) => "forbidden",
            IngestError::TooLarge(_) => "too_large",
            IngestError::Malformed(_) => "malformed",
            IngestError::UnsupportedVersion(_) => "unsupported_version",
            IngestError::Invalid(_) => "invalid",
            IngestError::Store(_) => "store_error",
            IngestError::RateLimited { .. } => "rate_limited",
            IngestError::Overloaded => "overloaded",
            IngestError::BodyTimeout(_) => "body_timeout",
        }
    }
}

/// Reads a pushed body of at most `max_bytes`, within `timeout`, holding its size in `budget`
/// (bytes, shared by all pushes) while it is in memory: the permits come back when the
/// returned guard is dropped. A declared length is reserved before anything is read.
pub async fn read_body(
    mut body: axum::body::Body,
    declared: Option<u64>,
    max_bytes: usize,
    budget: &std::sync::Arc<tokio::sync::Semaphore>,
    timeout: std::time::Duration,
) -> Result<(Vec<u8>, Option<tokio::sync::OwnedSemaphorePermit>), IngestError> {
    use http_body_util::BodyExt;
    let too_large = || IngestError::TooLarge(format!("body exceeds {max_bytes} bytes"));
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(too_large());
    }
    let permits = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut held = match declared {
        Some(n) => {
            Some(budget.clone().try_acquire_many_owned(permits(n as usize)).map_err(|_| IngestError::Overloaded)?)
        }
        None => None,
    };
    let read = async {
        let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| IngestError::Malformed(format!("reading the body failed: {e}")))?;
            let Ok(chunk) = frame.into_data() else { continue };
            if out.len() + chunk.len() > max_bytes {
                return Err(too_large());
            }
            // Beyond what was reserved (no or a wrong length declared): reserve as it comes.
            let reserved = held.as_ref().map_or(0, |p| p.num_permits());
            if out.len() + chunk.len() > reserved {
                let more = budget
                    .clone()
                    .try_acquire_many_owned(permits(out.len() + chunk.len() - reserved))
                    .map_err(|_| IngestError::Overloaded)?;
                match held.as_mut() {
                    Some(p) => p.merge(more),
                    None => held = Some(more),
                }
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(out)) => Ok((out, held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(IngestError::BodyTimeout(vakt_config::duration::format_duration(timeout))),
    }
}

/// Decompresses (gzip or identity) and parses a batch. `max_bytes` bounds the decompressed size,
/// so a small gzip bomb cannot fill memory.
pub fn decode(body: &[u8], content_encoding: Option<&str>, max_bytes: usize) -> Result<Batch, IngestError> {
    let owned;
    let json: &[u8] = match content_encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => body,
        Some(e) if e.is_empty() || e == "identity" => body,
        Some(e) if e == "gzip" || e == "x-gzip" => {
            let mut out = Vec::new();
            let mut gz = GzDecoder::new(body);
            (&mut gz)
                .take(max_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| IngestError::Malformed(format!("body is not valid gzip: {e}")))?;
            if out.len() > max_bytes {
                return Err(IngestError::TooLarge(format!("decompressed body exceeds {max_bytes} bytes")));
            }
            // One gzip member and nothing after it: bytes smuggled behind it are refused.
            let rest = gz.into_inner().len();
            if rest > 0 {
                return Err(IngestError::Malformed(format!("{rest} bytes follow the gzip stream")));
            }
            owned = out;
            &owned
        }
        Some(other) => {
            return Err(IngestError::Malformed(format!(
                "content-encoding {other:?} is not supported (send gzip or identity)"
            )))
        }
    };
    // One pass for a good batch; only a batch that does not parse is looked at again for its
    // version, so an old or new agent gets the right answer.
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    match serde_json::from_slice::<Batch>(json) {
        Ok(batch) if batch.version == PROTOCOL_VERSION => Ok(batch),
        Ok(batch) => Err(IngestError::UnsupportedVersion(batch.version)),
        Err(e) => match serde_json::from_slice::<VersionOnly>(json) {
            Ok(v) if v.version != PROTOCOL_VERSION => Err(IngestError::UnsupportedVersion(v.version)),
            _ => Err(IngestError::Malformed(format!("batch is not valid JSON: {e}"))),
        },
    }
}

/// Semantic checks of a decoded batch.
pub fn validate(batch: &Batch, now_ms: i64, max_samples: usize) -> Result<(), IngestError> {
    if batch.samples.len() > max_samples {
        return Err(IngestError::TooLarge(format!(
            "batch has {} samples; the limit is {max_samples}",
            batch.samples.len()
        )));
    }
    if i64::try_from(batch.sequence).is_err() {
        return Err(IngestError::Invalid(format!("sequence {} is beyond {}", batch.sequence, i64::MAX)));
    }
    if batch.agent_version.as_ref().is_some_and(|v| v.len() > MAX_VERSION_LEN) {
        return Err(IngestError::Invalid(format!("agent_version is longer than {MAX_VERSION_LEN} bytes")));
    }
    if batch
        .instance
        .as_ref()
        .is_some_and(|i| i.len() > 64 || !i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(IngestError::Invalid("instance must be up to 64 letters, digits and '-'".into()));
    }
    for (i, s) in batch.samples.iter().enumerate() {
        let bad = |what: String| IngestError::Invalid(format!("sample {i} (check {:?}): {what}", s.check));
        if !valid_id(&s.check) {
            return Err(bad("check id must be letters, digits, '-', '_' and '.' (up to 128)".into()));
        }
        if s.timestamp_ms > now_ms + MAX_FUTURE_MS {
            return Err(bad(format!(
                "timestamp {} is more than 10 minutes in the future (is the agent's clock right?)",
                crate::core::time::rfc3339(s.timestamp_ms)
            )));
        }
        if s.timestamp_ms < now_ms - MAX_AGE_MS {
            return Err(bad(format!("timestamp {} is older than 30 days", crate::core::time::rfc3339(s.timestamp_ms))));
        }
        if let Some(l) = s.latency_seconds {
            if !(l.is_finite() && (0.0..=MAX_LATENCY_SECONDS).contains(&l)) {
                return Err(bad(format!("latency_seconds {l} is not between 0 and {MAX_LATENCY_SECONDS}")));
            }
        }
        if s.values.len() > MAX_VALUES_PER_SAMPLE {
            return Err(bad(format!("{} values; the limit is {MAX_VALUES_PER_SAMPLE}", s.values.len())));
        }
        if let Some(name) = s.values.keys().find(|k| k.is_empty() || k.len() > MAX_VALUE_NAME_LEN) {
            return Err(bad(format!(
                "value name {:?} is empty or longer than {MAX_VALUE_NAME_LEN} bytes",
                name.chars().take(40).collect::<String>()
            )));
        }
        if let Some((name, v)) = s.values.iter().find(|(_, v)| !v.is_finite()) {
            return Err(bad(format!("value {name:?} is {v}, not a finite number")));
        }
        if s.error.as_ref().is_some_and(|e| e.len() > MAX_ERROR_LEN) {
            return Err(bad(format!("error text longer than {MAX_ERROR_LEN} bytes")));
        }
        if s.perfdata.len() > MAX_VALUES_PER_SAMPLE {
            return Err(bad(format!("{} performance values; the limit is {MAX_VALUES_PER_SAMPLE}", s.perfdata.len())));
        }
        for p in &s.perfdata {
            if p.label.is_empty() || p.label.len() > MAX_VALUE_NAME_LEN || p.unit.len() > 16 {
                return Err(bad(format!(
                    "performance label {:?} is empty or longer than {MAX_VALUE_NAME_LEN} bytes (or its unit too long)",
                    p.label.chars().take(40).collect::<String>()
                )));
            }
            let all = [Some(p.value), p.warn, p.crit, p.min, p.max];
            if all.iter().flatten().any(|v| !v.is_finite()) {
                return Err(bad(format!("performance value {:?} holds a number that is not finite", p.label)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    #[test]
    fn gzip_and_identity_decode_the_same() {
        let json = br#"{"version":1,"agent":"a","sequence":1,"samples":[]}"#;
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode(json, None, 1 << 20).unwrap(), decode(&gz, Some("gzip"), 1 << 20).unwrap());
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 10 << 20]).unwrap();
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 64 << 10);
        assert!(matches!(decode(&gz, Some("gzip"), 1 << 20), Err(IngestError::TooLarge(_))));
    }

    #[test]
    fn every_reason_is_a_declared_metric_label() {
        let all = [
            IngestError::Unauthorized(String::new()),
            IngestError::Forbidden(String::new()),
            IngestError::TooLarge(String::new()),
            IngestError::Malformed(String::new()),
            IngestError::UnsupportedVersion(2),
            IngestError::Invalid(String::new()),
            IngestError::Store(String::new()),
            IngestError::RateLimited { agent: String::new(), retry_after_ms: 1 },
            IngestError::Overloaded,
            IngestError::BodyTimeout(String::new()),
        ];
        for e in &all {
            assert!(crate::metrics::REJECT_REASONS.contains(&e.reason()), "{}", e.reason());
            assert!(e.status().is_client_error() || e.status().is_server_error());
        }
        // The rest are counted per sample (see `crate::core::admission`).
        let per_sample = [crate::core::admission::NOT_ASSIGNED, crate::core::admission::BACKFILL];
        assert_eq!(all.len() + per_sample.len(), crate::metrics::REJECT_REASONS.len());
        assert!(per_sample.iter().all(|r| crate::metrics::REJECT_REASONS.contains(r)));
    }

    #[test]
    fn gzip_with_trailing_bytes_is_refused() {
        let json = br#"{"version":1,"agent":"a","sequence":1,"samples":[]}"#;
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json).unwrap();
        let mut body = gz.finish().unwrap();
        body.extend_from_slice(b"smuggled");
        let err = decode(&body, Some("gzip"), 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "8 bytes follow the gzip stream");
    }

    #[test]
    fn numbers_from_the_wire_are_bounded() {
        let now = 1_700_000_000_000;
        let with = |f: &dyn Fn(&mut Batch)| {
            let mut b: Batch = serde_json::from_str(&format!(
                r#"{{"version":1,"agent":"a","sequence":1,"samples":[{{"check":"c","timestamp_ms":{now},"success":true}}]}}"#
            ))
            .unwrap();
            f(&mut b);
            validate(&b, now, 10).map_err(|e| e.to_string())
        };
        assert!(with(&|_| {}).is_ok());
        assert!(with(&|b| b.sequence = u64::MAX).unwrap_err().contains("sequence"));
        assert!(with(&|b| b.samples[0].latency_seconds = Some(1e300)).unwrap_err().contains("latency_seconds"));
        assert!(with(&|b| b.samples[0].timestamp_ms = i64::MAX).unwrap_err().contains("future"));
        assert!(with(&|b| b.samples[0].timestamp_ms = i64::MIN).unwrap_err().contains("older than 30 days"));
    }

    #[test]
    fn wrong_version_is_named() {
        let err = decode(br#"{"version":2,"agent":"a","sequence":1,"samples":[]}"#, None, 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "protocol version 2 is not supported (this collector speaks version 1)");
    }
}
