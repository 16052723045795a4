//! The shared state of a running collector: its config, store, metrics, tokens, routing and
//! limits, held by the HTTP layer and the runners (evaluator, outbox worker). It depends on
//! the layers below (core, store, metrics), never on `http` or the runners.

use std::net::SocketAddr;
use std::sync::Arc;
use vakt_config::wire::{describe_clock_skew, CLOCK_SKEW_WARN_MS};
use vakt_config::CollectorConfig;

use crate::auth::TokenTable;
use crate::core::policies::Policies;
use crate::core::state::Policy;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Everything a request handler needs.
pub struct App {
    /// Shared with the notification router: one copy, however many checks it holds.
    pub config: Arc<CollectorConfig>,
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    pub tokens: TokenTable,
    /// API tokens of people and tools, by name.
    pub api_tokens: TokenTable,
    /// What each API token may do, by name.
    api_scopes: std::collections::HashMap<String, vakt_config::collector::Scope>,
    pub policies: Policies,
    /// Notification routing (the store writes the outbox with it too).
    pub router: crate::core::routing::Router,
    /// Wakes the outbox worker when an incident event wrote notifications.
    pub outbox_wakeup: tokio::sync::Notify,
    /// Per-agent push rate limits.
    pub rate_limiter: crate::core::ratelimit::RateLimiter,
    /// Subscribe requests from the public, per client address and in all.
    pub subscribe_limits: crate::core::ratelimit::HourlyLimits,
    /// Status pages per audience (`[status_pages.NAME]`), resolved.
    pub audience_pages: Vec<crate::core::audience::AudiencePage>,
    /// When maintenance notices to subscribers were last planned (they are every few seconds).
    pub notices_planned_ms: std::sync::atomic::AtomicI64,
    /// Names this configuration in acks (see `IngestAck::config_generation`).
    pub generation: String,
    /// Each agent's clock skew at its last push (ms), since this configuration took over.
    clock_skew: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// Bytes of pushed bodies that may be in memory at once (`ingest_memory_bytes`).
    pub ingest_budget: Arc<tokio::sync::Semaphore>,
    /// The local checks agents announced: check → agent (kept in the store too).
    local_checks: std::sync::RwLock<std::collections::HashMap<String, String>>,
    /// This node's standing among the collectors sharing the store: only the leader runs the
    /// time-driven work (evaluation, notification delivery, pruning).
    pub leadership: Leadership,
    /// The last write probe of the store: when, and what it found (see [`App::store_health`]).
    store_health: std::sync::Mutex<Option<(i64, Result<(), String>)>>,
    /// Why the last batch could not be committed, until one is again.
    write_failure: std::sync::Mutex<Option<String>>,
    /// (agent, check, reason) refusals already logged, so each is logged once.
    refusals_logged: std::sync::Mutex<std::collections::HashSet<(String, String, String)>>,
    /// The heartbeat checks: their ping keys, when runs are due, runs started.
    pub heartbeats: crate::core::heartbeat::Heartbeats,
    /// The zone pages show times in.
    pub display_tz: jiff::tz::TimeZone,
    /// The last SLO round's verdicts and when it ran: pages show them instead of evaluating
    /// 30 days of rollups again per view.
    pub slo_verdicts: std::sync::RwLock<Option<SloRound>>,
}

/// The heartbeat checks with their ping keys read (an error names the check and where the key
/// was looked for, never the key).
fn heartbeats_of(config: &CollectorConfig) -> Result<crate::core::heartbeat::Heartbeats, ServerError> {
    let mut checks = Vec::new();
    for (id, c) in config.checks.iter().filter(|(_, c)| c.kind == vakt_config::CheckKind::Heartbeat) {
        let key = c
            .ping_key
            .as_ref()
            .map(|k| k.get_ref().read())
            .transpose()
            .map_err(|e| ServerError::Config(format!("check {id:?}: ping_key: {e}")))?
            .flatten()
            .filter(|k| k.len() >= 16)
            .ok_or_else(|| {
                ServerError::Config(format!("check {id:?}: ping_key is missing or shorter than 16 characters"))
            })?;
        let expectation =
            crate::core::heartbeat::expectation_of(c).map_err(|e| ServerError::Config(format!("check {id:?}: {e}")))?;
        checks.push((id.to_string(), key, expectation));
    }
    Ok(crate::core::heartbeat::Heartbeats::new(checks))
}

