//! `[[remote_write]]`: every probe result sent on to a time-series database (Prometheus,
//! VictoriaMetrics, Mimir, Thanos) with the Prometheus remote-write protocol. Results are
//! queued per target in the ingest transaction (see the stores), so whatever an agent was told
//! is stored is sent too, across restarts and failovers; the leader sends the queue in order,
//! retries with backoff while the receiver is away or failing, and takes a batch off the queue
//! only once the receiver took it (or refused it for good: a 4xx other than 429).

pub mod proto;

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vakt_config::CollectorConfig;

use crate::app::App;

/// A target with its secrets read.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    url: String,
    bearer: Option<String>,
    limit: usize,
    timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("name", &self.name).finish_non_exhaustive()
        // the URL may hold a secret
    }
}

/// The targets of `config`, their URLs and tokens read; an error names the target and what is
/// missing.
pub fn targets(config: &CollectorConfig) -> Result<Vec<Target>, String> {
    config
        .remote_write
        .iter()
        .map(|rw| {
            let c = rw.get_ref();
            let url = c
                .url
                .read()
                .map_err(|e| format!("remote_write {:?}: url: {e}", c.name))?
                .ok_or_else(|| format!("remote_write {:?}: url is not set", c.name))?;
            let bearer = match &c.bearer_token {
                Some(t) => t.read().map_err(|e| format!("remote_write {:?}: bearer_token: {e}", c.name))?,
                None => None,
            };
            Ok(Target {
                name: c.name.clone(),
                url,
                bearer,
                limit: c.max_samples_per_send.max(1),
                timeout: c.timeout.get(),
            })
        })
        .collect()
}

/// What became of one request.
enum Sent {
    Taken,
    /// The receiver refused the batch for what it holds (a 4xx other than 429): sending it again
    /// cannot help.
    Refused(String),
    /// Worth another try later.
    Retry(String),
}

async fn send(http: &reqwest::Client, t: &Target, body: Vec<u8>) -> Sent {
    let mut req = http
        .post(&t.url)
        .timeout(t.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .header(reqwest::header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header(reqwest::header::USER_AGENT, concat!("vakt-collector/", env!("CARGO_PKG_VERSION")));
    if let Some(token) = &t.bearer {
        req = req.bearer_auth(token);
    }
    match req.body(body).send().await {
        Ok(r) if r.status().is_success() => Sent::Taken,
        Ok(r) => {
            let status = r.status();
            let said: String = r.text().await.unwrap_or_default().chars().take(200).collect();
            let why = format!("{} answered {status}: {}", t.name, said.trim());
            if status.is_client_error() && status.as_u16() != 429 {
                Sent::Refused(why)
            } else {
                Sent::Retry(why)
            }
        }
        Err(e) if e.is_timeout() => Sent::Retry(format!("{}: timed out", t.name)),
        Err(e) if e.is_connect() => Sent::Retry(format!("{}: connection failed", t.name)),
        Err(_) => Sent::Retry(format!("{}: request failed", t.name)),
    }
}

/// Sends every target's queue until shutdown, one task per target.
pub async fn run(app: Arc<App>, targets: Vec<Target>, shutdown: CancellationToken) {
    let mut tasks = Vec::new();
    for t in targets {
        app.metrics.remote_write_reset(&t.name);
        tasks.push(tokio::spawn(run_one(app.clone(), t, shutdown.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn run_one(app: Arc<App>, t: Target, shutdown: CancellationToken) {
    let http = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target = %t.name, error = %e, "cannot build the remote-write HTTP client");
            return;
        }
    };
    let mut failures = 0u32;
    let mut last_backlog = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        let mut pause = Duration::from_millis(500);
        if app.leadership.is_leader() {
            if last_backlog.elapsed() >= Duration::from_secs(2) {
                last_backlog = std::time::Instant::now();
                publish_backlog(&app, &t).await;
            }
            let (store_app, name, limit) = (app.clone(), t.name.clone(), t.limit);
            match tokio::task::spawn_blocking(move || store_app.store.remote_write_queue(&name, limit)).await {
                Ok(Ok(batch)) if !batch.is_empty() => {
                    let full = batch.len() >= t.limit;
                    match deliver(&app, &http, &t, batch).await {
                        Ok(()) => {
                            if failures > 0 {
                                tracing::info!(target = %t.name, "remote write reaches its target again");
                            }
                            failures = 0;
                            pause = if full { Duration::ZERO } else { Duration::from_millis(200) };
                        }
                        Err(why) => {
                            if failures == 0 {
                                tracing::warn!(target = %t.name, "remote write failed, retrying with backoff: {why}");
                            }
                            failures += 1;
                            app.metrics.remote_write_failed(&t.name);
                            pause = Duration::from_millis(500u64 << failures.min(6)).min(Duration::from_secs(30));
                        }
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(target = %t.name, error = %e, "reading the remote-write queue failed"),
                Err(e) => tracing::error!(target = %t.name, error = %e, "remote-write task failed"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Sends one batch; on success (or a refusal for good) takes it off the queue.
async fn deliver(
    app: &Arc<App>,
    http: &reqwest::Client,
    t: &Target,
    batch: Vec<crate::store::QueuedSample>,
) -> Result<(), String> {
    let body = proto::body(&proto::series_of(&batch))?;
    let outcome = match send(http, t, body).await {
        Sent::Taken => "sent",
        Sent::Refused(why) => {
            tracing::error!(target = %t.name, samples = batch.len(), "remote-write target refused a batch; dropping it: {why}");
            "dropped"
        }
        Sent::Retry(why) => return Err(why),
    };
    let ids: Vec<i64> = batch.iter().map(|s| s.id).collect();
    let (store_app, name) = (app.clone(), t.name.clone());
    match tokio::task::spawn_blocking(move || store_app.store.remote_write_done(&name, &ids)).await {
        Ok(Ok(())) => {
            app.metrics.remote_write_samples(&t.name, outcome, batch.len());
            Ok(())
        }
        // Sent but not taken off (no longer the leader, the store away): sent again later,
        // which the receiver takes as a duplicate of the same samples.
        Ok(Err(e)) => Err(format!("sent, but not taken off the queue: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

async fn publish_backlog(app: &Arc<App>, t: &Target) {
    let (store_app, name) = (app.clone(), t.name.clone());
    if let Ok(Ok((pending, oldest))) =
        tokio::task::spawn_blocking(move || store_app.store.remote_write_backlog(&name)).await
    {
        let lag = oldest.map(|o| (crate::core::time::now_ms() - o).max(0) as f64 / 1000.0).unwrap_or(0.0);
        app.metrics.remote_write_backlog(&t.name, pending, lag);
    }
}
