//! The collector's Prometheus metrics. Every metric here is listed in `docs/metrics.md`.

use prometheus::{Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::core::state::{CheckState, Status};

/// Severities incidents carry; the bounded values of `severity`.
pub const SEVERITIES: &[&str] = &["critical", "page", "ticket", "warning"];

/// Reasons a request to the ingest API is rejected; the bounded values of `reason`.
pub const REJECT_REASONS: &[&str] = &[
    "unauthorized",
    "forbidden",
    "malformed",
    "too_large",
    "unsupported_version",
    "invalid",
    "store_error",
    "rate_limited",
    "overloaded",
    "body_timeout",
    "not_assigned",
    "backfill",
];

pub struct Metrics {
    registry: Registry,
    checks: std::sync::Arc<crate::check_series::CheckSeries>,
    incidents_open: IntGauge,
    incidents_by_priority: IntGaugeVec,
    incidents_by_severity: IntGaugeVec,
    storage_bytes: IntGauge,
    ingest_samples: IntCounter,
    ingest_batches: IntCounterVec,
    ingest_rejected: IntCounterVec,
    agent_last_seen: GaugeVec,
    agent_clock_skew: GaugeVec,
    connections_open: prometheus::IntGauge,
    connections_refused: prometheus::IntCounter,
    notifications: IntCounterVec,
    subscriber_messages: IntCounterVec,
    slo: SloMetrics,
    agent_info: GaugeVec,
    /// The version each agent last reported, to drop its old `agent_info` series.
    agent_versions: std::sync::Mutex<std::collections::HashMap<String, String>>,
    service_state: GaugeVec,
    service_mtta: GaugeVec,
    service_mttr: GaugeVec,
    mtta: GaugeVec,
    mttr: GaugeVec,
    cluster: ClusterMetrics,
    remote_write: RemoteWriteMetrics,
    /// Plugins' performance data: the value, and warn, crit, min and max where given.
    perfdata: [GaugeVec; 5],
    /// 1 while a plugin check's latest result was UNKNOWN.
    plugin_unknown: GaugeVec,
}

/// Each `[[remote_write]]` target's progress.
struct RemoteWriteMetrics {
    samples: IntCounterVec,
    failures: IntCounterVec,
    pending: IntGaugeVec,
    lag: GaugeVec,
}

/// How the nodes sharing a store see each other.
struct ClusterMetrics {
    is_leader: IntGauge,
    epoch: IntGauge,
    nodes: IntGauge,
    clock_offset: prometheus::Gauge,
    leader_changes: IntCounter,
    node_info: GaugeVec,
}

/// The states a service can be in; the bounded values of `state`.
pub const SERVICE_STATES: &[&str] = &["operational", "degraded", "down", "maintenance", "unknown"];

/// Over how long MTTA and MTTR are figured.
pub const MTTX_WINDOW_MS: i64 = 30 * 86_400_000;

/// SLO series: Vakt's own names, and Sloth's recording-rule names so existing SLO dashboards
/// work unchanged.
struct SloMetrics {
    /// Whether the Sloth-named series are published (`sloth_metrics = true`).
    sloth: std::sync::atomic::AtomicBool,
    error_ratio: GaugeVec,
    objective: GaugeVec,
    sli: GaugeVec,
    budget_remaining: GaugeVec,
    burn_rate: GaugeVec,
    sloth_objective: GaugeVec,
    sloth_error_budget: GaugeVec,
    sloth_period_remaining: GaugeVec,
    sloth_current_burn: GaugeVec,
    sloth_sli_error: Vec<(i64, GaugeVec)>,
}

/// The windows Sloth records `slo:sli_error:ratio_rate<window>` for.
pub const SLOTH_WINDOWS: &[(&str, i64)] = &[
    ("5m", 300_000),
    ("30m", 1_800_000),
    ("1h", 3_600_000),
    ("2h", 7_200_000),
    ("6h", 21_600_000),
    ("1d", 86_400_000),
    ("3d", 259_200_000),
];

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Names are static and distinct, so registration cannot collide.
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        tracing::error!(error = %e, "metric registration failed");
    }
    metric
}