/// One SLO round: when it ran, and each SLO's verdict.
pub type SloRound = (i64, Vec<(String, crate::core::slo::Verdict)>);

/// When this process started, and its id: with the node name, the holder of a leadership
/// term, so that a restarted node never inherits the term of the process before it.
fn process_start() -> (u32, i64) {
    static START: std::sync::OnceLock<(u32, i64)> = std::sync::OnceLock::new();
    *START.get_or_init(|| (std::process::id(), crate::core::time::now_ms()))
}

/// This node's standing among the collectors sharing the store, as its last campaign left it.
pub struct Leadership {
    pub me: crate::store::NodeInfo,
    lease: std::time::Duration,
    /// Whether a term runs out unless renewed (a shared store), or lasts (SQLite: one node).
    expires: bool,
    term: std::sync::Mutex<Term>,
}

#[derive(Clone, Debug, Default)]
struct Term {
    epoch: Option<i64>,
    /// Where this node stops acting as leader unless a renewal comes first: the lease counted
    /// from before the campaign was sent, on this machine's monotonic clock (which runs on
    /// while the process is frozen).
    until: Option<std::time::Instant>,
    leader: Option<String>,
}

impl Leadership {
    fn new(config: &CollectorConfig, generation: &str) -> Self {
        let (pid, started_ms) = process_start();
        let node = config.node_name();
        let store = config.store.get_ref();
        Leadership {
            me: crate::store::NodeInfo {
                holder: format!("{node}#{pid}.{started_ms}"),
                node,
                version: env!("CARGO_PKG_VERSION").to_string(),
                config_hash: generation.to_string(),
                started_ms,
            },
            lease: store.leader_lease.get(),
            expires: store.kind == vakt_config::collector::StoreKind::Postgres,
            term: Default::default(),
        }
    }

    /// How long a term lasts without renewal.
    pub fn lease(&self) -> std::time::Duration {
        self.lease
    }

