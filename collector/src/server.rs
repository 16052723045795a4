//! The collector process: the store, the metrics and the HTTP API, bound and served until
//! shutdown is requested.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vakt_config::wire::{describe_clock_skew, CLOCK_SKEW_WARN_MS};
use vakt_config::CollectorConfig;

use crate::auth::TokenTable;
use crate::core::policies::Policies;
use crate::core::state::Policy;
use crate::metrics::Metrics;
use crate::store::{SqliteStore, Store, StoreError};

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
    /// Notification receivers with their secrets read.
    pub receivers: std::collections::HashMap<String, crate::notify::worker::Receiver>,
    /// Names this configuration in acks (see `IngestAck::config_generation`).
    pub generation: String,
    /// Each agent's clock skew at its last push (ms), since this configuration took over.
    clock_skew: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// Bytes of pushed bodies that may be in memory at once (`ingest_memory_bytes`).
    pub ingest_budget: Arc<tokio::sync::Semaphore>,
    /// The local checks agents announced: check → agent (kept in the store too).
    local_checks: std::sync::RwLock<std::collections::HashMap<String, String>>,
    /// The last write probe of the store: when, and what it found (see [`App::store_health`]).
    store_health: std::sync::Mutex<Option<(i64, Result<(), String>)>>,
    /// Why the last batch could not be committed, until one is again.
    write_failure: std::sync::Mutex<Option<String>>,
    /// (agent, check, reason) refusals already logged, so each is logged once.
    refusals_logged: std::sync::Mutex<std::collections::HashSet<(String, String, String)>>,
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

