//! The Vakt agent: fetches its checks from the collector, probes on schedule, pushes batches.
//!
//! The agent never evaluates SLAs or decides incidents: it reports what it saw. The collector
//! decides.

pub mod client;
pub mod metrics;
pub mod probe;
pub mod pusher;
pub mod scheduler;
pub mod signals;
pub mod spool;
pub mod state_dir;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vakt_config::wire::CheckSpec;
use vakt_config::AgentConfig;

use client::{ClientError, CollectorClient};
use metrics::AgentMetrics;
use probe::ProbeContext;
use pusher::{Pusher, PusherSettings};
use scheduler::Scheduler;
use spool::Spool;
use state_dir::StateDir;

/// How long the agent keeps delivering after it was asked to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Retry interval for the first assignment fetch while the collector cannot be reached.
const FIRST_FETCH_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent state directory: {0}")]
    State(#[from] state_dir::StateError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("probes: {0}")]
    Probe(#[from] probe::BuildError),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error("collector TLS: {0}")]
    Tls(String),
    #[error("cannot serve metrics on {addr}: {source}")]
    MetricsListen { addr: String, source: std::io::Error },
}

/// rustls with *ring* as the one crypto provider of the process (reqwest uses it; nothing
/// else gets compiled in). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Logs to stderr, filtered by `VAKT_LOG` (`info` when unset): a default level and per-module
/// levels, e.g. `VAKT_LOG=info,vakt_agent::pusher=debug`. A filter that does not parse is
/// reported and `info` is used.
pub fn init_logging() {
    use std::io::IsTerminal;
    let info = || tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO);
    let (filter, problem) = match std::env::var("VAKT_LOG") {
        Ok(spec) => match spec.parse() {
            Ok(f) => (f, None),
            Err(e) => (info(), Some(format!("VAKT_LOG={spec:?}: {e}; logging at info"))),
        },
        Err(_) => (info(), None),
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr))
        .with(filter)
        .init();
    if let Some(p) = problem {
        tracing::warn!("{p}");
    }
}

/// Runs one probe once, as the scheduler would (timeout guard, degraded latency), and returns
/// its sample. For `vakt-agent probe` and for tests.
pub async fn probe_once(spec: &CheckSpec) -> Result<vakt_config::wire::Sample, probe::BuildError> {
    // A person asked for this probe: it runs whatever they typed.
    let ctx = ProbeContext::new(probe::ExecPolicy::trust_all())?;
    let probe = probe::build(spec, &ctx)?;
    Ok(scheduler::run_once(spec, probe.as_ref(), &AgentMetrics::new()).await)
}

/// Collector-assigned checks plus the agent's local ones; a local check wins over an assigned
/// one of the same id. Specs are shared, not copied: one copy of each check lives in the agent.
fn merge(local: &[Arc<CheckSpec>], assigned: Option<&[Arc<CheckSpec>]>) -> Vec<Arc<CheckSpec>> {
    let mut by_id: BTreeMap<&str, &Arc<CheckSpec>> = BTreeMap::new();
    for c in assigned.unwrap_or_default() {
        by_id.insert(c.id.as_str(), c);
    }
    for c in local {
        if by_id.insert(c.id.as_str(), c).is_some() {
            tracing::warn!(check = %c.id, "local check overrides the assigned check of the same id");
        }
    }
    by_id.into_values().cloned().collect()
}

/// What this agent may execute: its `exec_allow` patterns and its own exec checks.
fn exec_policy(config: &AgentConfig) -> probe::ExecPolicy {
    let own = local_checks(config)
        .iter()
        .filter(|c| c.kind == vakt_config::CheckKind::Exec)
        .map(|c| (c.target.clone(), c.options.args.clone()))
        .collect();
    probe::ExecPolicy::new(config.exec_allow.iter().map(|p| p.get_ref().clone()).collect(), own)
}

/// The local checks of a configuration, shared with the scheduler.
fn local_checks(config: &AgentConfig) -> Vec<Arc<CheckSpec>> {
    config.checks.iter().map(|(id, c)| Arc::new(c.to_spec(id.as_str()))).collect()
}

/// Runs the agent until `shutdown` is cancelled; then stops probing, delivers what it can
/// within [`SHUTDOWN_GRACE`], and returns.
/// Where a running agent re-reads its configuration from, and the signal to do so (SIGHUP).
pub struct Reload {
    pub path: std::path::PathBuf,
    pub requested: Arc<tokio::sync::Notify>,
}

/// Re-reads the local checks from `reload.path`; on any problem keeps the old ones.
fn reload_local(reload: &Reload, running: &AgentConfig) -> Option<Vec<Arc<CheckSpec>>> {
    match AgentConfig::load(&reload.path) {
        Ok(new) => {
            if new.name.get_ref() != running.name.get_ref()
                || new.collector_urls() != running.collector_urls()
                || new.spool_dir != running.spool_dir
            {
                tracing::warn!("name, collector and spool_dir changes take effect at the next restart");
            }
            Some(local_checks(&new))
        }
        Err(e) => {
            tracing::error!(path = %reload.path.display(), error = %e, "reload refused; keeping the running configuration");
            None
        }
    }
}

pub async fn run(config: AgentConfig, token: String, shutdown: CancellationToken) -> Result<(), AgentError> {
    run_with_reload(config, token, shutdown, None).await
}