    /// The epoch of the term this node holds now, if it leads.
    pub fn epoch(&self) -> Option<i64> {
        let term = self.term.lock().unwrap_or_else(|p| p.into_inner());
        match (term.epoch, term.until) {
            (Some(e), Some(until)) if std::time::Instant::now() < until => Some(e),
            (Some(e), None) if !self.expires => Some(e),
            _ => None,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.epoch().is_some()
    }

    /// Who leads, as the last campaign saw it.
    pub fn leader(&self) -> Option<String> {
        self.term.lock().unwrap_or_else(|p| p.into_inner()).leader.clone()
    }

    /// Renews or seeks the leadership, and says what changed. Blocking.
    pub fn campaign(&self, store: &dyn Store, metrics: &Metrics) -> Result<(), StoreError> {
        let asked_at = std::time::Instant::now();
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let campaign = store.campaign(&self.me, lease_ms)?;
        // The term held before, whether or not its lease ran out meanwhile (a frozen process
        // wakes up past it).
        let (had, leader_before) = {
            let mut term = self.term.lock().unwrap_or_else(|p| p.into_inner());
            let before = (term.epoch, term.leader.clone());
            term.epoch = campaign.epoch;
            term.until = (self.expires && campaign.epoch.is_some()).then(|| asked_at + self.lease);
            term.leader.clone_from(&campaign.leader);
            before
        };
        let now = self.epoch();
        let changed = had != campaign.epoch;
        match (had, campaign.epoch) {
            (None, Some(epoch)) => tracing::info!(node = %self.me.node, epoch, "this collector leads now"),
            (Some(was), Some(epoch)) if was != epoch => {
                tracing::warn!(node = %self.me.node, was, epoch, "this collector leads again, in a new term")
            }
            (Some(epoch), None) => {
                tracing::warn!(node = %self.me.node, epoch, leader = ?campaign.leader, "this collector no longer leads")
            }
            (None, None) if campaign.leader != leader_before => {
                tracing::info!(leader = ?campaign.leader, "the leader is another collector")
            }
            _ => {}
        }
        metrics.set_leadership(now.is_some(), campaign.epoch, campaign.clock_offset_ms, changed);
        Ok(())
    }
}

/// Names what agents are told to run: a hash of every agent's assignments, so that collectors
/// sharing a database with the same checks give the same generation, and an agent refetches
/// its checks only when they changed.
pub fn generation_of(config: &CollectorConfig) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for name in config.agents.keys() {
        hash.update(name.as_str().as_bytes());
        hash.update([0]);
        for spec in config.assignments_for(name.as_str()) {
            hash.update(serde_json::to_vec(&spec).unwrap_or_default());
            hash.update([0]);
        }
        hash.update([1]);
    }
    let digest = hash.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// How long a store write probe's answer is reused by `/healthz` and `/readyz`.
pub const HEALTH_PROBE_EVERY_MS: i64 = 5_000;

/// At most this many distinct refusals are logged one by one (the metric counts them all).
const MAX_REFUSALS_LOGGED: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("serving HTTP failed: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// The status pages per audience: their services (a customer's and those named), their
/// tokens read and their logos embedded.
fn audience_pages_of(config: &CollectorConfig) -> Result<Vec<crate::core::audience::AudiencePage>, ServerError> {
    use base64::Engine;
    let mut out = Vec::new();
    for (name, p) in &config.status_pages {
        let mut services: Vec<String> = config
            .services
            .iter()
            .filter(|(_, s)| p.customer.as_ref().is_some_and(|c| s.customers.contains(c)))
            .map(|(n, _)| n.to_string())
            .chain(p.services.iter().map(|s| s.get_ref().to_string()))
            .collect();
        services.sort();
        services.dedup();
        let token = match &p.token {
            Some(t) => Some(
                t.read()
                    .map_err(|e| ServerError::Config(format!("status_pages.{name}: token: {e}")))?
                    .filter(|t| t.len() >= 16)
                    .ok_or_else(|| {
                        ServerError::Config(format!(
                            "status_pages.{name}: token is missing or shorter than 16 characters"
                        ))
                    })?,
            ),
            None => None,
        };
        let logo = match &p.logo_file {
            Some(f) => {
                let path = f.get_ref();
                let bytes = std::fs::read(path).map_err(|e| {
                    ServerError::Config(format!("status_pages.{name}: logo_file {}: {e}", path.display()))
                })?;
                let mime = match path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase().as_str() {
                    "svg" => "image/svg+xml",
                    "png" => "image/png",
                    _ => "image/jpeg",
                };
                Some(format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
            }
            None => None,
        };
        out.push(crate::core::audience::AudiencePage {
            name: name.to_string(),
            title: p.title.clone().unwrap_or_else(|| format!("{name} service status")),
            services,
            hosts: p.hosts.iter().map(|h| h.get_ref().to_ascii_lowercase()).collect(),
            token,
            logo,
            footer: p.footer_links.iter().map(|l| (l.text.clone(), l.url.clone())).collect(),
        });
    }
    Ok(out)
}

impl App {
    /// Opens the store and primes the metrics from what it holds, so a restarted collector
    /// exports the same state it had.
    pub fn open(config: CollectorConfig) -> Result<Self, ServerError> {
        for w in crate::core::maintenance::dst_warnings_ahead(&config, crate::core::time::now_ms()) {
            tracing::warn!("{w}");
        }
        let config = Arc::new(config);
        let router = crate::core::routing::Router::new(config.clone());
        let store: Arc<dyn Store> = crate::store::open(&config, router.clone())?;
        let metrics = Metrics::new();
        if config.sloth_metrics {
            metrics.enable_sloth_names();
        }
        for (check, state) in store.check_states()?.into_iter().filter(|(c, _)| !c.contains('@')) {
            metrics.set_check_state(&check, &state);
        }
        for agent in store.agents()?.into_iter().filter(|a| a.name != crate::core::heartbeat::HEARTBEAT_AGENT) {
            metrics.agent_seen(&agent.name, agent.last_seen_ms);
            if let Some(v) = &agent.version {
                metrics.agent_version(&agent.name, v);
            }
        }
        metrics.set_incidents_open_from(store.as_ref());
        let local_checks = store.local_checks()?.into_iter().collect();
        for name in config.receivers.keys() {
            for outcome in ["delivered", "retried", "failed", "suppressed"] {
                metrics.notification_reset(name.as_str(), outcome);
            }
        }
        let rate = *config.agent_push_rate.get_ref();
        let rate_limiter = crate::core::ratelimit::RateLimiter::new(rate, 2.0 * rate);
        let tokens =
            TokenTable::new(config.agents.iter().map(|(name, a)| (name.to_string(), a.token_hash.get_ref().clone())));
        let policies = Policies {
            flap: config
                .checks
                .iter()
                .map(|(id, c)| {
                    (
                        id.to_string(),
                        // A job's report is its run's result: one failure is down, one
                        // success up, unless the check says otherwise.
                        match c.kind {
                            vakt_config::CheckKind::Heartbeat => Policy {
                                fail_after: if c.fail_after.span() == (0..0) { 1 } else { *c.fail_after.get_ref() },
                                recover_after: if c.recover_after.span() == (0..0) {
                                    1
                                } else {
                                    *c.recover_after.get_ref()
                                },
                            },
                            _ => Policy {
                                fail_after: *c.fail_after.get_ref(),
                                recover_after: *c.recover_after.get_ref(),
                            },
                        },
                    )
                })
                .collect(),
            priority: config
                .checks
                .keys()
                .map(|id| {
                    let services = crate::core::catalog::services_of(
                        &config,
                        crate::core::incident::IncidentKind::CheckDown,
                        id.as_str(),
                    );
                    (id.to_string(), crate::core::catalog::priority_for(&config, &services, "critical"))
                })
                .collect(),
            quorum: config
                .checks
                .iter()
                .filter_map(|(id, c)| c.quorum.as_ref().map(|q| (id.to_string(), *q.get_ref())))
                .collect(),
            stale: config
                .checks
                .iter()
                .map(|(id, c)| {
                    let interval = i64::try_from(c.interval.get_ref().get().as_millis()).unwrap_or(i64::MAX / 4);
                    // A heartbeat is never stale: a missing ping is a missed run (down).
                    if c.kind == vakt_config::CheckKind::Heartbeat {
                        return (id.to_string(), i64::MAX / 4);
                    }
                    (id.to_string(), (3 * interval).max(30_000))
                })
                .collect(),
            interval: config
                .checks
                .iter()
                .map(|(id, c)| {
                    (id.to_string(), i64::try_from(c.interval.get_ref().get().as_millis()).unwrap_or(i64::MAX / 4))
                })
                .collect(),
            flap_of: config
                .checks
                .iter()
                .filter(|(_, c)| c.flap_threshold.is_some() || c.flap_window.is_some())
                .map(|(id, c)| {
                    let window = c.flap_window.unwrap_or(config.flap_window).get();
                    (
                        id.to_string(),
                        (
                            c.flap_threshold.unwrap_or(config.flap_threshold),
                            i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
                        ),
                    )
                })
                .collect(),
            flap_threshold: config.flap_threshold,
            flap_window_ms: i64::try_from(config.flap_window.get().as_millis()).unwrap_or(i64::MAX),
            remote_write: config.remote_write.iter().map(|r| r.get_ref().name.clone()).collect(),
            store_raw_samples: config.store_raw_samples,
            unknown_is_no_data: config
                .checks
                .iter()
                .filter(|(_, c)| c.unknown_counts_as == vakt_config::check::UnknownCountsAs::Unknown)
                .map(|(id, _)| id.to_string())
                .collect(),
            warning_incidents: config
                .checks
                .iter()
                .filter(|(_, c)| c.warning_incidents)
                .map(|(id, _)| {
                    let services = crate::core::catalog::services_of(
                        &config,
                        crate::core::incident::IncidentKind::CheckWarning,
                        id.as_str(),
                    );
                    (id.to_string(), crate::core::catalog::priority_for(&config, &services, "warning"))
                })
                .collect(),
        };
        let api_tokens = TokenTable::new(
            config.api_tokens.iter().map(|(name, t)| (name.to_string(), t.token_hash.get_ref().clone())),
        );
        let ingest_budget = Arc::new(tokio::sync::Semaphore::new(
            (*config.ingest_memory_bytes.get_ref()).min(tokio::sync::Semaphore::MAX_PERMITS),
        ));
        let api_scopes = config.api_tokens.iter().map(|(name, t)| (name.to_string(), t.scope)).collect();
        let heartbeats = heartbeats_of(&config)?;
        let audience_pages = audience_pages_of(&config)?;
        let display_tz =
            crate::core::time::display_zone(config.display_timezone.as_ref().map(|t| t.get_ref().as_str()));
        let generation = generation_of(&config);
        let leadership = Leadership::new(&config, &generation);
        leadership.campaign(store.as_ref(), &metrics)?;
        Ok(App {
            leadership,
            api_scopes,
            config,
            store,
            metrics,
            tokens,
            api_tokens,
            policies,
            router,
            outbox_wakeup: tokio::sync::Notify::new(),
            subscribe_limits: Default::default(),
            audience_pages,
            notices_planned_ms: Default::default(),
            rate_limiter,
            generation,
            clock_skew: Default::default(),
            ingest_budget,
            local_checks: std::sync::RwLock::new(local_checks),
            refusals_logged: Default::default(),
            heartbeats,
            display_tz,
            slo_verdicts: Default::default(),
            store_health: Default::default(),
            write_failure: Default::default(),
        })
    }

    /// Whether the store takes writes: a real write, made at most every
    /// [`HEALTH_PROBE_EVERY_MS`] however often a load balancer asks. Blocking.
    pub fn store_health(&self, now_ms: i64) -> Result<(), String> {
        // A small write may still fit where a batch no longer does (a full disk): the last
        // batch's failure counts until a batch is stored again.
        if let Some(e) = self.write_failure.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Err(format!("the store cannot write: {e}"));
        }
        let mut last = self.store_health.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, result)) = last.as_ref() {
            if now_ms - at < HEALTH_PROBE_EVERY_MS && now_ms >= *at {
                return result.clone();
            }
        }
        let result = self.store.probe_write(now_ms).map_err(|e| format!("the store cannot write: {e}"));
        if let Err(e) = &result {
            tracing::error!("{e}");
        }
        *last = Some((now_ms, result.clone()));
        result
    }

