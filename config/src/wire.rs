//! The push protocol between agent and collector (JSON, optionally gzip-compressed).
//!
//! * `POST /api/v1/ingest` with `Authorization: Bearer <token>` and a [`Batch`]; the answer is an
//!   [`IngestAck`]. A batch is identified by `(agent, sequence)`: a replayed batch is stored once
//!   and acknowledged again with `duplicate = true`.
//! * `GET /api/v1/agents/{name}/checks` answers [`Assignments`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::check::CheckKind;

/// Current protocol version. The collector rejects batches of versions it does not know.
pub const PROTOCOL_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub version: u32,
    pub agent: String,
    /// Strictly increasing per agent across restarts.
    pub sequence: u64,
    pub samples: Vec<Sample>,
}

/// The result of one probe run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub check: String,
    /// Unix time of the probe start in milliseconds.
    pub timestamp_ms: i64,
    pub success: bool,
    /// Time the probe took, in seconds; absent when it never got an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_seconds: Option<f64>,
    /// Named values the probe measured (e.g. `status_code`), base units.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAck {
    pub sequence: u64,
    pub accepted: usize,
    pub duplicate: bool,
}

/// An error answer from the collector: `{"error": "..."}` with a 4xx/5xx status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    pub agent: String,
    pub checks: Vec<CheckSpec>,
}

/// A check as an agent runs it: durations resolved to milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub id: String,
    pub kind: CheckKind,
    pub target: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_status: Vec<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips_and_rejects_unknown_fields() {
        let batch = Batch {
            version: PROTOCOL_VERSION,
            agent: "web-1".into(),
            sequence: 7,
            samples: vec![Sample {
                check: "home".into(),
                timestamp_ms: 1_700_000_000_000,
                success: false,
                latency_seconds: Some(0.25),
                values: BTreeMap::from([("status_code".into(), 500.0)]),
                error: Some("status 500".into()),
            }],
        };
        let json = serde_json::to_string(&batch).unwrap();
        assert_eq!(serde_json::from_str::<Batch>(&json).unwrap(), batch);
        let bad = json.replace("\"sequence\"", "\"seq\":1,\"sequence\"");
        assert!(serde_json::from_str::<Batch>(&bad).is_err());
    }
}