impl Metrics {
    #[expect(clippy::expect_used, reason = "metric definitions are static and valid")]
    pub fn new() -> Self {
        let registry = Registry::new();
        let checks = std::sync::Arc::new(crate::check_series::CheckSeries::default());
        if let Err(e) = registry.register(Box::new(SharedChecks(checks.clone()))) {
            tracing::error!(error = %e, "registering the check series failed");
        }
        let incidents_open = register(
            &registry,
            IntGauge::new("vakt_incidents_open", "Incidents currently open").expect("valid metric"),
        );
        let incidents_by_priority = register(
            &registry,
            IntGaugeVec::new(
                Opts::new("vakt_incidents_open_by_priority", "Unresolved incidents by ITIL priority"),
                &["priority"],
            )
            .expect("valid metric"),
        );
        let incidents_by_severity = register(
            &registry,
            IntGaugeVec::new(
                Opts::new("vakt_incidents_open_by_severity", "Unresolved incidents by severity"),
                &["severity"],
            )
            .expect("valid metric"),
        );
        for p in ["P1", "P2", "P3", "P4", "P5"] {
            incidents_by_priority.with_label_values(&[p]);
        }
        for sev in SEVERITIES {
            incidents_by_severity.with_label_values(&[*sev]);
        }
        let storage_bytes = register(
            &registry,
            IntGauge::new("vakt_storage_bytes", "Size of the collector's database files on disk")
                .expect("valid metric"),
        );
        let ingest_samples = register(
            &registry,
            IntCounter::new("vakt_ingest_samples_total", "Samples committed to the store").expect("valid metric"),
        );
        let ingest_batches = register(
            &registry,
            IntCounterVec::new(
                Opts::new("vakt_ingest_batches_total", "Batches acknowledged, by outcome (accepted, duplicate)"),
                &["outcome"],
            )
            .expect("valid metric"),
        );
        let ingest_rejected = register(
            &registry,
            IntCounterVec::new(
                Opts::new("vakt_ingest_rejected_total", "Ingest requests rejected, by reason"),
                &["reason"],
            )
            .expect("valid metric"),
        );
        let agent_last_seen = register(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "vakt_agent_last_seen_timestamp_seconds",
                    "When the agent last pushed a batch (Unix seconds)",
                ),
                &["agent"],
            )
            .expect("valid metric"),
        );
        let agent_clock_skew = register(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "vakt_agent_clock_skew_seconds",
                    "The agent's clock minus the collector's at its last push (positive: the agent is ahead)",
                ),
                &["agent"],
            )
            .expect("valid metric"),
        );
        let connections_open = register(
            &registry,
            prometheus::IntGauge::new("vakt_http_connections_open", "HTTP connections open now").expect("valid metric"),
        );
        let connections_refused = register(
            &registry,
            prometheus::IntCounter::new(
                "vakt_http_connections_refused_total",
                "Connections closed at once because max_connections were open",
            )
            .expect("valid metric"),
        );
        let notifications = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "vakt_notifications_total",
                    "Notification attempts by receiver and outcome (delivered, retried, failed, suppressed)",
                ),
                &["receiver", "outcome"],
            )
            .expect("valid metric"),
        );
        let subscriber_messages = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "vakt_subscriber_messages_total",
                    "Messages to status page subscribers and report recipients by kind and outcome",
                ),
                &["kind", "outcome"],
            )
            .expect("valid metric"),
        );
        for kind in ["email", "webhook", "report"] {
            for outcome in ["delivered", "retried", "failed", "suppressed"] {
                subscriber_messages.with_label_values(&[kind, outcome]).reset();
            }
        }
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let sloth = ["sloth_id", "sloth_service", "sloth_slo"];
        let slo = SloMetrics {
            sloth: std::sync::atomic::AtomicBool::new(false),
            error_ratio: gauge(
                "vakt_slo_error_ratio",
                "Share of bad time or events over the window (burn rate x (1 - objective))",
                &["slo", "service", "window"],
            ),
            objective: gauge("vakt_slo_objective_ratio", "The SLO's target, e.g. 0.999", &["slo", "service"]),
            sli: gauge(
                "vakt_slo_sli_ratio",
                "Achieved over the SLO window (absent without valid data)",
                &["slo", "service"],
            ),
            budget_remaining: gauge(
                "vakt_slo_error_budget_remaining_ratio",
                "Error budget left in the SLO window: 1 untouched, 0 spent, below 0 overspent",
                &["slo", "service"],
            ),
            burn_rate: gauge(
                "vakt_slo_burn_rate",
                "Error budget burn rate over the window (1 spends it exactly in the SLO window)",
                &["slo", "service", "window"],
            ),
            sloth_objective: gauge("slo:objective:ratio", "Sloth-compatible: the SLO's target", &sloth),
            sloth_error_budget: gauge("slo:error_budget:ratio", "Sloth-compatible: 1 - objective", &sloth),
            sloth_period_remaining: gauge(
                "slo:period_error_budget_remaining:ratio",
                "Sloth-compatible: error budget left in the SLO period",
                &sloth,
            ),
            sloth_current_burn: gauge(
                "slo:current_burn_rate:ratio",
                "Sloth-compatible: burn rate over the shortest window",
                &sloth,
            ),
            sloth_sli_error: SLOTH_WINDOWS
                .iter()
                .map(|(w, ms)| {
                    (
                        *ms,
                        gauge(
                            &format!("slo:sli_error:ratio_rate{w}"),
                            &format!("Sloth-compatible: error ratio over {w}"),
                            &sloth,
                        ),
                    )
                })
                .collect(),
        };
        let build_info = register(
            &registry,
            GaugeVec::new(Opts::new("vakt_build_info", "Always 1; the collector's version as a label"), &["version"])
                .expect("valid metric"),
        );
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1.0);
        let agent_info =
            gauge("vakt_agent_info", "Always 1; the version each agent last reported", &["agent", "version"]);
        let service_state = gauge(
            "vakt_service_state",
            "1 for the state the service is in (operational, degraded, down, maintenance, unknown), 0 for the others",
            &["service", "state"],
        );
        let service_mtta = gauge(
            "vakt_service_mtta_seconds",
            "Mean time to acknowledge the service's incidents opened in the last 30 days",
            &["service"],
        );
        let service_mttr = gauge(
            "vakt_service_mttr_seconds",
            "Mean time to resolve the service's incidents opened in the last 30 days",
            &["service"],
        );
        let mtta = gauge(
            "vakt_incidents_mtta_seconds",
            "Mean time to acknowledge incidents opened in the last 30 days (absent until one is acknowledged)",
            &[],
        );
        let mttr = gauge(
            "vakt_incidents_mttr_seconds",
            "Mean time to resolve incidents opened in the last 30 days (absent until one is resolved)",
            &[],
        );
        let cluster = ClusterMetrics {
            is_leader: register(
                &registry,
                IntGauge::new("vakt_cluster_is_leader", "1 while this collector leads the time-driven work, else 0")
                    .expect("valid metric"),
            ),
            epoch: register(
                &registry,
                IntGauge::new("vakt_cluster_leader_epoch", "The current leader's term (fencing epoch), as last seen")
                    .expect("valid metric"),
            ),
            nodes: register(
                &registry,
                IntGauge::new("vakt_cluster_nodes", "Collectors sharing the store that were heard from recently")
                    .expect("valid metric"),
            ),
            clock_offset: register(
                &registry,
                prometheus::Gauge::new(
                    "vakt_cluster_clock_offset_seconds",
                    "The database's clock minus this collector's, measured at the last leader election",
                )
                .expect("valid metric"),
            ),
            leader_changes: register(
                &registry,
                IntCounter::new(
                    "vakt_cluster_leadership_changes_total",
                    "Times this collector became or stopped being the leader",
                )
                .expect("valid metric"),
            ),
            node_info: gauge(
                "vakt_cluster_node_info",
                "Always 1 per node heard from recently: its version and configuration hash (equal on every node when they run the same checks)",
                &["node", "version", "config_hash", "leader"],
            ),
        };
        let remote_write = RemoteWriteMetrics {
            samples: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "vakt_remote_write_samples_total",
                        "Probe results sent to a remote-write target (sent) or refused by it for good (dropped)",
                    ),
                    &["target", "outcome"],
                )
                .expect("valid metric"),
            ),
            failures: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "vakt_remote_write_failures_total",
                        "Remote-write requests that failed and will be retried",
                    ),
                    &["target"],
                )
                .expect("valid metric"),
            ),
            pending: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new("vakt_remote_write_pending_samples", "Probe results queued for a remote-write target"),
                    &["target"],
                )
                .expect("valid metric"),
            ),
            lag: gauge(
                "vakt_remote_write_lag_seconds",
                "Age of the oldest probe result queued for a remote-write target (0 when none waits)",
                &["target"],
            ),
        };
        let perf_labels = &["check", "label", "unit"];
        let perfdata = [
            gauge("vakt_check_perfdata", "A plugin's performance value as its last result gave it, in base units (label: the plugin's own, e.g. a mount point)", perf_labels),
            gauge("vakt_check_perfdata_warn", "The warning threshold a plugin gave with its performance value", perf_labels),
            gauge("vakt_check_perfdata_crit", "The critical threshold a plugin gave with its performance value", perf_labels),
            gauge("vakt_check_perfdata_min", "The lower bound a plugin gave with its performance value", perf_labels),
            gauge("vakt_check_perfdata_max", "The upper bound a plugin gave with its performance value", perf_labels),
        ];
        let plugin_unknown = gauge(
            "vakt_check_plugin_unknown",
            "1 while a plugin check's latest result was UNKNOWN (exit 3 or above, a timeout), 0 after any other result",
            &["check"],
        );
        for outcome in ["accepted", "duplicate"] {
            ingest_batches.with_label_values(&[outcome]);
        }
        for reason in REJECT_REASONS {
            ingest_rejected.with_label_values(&[*reason]);
        }
        Self {
            registry,
            checks,
            incidents_open,
            incidents_by_priority,
            incidents_by_severity,
            storage_bytes,
            ingest_samples,
            ingest_batches,
            ingest_rejected,
            agent_last_seen,
            agent_clock_skew,
            connections_open,
            connections_refused,
            notifications,
            subscriber_messages,
            slo,
            agent_info,
            agent_versions: Default::default(),
            service_state,
            service_mtta,
            service_mttr,
            mtta,
            mttr,
            cluster,
            remote_write,
            perfdata,
            plugin_unknown,
        }
    }

    /// Records the version an agent reports; a new version replaces the old series.
    pub fn agent_version(&self, agent: &str, version: &str) {
        let mut known = self.agent_versions.lock().unwrap_or_else(|p| p.into_inner());
        if known.get(agent).map(String::as_str) == Some(version) {
            return;
        }
        if let Some(old) = known.insert(agent.to_string(), version.to_string()) {
            let _ = self.agent_info.remove_label_values(&[agent, &old]);
        }
        self.agent_info.with_label_values(&[agent, version]).set(1.0);
    }

    /// Publishes each service's state: 1 on its state, 0 on the others.
    pub fn set_service_state(&self, service: &str, state: &str) {
        for s in SERVICE_STATES {
            self.service_state.with_label_values(&[service, s]).set(if *s == state { 1.0 } else { 0.0 });
        }
    }

    /// Publishes MTTA and MTTR (seconds): overall, and per service; `None` removes the series.
    pub fn set_mttx(&self, overall: (Option<f64>, Option<f64>), per_service: &[(String, Option<f64>, Option<f64>)]) {
        for (gauge, value) in [(&self.mtta, overall.0), (&self.mttr, overall.1)] {
            match value {
                Some(v) => gauge.with_label_values(&[] as &[&str]).set(v),
                None => {
                    let _ = gauge.remove_label_values(&[] as &[&str]);
                }
            }
        }
        for (service, a, r) in per_service {
            match a {
                Some(a) => self.service_mtta.with_label_values(&[service]).set(*a),
                None => {
                    let _ = self.service_mtta.remove_label_values(&[service]);
                }
            }
            match r {
                Some(r) => self.service_mttr.with_label_values(&[service]).set(*r),
                None => {
                    let _ = self.service_mttr.remove_label_values(&[service]);
                }
            }
        }
    }

    pub fn set_check_state(&self, check: &str, state: &CheckState) {
        let up = match state.status {
            Status::Up => Some(true),
            Status::Down => Some(false),
            Status::Unknown => None,
        };
        self.checks.set_state(check, up, state.degraded);
    }

    /// Several latencies of one check at once.
    pub fn observe_latencies(&self, check: &str, seconds: &[f64]) {
        self.checks.observe(check, seconds);
    }

    pub fn set_incidents_open(&self, n: i64) {
        self.incidents_open.set(n);
    }

    /// Recounts unresolved incidents from the store: in total, by priority, by severity.
    pub fn set_incidents_open_from(&self, store: &dyn crate::store::Store) {
        let filter = crate::store::IncidentFilter {
            status: Some(crate::core::incident::IncidentStatus::Open),
            ..Default::default()
        };
        match store.incidents(&filter) {
            Ok(open) => {
                self.incidents_open.set(open.len() as i64);
                for p in ["P1", "P2", "P3", "P4", "P5"] {
                    self.incidents_by_priority
                        .with_label_values(&[p])
                        .set(open.iter().filter(|i| i.priority == p).count() as i64);
                }
                for sev in SEVERITIES {
                    self.incidents_by_severity
                        .with_label_values(&[*sev])
                        .set(open.iter().filter(|i| i.severity == *sev).count() as i64);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot count open incidents"),
        }
    }

    pub fn set_cert_days_left(&self, check: &str, days: f64) {
        self.checks.set_cert_days_left(check, days);
    }

    /// Whether a plugin check's latest result was UNKNOWN.
    pub fn set_plugin_unknown(&self, check: &str, unknown: bool) {
        self.plugin_unknown.with_label_values(&[check]).set(if unknown { 1.0 } else { 0.0 });
    }

    /// A check's performance data from its latest result.
    pub fn set_perfdata(&self, check: &str, values: &[vakt_config::wire::PerfValue]) {
        for p in values {
            let labels = [check, p.label.as_str(), p.unit.as_str()];
            for (gauge, v) in self.perfdata.iter().zip([Some(p.value), p.warn, p.crit, p.min, p.max]) {
                if let Some(v) = v {
                    gauge.with_label_values(&labels).set(v);
                }
            }
        }
    }

    /// A remote-write target exists: its series start at zero.
    pub fn remote_write_reset(&self, target: &str) {
        for outcome in ["sent", "dropped"] {
            self.remote_write.samples.with_label_values(&[target, outcome]);
        }
        self.remote_write.failures.with_label_values(&[target]);
        self.remote_write.pending.with_label_values(&[target]);
        self.remote_write.lag.with_label_values(&[target]);
    }

    /// `outcome`: "sent" or "dropped".
    pub fn remote_write_samples(&self, target: &str, outcome: &str, n: usize) {
        self.remote_write.samples.with_label_values(&[target, outcome]).inc_by(n as u64);
    }

    pub fn remote_write_failed(&self, target: &str) {
        self.remote_write.failures.with_label_values(&[target]).inc();
    }

    pub fn remote_write_backlog(&self, target: &str, pending: u64, lag_seconds: f64) {
        self.remote_write.pending.with_label_values(&[target]).set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.remote_write.lag.with_label_values(&[target]).set(lag_seconds);
    }

    /// What the last leader election said of this node.
    pub fn set_leadership(&self, leader: bool, epoch: Option<i64>, clock_offset_ms: i64, changed: bool) {
        self.cluster.is_leader.set(i64::from(leader));
        if let Some(e) = epoch {
            self.cluster.epoch.set(e);
        }
        self.cluster.clock_offset.set(clock_offset_ms as f64 / 1000.0);
        if changed {
            self.cluster.leader_changes.inc();
        }
    }

    /// The nodes heard from recently, as the store lists them.
    pub fn set_cluster_nodes(&self, nodes: &[(String, String, String, bool)]) {
        self.cluster.nodes.set(nodes.len() as i64);
        self.cluster.node_info.reset();
        for (node, version, hash, leader) in nodes {
            self.cluster
                .node_info
                .with_label_values(&[
                    node.as_str(),
                    version.as_str(),
                    hash.as_str(),
                    if *leader { "true" } else { "false" },
                ])
                .set(1.0);
        }
    }

    pub fn set_storage_bytes(&self, bytes: u64) {
        self.storage_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn batch_accepted(&self, samples: usize) {
        self.ingest_batches.with_label_values(&["accepted"]).inc();
        self.ingest_samples.inc_by(samples as u64);
    }

    pub fn batch_duplicate(&self) {
        self.ingest_batches.with_label_values(&["duplicate"]).inc();
    }

    pub fn rejected(&self, reason: &'static str) {
        self.ingest_rejected.with_label_values(&[reason]).inc();
    }

    /// Samples refused one by one inside an accepted request (`not_assigned`, `backfill`).
    pub fn rejected_samples(&self, reason: &str, samples: u64) {
        if REJECT_REASONS.contains(&reason) {
            self.ingest_rejected.with_label_values(&[reason]).inc_by(samples);
        }
    }

    pub fn agent_seen(&self, agent: &str, at_ms: i64) {
        self.agent_last_seen.with_label_values(&[agent]).set(at_ms as f64 / 1000.0);
    }

    pub fn agent_clock_skew(&self, agent: &str, seconds: f64) {
        self.agent_clock_skew.with_label_values(&[agent]).set(seconds);
    }

    pub fn notification(&self, receiver: &str, outcome: &str) {
        self.notifications.with_label_values(&[receiver, outcome]).inc();
    }

    /// A subscriber message's outcome; `kind` is email, webhook or report.
    pub fn subscriber_message(&self, kind: &str, outcome: &str) {
        self.subscriber_messages.with_label_values(&[kind, outcome]).inc();
    }

    /// Makes a receiver's series visible at 0 before its first notification.
    pub fn notification_reset(&self, receiver: &str, outcome: &str) {
        self.notifications.with_label_values(&[receiver, outcome]).reset();
    }

    /// Also publishes the SLOs under Sloth's recording-rule names (`slo:*`).
    pub fn enable_sloth_names(&self) {
        self.slo.sloth.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Publishes an SLO verdict. `burn_rates` are (window ms, rate).
    pub fn set_slo(
        &self,
        slo: &str,
        service: &str,
        objective: f64,
        v: &crate::core::slo::Verdict,
        sloth_windows: &[(i64, f64)],
    ) {
        let m = &self.slo;
        m.objective.with_label_values(&[slo, service]).set(objective);
        match v.achieved {
            Some(a) => m.sli.with_label_values(&[slo, service]).set(a),
            None => {
                let _ = m.sli.remove_label_values(&[slo, service]);
            }
        }
        // No data: no budget figure either (absent, not "untouched").
        if v.status == crate::core::slo::Status::NoData {
            let _ = m.budget_remaining.remove_label_values(&[slo, service]);
        } else {
            m.budget_remaining.with_label_values(&[slo, service]).set(v.budget_remaining_ratio);
        }
        for (w, rate) in &v.burn_rates {
            let label = crate::core::time::human_duration_ms(*w);
            m.burn_rate.with_label_values(&[slo, service, &label]).set(*rate);
        }
        for (w, rate) in sloth_windows {
            let label = crate::core::time::human_duration_ms(*w);
            m.error_ratio.with_label_values(&[slo, service, &label]).set(rate * (1.0 - objective));
        }
        if !m.sloth.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let id = format!("{service}-{slo}");
        let sloth = [id.as_str(), service, slo];
        m.sloth_objective.with_label_values(&sloth).set(objective);
        m.sloth_error_budget.with_label_values(&sloth).set(1.0 - objective);
        m.sloth_period_remaining.with_label_values(&sloth).set(v.budget_remaining_ratio);
        if let Some((_, rate)) = sloth_windows.iter().min_by_key(|(w, _)| *w) {
            m.sloth_current_burn.with_label_values(&sloth).set(*rate);
        }
        for (w, gauge) in &m.sloth_sli_error {
            if let Some((_, rate)) = sloth_windows.iter().find(|(x, _)| x == w) {
                gauge.with_label_values(&sloth).set(rate * (1.0 - objective));
            }
        }
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let front = &CONNECTIONS;
        self.connections_open.set(i64::try_from(front.open.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(0));
        let refused = front.refused.load(std::sync::atomic::Ordering::Relaxed);
        self.connections_refused.inc_by(refused.saturating_sub(self.connections_refused.get()));
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The check series, shared between `Metrics` and the registry.
struct SharedChecks(std::sync::Arc<crate::check_series::CheckSeries>);

impl prometheus::core::Collector for SharedChecks {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.0.desc()
    }
    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.collect()
    }
}
/// Connections of this process's front, for `/metrics` (one front per process, whatever the
/// reloads of the configuration).
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: std::sync::atomic::AtomicU64,
    pub refused: std::sync::atomic::AtomicU64,
}

pub static CONNECTIONS: ConnectionStats =
    ConnectionStats { open: std::sync::atomic::AtomicU64::new(0), refused: std::sync::atomic::AtomicU64::new(0) };