    /// The last SLO round's verdict of `slo`, if that round is recent (within two evaluation
    /// intervals of `now_ms`).
    pub fn recent_verdict(&self, slo: &str, now_ms: i64) -> Option<crate::core::slo::Verdict> {
        let fresh_ms = 2 * i64::try_from(self.config.slo_evaluation_interval.get().as_millis()).unwrap_or(0) + 5_000;
        let cache = self.slo_verdicts.read().unwrap_or_else(|p| p.into_inner());
        let (at, verdicts) = cache.as_ref()?;
        if now_ms - at > fresh_ms {
            return None;
        }
        verdicts.iter().find(|(n, _)| n == slo).map(|(_, v)| v.clone())
    }

    /// How pages show times at `now_ms`.
    pub fn shown(&self, now_ms: i64) -> crate::core::time::Shown {
        crate::core::time::Shown { tz: self.display_tz.clone(), now_ms }
    }

    /// What the API token `name` may do (nothing beyond reading if unknown).
    pub fn scope_of(&self, name: &str) -> vakt_config::collector::Scope {
        self.api_scopes.get(name).copied().unwrap_or(vakt_config::collector::Scope::Read)
    }

    /// Records the outcome of committing a batch, for [`App::store_health`].
    pub fn batch_written(&self, outcome: Result<(), &str>) {
        *self.write_failure.lock().unwrap_or_else(|p| p.into_inner()) = outcome.err().map(str::to_string);
    }

