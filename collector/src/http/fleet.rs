//! The fleet as the on-call engineer sees it: each agent with when it was last heard from,
//! whether it counts as silent, its version and its clock. Served as `/api/v1/agents` and as
//! the `/agents` page.

use serde::Serialize;

use crate::app::App;
use crate::core::time::rfc3339;
use crate::store::AgentSummary;

#[derive(Clone, Debug, Serialize)]
pub struct AgentOverview {
    pub name: String,
    /// In `collector.toml` (an agent removed from it may still have history).
    pub configured: bool,
    pub last_seen: Option<String>,
    #[serde(skip)]
    pub last_seen_ms: Option<i64>,
    /// Not heard from for longer than its `silent_after`, or never.
    pub silent: bool,
    pub version: Option<String>,
    /// Its clock minus the collector's at its last push since the collector started.
    pub clock_skew_seconds: Option<f64>,
    pub batches: u64,
    pub samples: u64,
    pub last_sequence: u64,
    /// The run of sequence numbers it pushes under (a new one: its state directory is new).
    pub instance: Option<String>,
    pub instance_since: Option<String>,
    #[serde(skip)]
    pub instance_since_ms: Option<i64>,
}

/// Every agent the store knows or the configuration names, by name.
pub fn overview(app: &App, known: Vec<AgentSummary>, now_ms: i64) -> Vec<AgentOverview> {
    let silent_after_ms = |name: &str| i64::try_from(app.config.silent_after(name).as_millis()).unwrap_or(i64::MAX);
    let mut out: Vec<AgentOverview> = known
        .into_iter()
        .filter(|a| a.name != crate::core::heartbeat::HEARTBEAT_AGENT)
        .map(|a| AgentOverview {
            configured: app.config.agents.contains_key(a.name.as_str()),
            last_seen: Some(rfc3339(a.last_seen_ms)),
            last_seen_ms: Some(a.last_seen_ms),
            silent: now_ms - a.last_seen_ms > silent_after_ms(&a.name),
            clock_skew_seconds: app.clock_skew_ms(&a.name).map(|ms| ms as f64 / 1000.0),
            version: a.version,
            batches: a.batches,
            samples: a.samples,
            last_sequence: a.last_sequence,
            instance_since: a.instance_since_ms.map(rfc3339),
            instance_since_ms: a.instance_since_ms,
            instance: a.instance.filter(|i| !i.is_empty()),
            name: a.name,
        })
        .collect();
    for name in app.config.agents.keys() {
        if !out.iter().any(|v| v.name == name.as_str()) {
            out.push(AgentOverview {
                name: name.to_string(),
                configured: true,
                last_seen: None,
                last_seen_ms: None,
                silent: true,
                version: None,
                clock_skew_seconds: None,
                batches: 0,
                samples: 0,
                last_sequence: 0,
                instance: None,
                instance_since: None,
                instance_since_ms: None,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
