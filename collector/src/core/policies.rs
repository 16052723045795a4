//! What ingest needs to know of each check, from the config: flap protection, quorum,
//! staleness, probe interval, flap detection and the ITIL priority of its incidents.

use std::collections::HashMap;

use crate::core::state::Policy;

/// What ingest needs to know of each check: its flap protection and the ITIL priority of its
/// incidents. Checks the collector does not know get the defaults.
#[derive(Clone, Debug)]
pub struct Policies {
    pub flap: HashMap<String, Policy>,
    pub priority: HashMap<String, String>,
    /// A check with this many state changes within `flap_window_ms` is flapping (0: never).
    pub flap_threshold: u32,
    pub flap_window_ms: i64,
    /// Checks probed by several agents: how many must agree it is down.
    pub quorum: HashMap<String, u32>,
    /// How long a check's (or an agent's vote's) last result stays fresh.
    pub stale: HashMap<String, i64>,
    /// Each configured check's probe interval: how long one result vouches for it.
    pub interval: HashMap<String, i64>,
    /// Checks with flap detection of their own: (threshold, window ms).
    pub flap_of: HashMap<String, (u32, i64)>,
    /// The `[[remote_write]]` targets each stored sample is queued for, by name.
    pub remote_write: Vec<String>,
    /// Whether raw samples are kept (`store_raw_samples`); rollups are, either way.
    pub store_raw_samples: bool,
    /// Checks with `warning_incidents = true`, with the priority of their warnings.
    pub warning_incidents: HashMap<String, String>,
    /// Checks whose plugin's UNKNOWN counts as no data (`unknown_counts_as = "unknown"`).
    pub unknown_is_no_data: std::collections::HashSet<String>,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            flap: HashMap::new(),
            priority: HashMap::new(),
            flap_threshold: 6,
            flap_window_ms: 3_600_000,
            quorum: HashMap::new(),
            stale: HashMap::new(),
            interval: HashMap::new(),
            flap_of: HashMap::new(),
            remote_write: Vec::new(),
            store_raw_samples: true,
            warning_incidents: Default::default(),
            unknown_is_no_data: Default::default(),
        }
    }
}

impl Policies {
    pub fn get(&self, check: &str) -> Policy {
        self.flap.get(check).copied().unwrap_or_default()
    }

    /// Default: five minutes.
    pub fn stale_ms(&self, check: &str) -> i64 {
        self.stale.get(check).copied().unwrap_or(300_000)
    }

    /// The check's flap threshold (its own, or the collector's).
    pub fn flap_threshold_of(&self, check: &str) -> u32 {
        self.flap_of.get(check).map_or(self.flap_threshold, |(t, _)| *t)
    }

    /// The check's flap window (its own, or the collector's).
    pub fn flap_window_ms_of(&self, check: &str) -> i64 {
        self.flap_of.get(check).map_or(self.flap_window_ms, |(_, w)| *w)
    }

    /// The check's probe interval, when it is configured.
    pub fn interval_ms(&self, check: &str) -> Option<i64> {
        self.interval.get(check).copied()
    }

    pub fn priority(&self, check: &str) -> String {
        self.priority.get(check).cloned().unwrap_or_else(|| crate::core::incident::DEFAULT_PRIORITY.to_string())
    }
}