    /// True when `agent` may report results of `check`: assigned to it by the configuration,
    /// or announced by it as one of its local checks.
    pub fn may_report(&self, agent: &str, check: &str) -> bool {
        self.config.is_assigned(agent, check)
            || self.local_checks.read().unwrap_or_else(|p| p.into_inner()).get(check).is_some_and(|a| a == agent)
    }

    /// Takes an agent's announcement of its local checks (see [`crate::core::admission::announce`]):
    /// stores the accepted ones in place of those it announced before; returns the refused.
    pub fn announce_local_checks(
        &self,
        agent: &str,
        checks: &[Arc<vakt_config::wire::CheckSpec>],
        now_ms: i64,
    ) -> Result<Vec<vakt_config::wire::RefusedLocalCheck>, StoreError> {
        // Held while deciding and writing: two agents announcing the same id get one owner.
        let mut owners = self.local_checks.write().unwrap_or_else(|p| p.into_inner());
        let verdict = crate::core::admission::announce(&self.config, agent, checks, &owners);
        let unchanged = owners.iter().filter(|(_, a)| a.as_str() == agent).count() == verdict.accepted.len()
            && verdict.accepted.iter().all(|c| owners.get(&c.id).is_some_and(|a| a == agent));
        if !unchanged {
            self.store.replace_local_checks(agent, &verdict.accepted, now_ms)?;
            owners.retain(|_, a| a != agent);
            for c in &verdict.accepted {
                owners.insert(c.id.clone(), agent.to_string());
            }
            tracing::info!(agent, local_checks = verdict.accepted.len(), "agent announced its local checks");
        }
        for r in &verdict.refused {
            tracing::warn!(agent, check = %r.check, "local check refused: {}", r.reason);
        }
        Ok(verdict.refused)
    }

