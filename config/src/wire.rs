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
    /// Names one run of the agent's sequence numbers: a random id made with its state
    /// directory. A wiped state directory starts a new instance, whose sequence starts at 1
    /// again; a replay is a duplicate only within the same instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Strictly increasing per agent instance across restarts.
    pub sequence: u64,
    pub samples: Vec<Sample>,
    /// The agent's version, e.g. "0.1.0" (shown as `vakt_agent_info`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
}

/// The result of one probe run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub check: String,
    /// Unix time of the probe start in milliseconds.
    pub timestamp_ms: i64,
    pub success: bool,
    /// Succeeded, but not well (slow, a plugin WARNING, a host value above its warning level).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub degraded: bool,
    /// Time the probe took, in seconds; absent when it never got an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_seconds: Option<f64>,
    /// Named values the probe measured (e.g. `status_code`), base units.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A plugin's performance data as it gave it: its own labels (a mount point such as `/`
    /// stays `/`), values in base units, and the thresholds and bounds where given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perfdata: Vec<PerfValue>,
}

/// One performance value of a Nagios-style plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerfValue {
    /// The label as the plugin wrote it.
    pub label: String,
    /// In base units: seconds, bytes, percent, a counter's total, or none.
    pub value: f64,
    /// `seconds`, `bytes`, `percent`, `total` or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAck {
    pub sequence: u64,
    pub accepted: usize,
    pub duplicate: bool,
    /// The agent's clock minus the collector's when the batch arrived, from [`SENT_AT_HEADER`];
    /// absent when the agent did not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_ms: Option<i64>,
    /// Changes whenever the collector's configuration does (a start, a reload): an agent that
    /// sees a new value fetches its assignments at once rather than at its next refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_generation: Option<String>,
    /// Samples of the batch that were not stored, per check, with the reason (a check not
    /// assigned to this agent, a backfill into the past). The rest of the batch was stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedSamples>,
}

impl IngestAck {
    /// The store's acknowledgement; the API adds the clock skew and configuration generation.
    pub fn new(sequence: u64, accepted: usize, duplicate: bool) -> Self {
        IngestAck { sequence, accepted, duplicate, clock_skew_ms: None, config_generation: None, refused: Vec::new() }
    }
}

/// Samples of one check the collector refused to store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedSamples {
    pub check: String,
    pub samples: usize,
    /// `not_assigned` or `backfill`.
    pub reason: String,
    pub message: String,
}

/// The body of `POST /api/v1/agents/{name}/checks`: the checks the agent runs on its own (from
/// its `agent.toml`). The collector answers with the agent's [`Assignments`]; it accepts
/// samples only for assigned checks and for local checks announced this way (the list replaces
/// the one announced before), up to a bound per agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalChecks {
    pub checks: Vec<std::sync::Arc<CheckSpec>>,
}

/// A local check the collector will not take samples for, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedLocalCheck {
    pub check: String,
    pub reason: String,
}

/// Header on every push: the agent's wall clock as it sends, in Unix milliseconds. The collector
/// compares it with its own clock to measure the agent's clock skew.
pub const SENT_AT_HEADER: &str = "x-vakt-sent-at";

/// A skew beyond this is reported in both logs and by the `VaktAgentClockSkew` alert: samples
/// carry the agent's time, so a wrong clock moves them in SLA windows and incident timelines.
pub const CLOCK_SKEW_WARN_MS: i64 = 30_000;

/// How the agent's clock stands to the collector's: "2h5m ahead of", "45s behind", "in step with"
/// (within a second), to be followed by "the collector's".
pub fn describe_clock_skew(skew_ms: i64) -> String {
    // To the nearest second: a push takes a moment, and "1h59m59s" reads worse than "2h".
    let size = crate::duration::format_duration(std::time::Duration::from_secs((skew_ms.unsigned_abs() + 500) / 1000));
    match skew_ms {
        -999..=999 => "in step with".to_string(),
        s if s > 0 => format!("{size} ahead of"),
        _ => format!("{size} behind"),
    }
}

/// An error answer from the collector: `{"error": "..."}` with a 4xx/5xx status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    pub agent: String,
    /// Shared: an agent runs these very specs, without copying them.
    pub checks: Vec<std::sync::Arc<CheckSpec>>,
    /// Announced local checks the collector refused (their samples will be refused too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_local: Vec<RefusedLocalCheck>,
    /// Optional sample fields this collector takes (`perfdata`): an agent sends them only to a
    /// collector that says so, since an older one refuses fields it does not know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepts: Vec<String>,
}

/// The value a plugin's UNKNOWN result carries (1): exit code 3 or above, a timeout, a signal.
pub const PLUGIN_UNKNOWN_VALUE: &str = "unknown";

/// What [`Assignments::accepts`] names for [`Sample::perfdata`].
pub const ACCEPTS_PERFDATA: &str = "perfdata";

/// A check as an agent runs it: durations resolved to milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub id: String,
    pub kind: CheckKind,
    pub target: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: CheckOptions,
}

impl CheckSpec {
    /// A spec with default options, e.g. for `vakt-agent probe`.
    pub fn new(id: &str, kind: CheckKind, target: &str, timeout_ms: u64) -> Self {
        CheckSpec {
            id: id.to_string(),
            kind,
            target: target.to_string(),
            interval_ms: timeout_ms.max(1),
            timeout_ms,
            labels: BTreeMap::new(),
            options: CheckOptions::default(),
        }
    }
}

/// Kind-specific options; see `CheckConfig` for their meaning. Unset options are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded_latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expect_status: Vec<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_expect: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub expect_headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_min_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_min_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdap_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_loss_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_rcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_answer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_is_described_from_the_agents_side() {
        assert_eq!(describe_clock_skew(7_203_400), "2h3s ahead of");
        assert_eq!(describe_clock_skew(-45_000), "45s behind");
        assert_eq!(describe_clock_skew(7_199_950), "2h ahead of");
        assert_eq!(describe_clock_skew(-800), "in step with");
        assert_eq!(describe_clock_skew(0), "in step with");
    }

    #[test]
    fn an_ack_from_an_older_collector_has_no_skew() {
        let ack: IngestAck = serde_json::from_str(r#"{"sequence":3,"accepted":2,"duplicate":false}"#).unwrap();
        assert_eq!((ack.clock_skew_ms, ack.config_generation), (None, None));
    }

    #[test]
    fn batch_round_trips_and_rejects_unknown_fields() {
        let batch = Batch {
            version: PROTOCOL_VERSION,
            agent: "web-1".into(),
            agent_version: Some("0.1.0".into()),
            instance: Some("5f0c1d2e3a4b5c6d".into()),
            sequence: 7,
            samples: vec![Sample {
                check: "home".into(),
                timestamp_ms: 1_700_000_000_000,
                success: false,
                degraded: false,
                latency_seconds: Some(0.25),
                values: BTreeMap::from([("status_code".into(), 500.0)]),
                error: Some("status 500".into()),
                perfdata: Vec::new(),
            }],
        };
        let json = serde_json::to_string(&batch).unwrap();
        assert_eq!(serde_json::from_str::<Batch>(&json).unwrap(), batch);
        let bad = json.replace("\"sequence\"", "\"seq\":1,\"sequence\"");
        assert!(serde_json::from_str::<Batch>(&bad).is_err());
    }
}