impl App {
    /// Opens the store and primes the metrics from what it holds, so a restarted collector
    /// exports the same state it had.
    pub fn open(config: CollectorConfig) -> Result<Self, ServerError> {
        let receivers = crate::notify::worker::receivers(&config).map_err(ServerError::Config)?;
        for w in crate::core::maintenance::dst_warnings_ahead(&config, crate::core::time::now_ms()) {
            tracing::warn!("{w}");
        }
        let sqlite = SqliteStore::open(&config.data_dir)?;
        let config = Arc::new(config);
        let router = crate::core::routing::Router::new(config.clone());
        sqlite.set_router(router.clone());
        let store: Arc<dyn Store> = Arc::new(sqlite);
        let metrics = Metrics::new();
        if config.sloth_metrics {
            metrics.enable_sloth_names();
        }
        for (check, state) in store.check_states()?.into_iter().filter(|(c, _)| !c.contains('@')) {
            metrics.set_check_state(&check, &state);
        }
        for agent in store.agents()? {
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
                        Policy { fail_after: *c.fail_after.get_ref(), recover_after: *c.recover_after.get_ref() },
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
        };
        let api_tokens = TokenTable::new(
            config.api_tokens.iter().map(|(name, t)| (name.to_string(), t.token_hash.get_ref().clone())),
        );
        let ingest_budget = Arc::new(tokio::sync::Semaphore::new(
            (*config.ingest_memory_bytes.get_ref()).min(tokio::sync::Semaphore::MAX_PERMITS),
        ));
        let api_scopes = config.api_tokens.iter().map(|(name, t)| (name.to_string(), t.scope)).collect();
        Ok(App {
            api_scopes,
            config,
            store,
            metrics,
            tokens,
            api_tokens,
            policies,
            router,
            outbox_wakeup: tokio::sync::Notify::new(),
            rate_limiter,
            receivers,
            generation: format!(
                "{:x}",
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
            ),
            clock_skew: Default::default(),
            ingest_budget,
            local_checks: std::sync::RwLock::new(local_checks),
            refusals_logged: Default::default(),
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

/// A collector bound to its port, not yet serving.
pub struct Server {
    app: Arc<App>,
    listener: TcpListener,
    certs: Option<Arc<crate::tls::Certificates>>,
}

impl Server {
    pub async fn bind(config: CollectorConfig) -> Result<Self, ServerError> {
        crate::front::raise_open_file_limit();
        let addr = config.listen_addr();
        let listener = std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        Self::on(config, listener).await
    }

    /// The collector on a socket already listening: a reload keeps the socket it had.
    pub async fn on(config: CollectorConfig, listener: std::net::TcpListener) -> Result<Self, ServerError> {
        let app = tokio::task::spawn_blocking(move || App::open(config))
            .await
            .map_err(|e| ServerError::Serve(std::io::Error::other(e)))??;
        let certs = match &app.config.tls {
            Some(files) => Some(Arc::new(crate::tls::Certificates::load(files.clone()).map_err(ServerError::Config)?)),
            None => None,
        };
        listener.set_nonblocking(true).map_err(ServerError::Serve)?;
        let listener = TcpListener::from_std(listener).map_err(ServerError::Serve)?;
        Ok(Server { app: Arc::new(app), listener, certs })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| self.app.config.listen_addr())
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), ServerError> {
        self.serve_reloading(None, shutdown).await
    }

    /// [`Server::serve`], and with `reload_from`, SIGHUP re-reads that configuration file.
    ///
    /// A configuration that does not load (or whose secrets or TLS certificate cannot be read)
    /// is refused with the reason, and the running one goes on. An accepted one takes over in
    /// place: the socket and its connections stay (the HTTP front hands each request to the
    /// router of the configuration in force), requests in flight finish with the old one, the
    /// evaluator and the notification worker restart on the new one, and the metrics are primed
    /// from the store as at a start (counters start again from zero). `listen`, `data_dir`
    /// and switching TLS on or off need a restart.
    pub async fn serve_reloading(
        self,
        reload_from: Option<&std::path::Path>,
        shutdown: CancellationToken,
    ) -> Result<(), ServerError> {
        use tower::ServiceExt;
        let addr = self.local_addr();
        let mut app = self.app;
        tracing::info!(%addr, db = %app.config.data_dir.display(), "collector serving");
        let current = Arc::new(std::sync::RwLock::new(crate::api::router(app.clone())));
        let front = axum::Router::new().fallback({
            let current = current.clone();
            move |request: axum::extract::Request| {
                let router = current.read().unwrap_or_else(|p| p.into_inner()).clone();
                async move { router.oneshot(request).await.unwrap_or_else(|never| match never {}) }
            }
        });
        if self.certs.is_some() {
            let mutual = app.config.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
            tracing::info!(%addr, mutual, "serving HTTPS");
        }
        let limits = crate::front::Limits {
            max_connections: app.config.max_connections,
            header_timeout: app.config.request_header_timeout.get(),
        };
        let http =
            tokio::spawn(crate::front::serve(self.listener, front, self.certs.clone(), limits, shutdown.clone()));
        let mut hangup = match reload_from {
            Some(_) => Some(
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(ServerError::Serve)?,
            ),
            None => None,
        };
        loop {
            let tasks_stop = shutdown.child_token();
            let outbox =
                tokio::spawn(crate::notify::worker::run(app.clone(), app.receivers.clone(), tasks_stop.clone()));
            let evaluator = tokio::spawn(crate::evaluator::run(
                app.clone(),
                Arc::new(crate::core::time::SystemClock),
                tasks_stop.clone(),
            ));
            let next = tokio::select! {
                _ = shutdown.cancelled() => None,
                new = next_config(&mut hangup, reload_from, &app.config) => Some(new),
            };
            tasks_stop.cancel();
            let _ = evaluator.await;
            let _ = outbox.await;
            let Some(Reloadable { config, certs: fresh_certs }) = next else { break };
            let opened = tokio::task::spawn_blocking(move || App::open(config)).await;
            let new_app = match opened.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!("SIGHUP: configuration not reloaded; the running one goes on: {e}");
                    continue;
                }
            };
            if let (Some(certs), Some(fresh)) = (&self.certs, fresh_certs) {
                certs.adopt(fresh);
            }
            app = Arc::new(new_app);
            *current.write().unwrap_or_else(|p| p.into_inner()) = crate::api::router(app.clone());
            let checks = app.config.checks.len();
            if app.config.tls.is_some() {
                tracing::info!(checks, "SIGHUP: configuration and TLS certificate reloaded");
            } else {
                tracing::info!(checks, "SIGHUP: configuration reloaded");
            }
        }
        http.await.map_err(|e| ServerError::Serve(std::io::Error::other(e)))?;
        tracing::info!("collector stopped");
        Ok(())
    }
}

/// A configuration checked to replace the running one, with its TLS certificate read.
struct Reloadable {
    config: CollectorConfig,
    certs: Option<crate::tls::Certificates>,
}

/// Waits for SIGHUP and returns the configuration at `path` once one can replace `running`;
/// refusals are logged with their reasons. Never returns without a reload source.
async fn next_config(
    hangup: &mut Option<tokio::signal::unix::Signal>,
    path: Option<&std::path::Path>,
    running: &Arc<CollectorConfig>,
) -> Reloadable {
    let (Some(hangup), Some(path)) = (hangup.as_mut(), path) else {
        return std::future::pending().await;
    };
    loop {
        hangup.recv().await;
        let (path, running) = (path.to_path_buf(), running.clone());
        match tokio::task::spawn_blocking(move || reloadable(&path, &running)).await {
            Ok(Ok(new)) => return new,
            Ok(Err(why)) => tracing::error!("SIGHUP: configuration not reloaded; the running one goes on: {why}"),
            Err(e) => tracing::error!("SIGHUP: configuration not reloaded; the running one goes on: {e}"),
        }
    }
}

/// The configuration at `path` if the running collector can switch to it without a restart.
fn reloadable(path: &std::path::Path, running: &CollectorConfig) -> Result<Reloadable, String> {
    let new = match CollectorConfig::load(path) {
        Ok(c) => c,
        Err(vakt_config::LoadError::Invalid(errors)) => return Err(format!("invalid configuration:\n{errors}")),
        Err(e) => return Err(e.to_string()),
    };
    if new.listen_addr() != running.listen_addr() {
        return Err(format!(
            "listen changed from {} to {}; restart the collector to move it",
            running.listen_addr(),
            new.listen_addr()
        ));
    }
    if new.tls.is_some() != running.tls.is_some() {
        return Err("TLS switched on or off; restart the collector for that".into());
    }
    if new.data_dir != running.data_dir {
        return Err(format!(
            "data_dir changed from {} to {}; restart the collector to move it",
            running.data_dir.display(),
            new.data_dir.display()
        ));
    }
    crate::notify::worker::receivers(&new)?;
    let certs = match &new.tls {
        Some(files) => Some(
            crate::tls::Certificates::load(files.clone())
                .map_err(|e| format!("TLS certificate not reloaded; the old one stays in use: {e}"))?,
        ),
        None => None,
    };
    Ok(Reloadable { config: new, certs })
}