    /// Counts samples refused at ingest and logs each (agent, check, reason) once.
    pub fn refused_samples(&self, agent: &str, refused: &vakt_config::wire::RefusedSamples) {
        self.metrics.rejected_samples(&refused.reason, refused.samples as u64);
        let mut logged = self.refusals_logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.len() < MAX_REFUSALS_LOGGED
            && logged.insert((agent.to_string(), refused.check.clone(), refused.reason.clone()))
        {
            tracing::warn!(agent, check = %refused.check, reason = %refused.reason, samples = refused.samples, "samples refused: {}", refused.message);
        }
    }

    /// Records an agent's clock skew as its push arrived; logs when it goes beyond
    /// [`CLOCK_SKEW_WARN_MS`] and when it is back in step, once each.
    pub fn observe_clock_skew(&self, agent: &str, skew_ms: i64) {
        self.metrics.agent_clock_skew(agent, skew_ms as f64 / 1000.0);
        let off = skew_ms.abs() > CLOCK_SKEW_WARN_MS;
        let was_off = self
            .clock_skew
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agent.to_string(), skew_ms)
            .is_some_and(|before| before.abs() > CLOCK_SKEW_WARN_MS);
        if off && !was_off {
            tracing::warn!(
                agent,
                skew_seconds = skew_ms / 1000,
                "the agent's clock is {} the collector's; its samples carry that time: check time sync (NTP) on the agent",
                describe_clock_skew(skew_ms)
            );
        } else if !off && was_off {
            tracing::info!(agent, skew_seconds = skew_ms / 1000, "the agent's clock is back in step");
        }
    }

    /// The agent's clock skew at its last push, if it has pushed since this configuration.
    pub fn clock_skew_ms(&self, agent: &str) -> Option<i64> {
        self.clock_skew.lock().unwrap_or_else(|p| p.into_inner()).get(agent).copied()
    }
}