/// [`run`], re-reading local checks from the config file whenever `reload` is signalled, and
/// asking the collector for its assignments at once.
pub async fn run_with_reload(
    config: AgentConfig,
    token: String,
    shutdown: CancellationToken,
    reload: Option<Reload>,
) -> Result<(), AgentError> {
    install_crypto_provider();
    let name = config.name.get_ref().to_string();
    let state = StateDir::open(&config.spool_dir)?;
    let tls = client::CollectorTls::from_config(&config).map_err(AgentError::Tls)?;
    let client = CollectorClient::with_tls(&config.collector_urls(), &name, &token, &tls)
        .map_err(|e| AgentError::Tls(e.to_string()))?;
    let mut local = local_checks(&config);

    let metrics = Arc::new(AgentMetrics::new());
    if let Some(addr) = &config.metrics_listen {
        let addr = addr.get_ref().clone();
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| AgentError::MetricsListen { addr: addr.clone(), source })?;
        tracing::info!(%addr, "serving agent metrics on /metrics");
        tokio::spawn(metrics::serve(listener, metrics.clone(), shutdown.clone()));
    }

    let (tx, rx) = mpsc::channel(10_000);
    let spool = Spool::open(&config.spool_dir.join(spool::DIR), *config.spool_max_bytes.get_ref())?;
    // The pusher hears of a new collector configuration first (in an ack): fetch at once then.
    let assignments_stale = Arc::new(tokio::sync::Notify::new());
    let pusher = Pusher::new(
        client.clone(),
        StateDir::open(&config.spool_dir)?,
        spool,
        PusherSettings {
            push_interval: config.push_interval.get_ref().get(),
            max_batch_samples: *config.max_batch_samples.get_ref(),
            shutdown_grace: SHUTDOWN_GRACE,
            heartbeat_interval: config.heartbeat_interval.get(),
        },
        metrics.clone(),
        assignments_stale.clone(),
    )?;
    // Samples of local checks are pushed only once the collector has heard of those checks
    // (it refuses samples of checks it does not know this agent reports).
    let (announced, announced_rx) = tokio::sync::watch::channel(local.is_empty());
    let pusher = pusher.gated(announced_rx);
    let pusher_stop = CancellationToken::new();
    let pusher_task = tokio::spawn(pusher.run(rx, pusher_stop.clone()));

    let mut scheduler = Scheduler::new(ProbeContext::new(exec_policy(&config))?, tx, metrics.clone());
    let mut current = state.load_assignments().map(|a| a.checks);
    if current.is_some() {
        tracing::info!("running cached assignments until the collector answers");
    }
    scheduler.apply(&merge(&local, current.as_deref()));
    tracing::info!(agent = %name, collectors = %config.collector_urls().join(", "), checks = scheduler.len(), "agent started");

    let refresh = config.refresh_interval.get();
    let mut fetched_once = false;
    loop {
        match client.fetch_assignments(&local).await {
            Ok(assigned) => {
                fetched_once = true;
                probe::PERFDATA_ACCEPTED.store(
                    assigned.accepts.iter().any(|a| a == vakt_config::wire::ACCEPTS_PERFDATA),
                    std::sync::atomic::Ordering::Relaxed,
                );
                announced.send_if_modified(|a| !std::mem::replace(a, true));
                for r in &assigned.refused_local {
                    tracing::error!(check = %r.check, "the collector refuses this local check's results: {}", r.reason);
                }
                let unchanged = current.as_ref() == Some(&assigned.checks);
                if !unchanged {
                    if let Err(e) = state.save_assignments(&assigned) {
                        tracing::warn!(error = %e, "cannot cache assignments");
                    }
                    let checks = assigned.checks;
                    scheduler.apply(&merge(&local, Some(&checks)));
                    tracing::info!(checks = scheduler.len(), "assignments updated");
                    current = Some(checks);
                }
            }
            Err(ClientError::Retryable(e) | ClientError::Rejected(e) | ClientError::Throttled { message: e, .. }) => {
                tracing::warn!(error = %e, "cannot fetch assignments; keeping the current ones");
            }
        }
        let wait = if fetched_once { refresh } else { FIRST_FETCH_RETRY.min(refresh) };
        let reload_requested = async {
            match &reload {
                Some(r) => r.requested.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
            _ = assignments_stale.notified() => tracing::debug!("the collector's configuration changed; fetching assignments"),
            _ = reload_requested => {
                if let Some(new_local) = reload.as_ref().and_then(|r| reload_local(r, &config)) {
                    if new_local != local {
                        // Announced at the top of the loop, right away; pushes wait for it.
                        announced.send_replace(false);
                    }
                    local = new_local;
                    scheduler.apply(&merge(&local, current.as_deref()));
                    tracing::info!(checks = scheduler.len(), "configuration reloaded");
                }
            }
        }
    }

    tracing::info!("stopping: no new probes; delivering what is pending");
    scheduler.stop().await;
    drop(scheduler); // closes the sample channel: the pusher drains it and finishes
    pusher_stop.cancel();
    let _ = pusher_task.await;
    tracing::info!(
        probes_run = metrics.probes_run.load(std::sync::atomic::Ordering::Relaxed),
        samples_delivered = metrics.samples_sent.get(),
        "agent stopped"
    );
    Ok(())
}
