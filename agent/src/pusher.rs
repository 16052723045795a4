//! Batches samples, writes each batch to the durable spool, and pushes the spool to the
//! collector in order, retrying with exponential backoff. A batch leaves the spool only when
//! the collector acknowledged it (or refused it for good, which is counted).

use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vakt_config::wire::{describe_clock_skew, Batch, IngestAck, Sample, CLOCK_SKEW_WARN_MS, PROTOCOL_VERSION};

use crate::client::{ClientError, CollectorClient};
use crate::metrics::AgentMetrics;
use crate::spool::{Spool, SpoolError};
use crate::state_dir::{Sequence, StateDir};

pub const BACKOFF_START: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Samples held in memory while the spool cannot be written (disk full); beyond, the oldest go.
const MAX_BUFFERED_SAMPLES: usize = 100_000;

pub struct PusherSettings {
    pub push_interval: Duration,
    pub max_batch_samples: usize,
    /// On shutdown, how long to keep trying to deliver what is spooled.
    pub shutdown_grace: Duration,
    /// With nothing to send for this long, send an empty batch: the collector's sign of life.
    pub heartbeat_interval: Duration,
}

pub struct Pusher {
    client: CollectorClient,
    state: StateDir,
    /// This state directory's instance id, in every batch.
    instance: String,
    sequence: Sequence,
    spool: Spool,
    settings: PusherSettings,
    metrics: Arc<AgentMetrics>,
    buffer: Vec<Sample>,
    backoff: Duration,
    retry_at: Option<Instant>,
    spool_failing: bool,
    last_contact: Instant,
    /// Whether the collector last found this agent's clock off (beyond `CLOCK_SKEW_WARN_MS`).
    clock_off: bool,
    /// The collector's configuration generation in the last ack, and whom to tell of a new one.
    config_generation: Option<String>,
    assignments_stale: Arc<tokio::sync::Notify>,
    /// Pushes wait while this is false (local checks not yet announced to the collector).
    announced: Option<tokio::sync::watch::Receiver<bool>>,
    /// (check, reason) of samples the collector refused, logged once each.
    refusals_logged: std::collections::HashSet<(String, String)>,
}

/// Doubles up to the cap.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

/// ±20% so a fleet of agents does not retry in step.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..1.2))
}

impl Pusher {
    pub fn new(
        client: CollectorClient,
        state: StateDir,
        spool: Spool,
        settings: PusherSettings,
        metrics: Arc<AgentMetrics>,
        assignments_stale: Arc<tokio::sync::Notify>,
    ) -> Result<Self, crate::state_dir::StateError> {
        let instance = state.instance()?;
        let mut sequence = state.sequence()?;
        if let Some(last) = spool.last_sequence() {
            sequence.continue_after(last);
        }
        let pusher = Self {
            client,
            state,
            instance,
            sequence,
            spool,
            settings,
            metrics,
            buffer: Vec::new(),
            backoff: BACKOFF_START,
            retry_at: None,
            spool_failing: false,
            last_contact: Instant::now(),
            clock_off: false,
            config_generation: None,
            assignments_stale,
            announced: None,
            refusals_logged: Default::default(),
        };
        pusher.update_gauges();
        Ok(pusher)
    }

    /// Pushes only while `announced` holds true.
    pub fn gated(mut self, announced: tokio::sync::watch::Receiver<bool>) -> Self {
        self.announced = Some(announced);
        self
    }

    fn may_push(&self) -> bool {
        self.announced.as_ref().is_none_or(|a| *a.borrow())
    }

    fn update_gauges(&self) {
        self.metrics.buffered_samples.set(i64::try_from(self.buffer.len()).unwrap_or(i64::MAX));
        self.metrics.spool_batches.set(self.spool.len() as i64);
        self.metrics.spool_bytes.set(i64::try_from(self.spool.bytes()).unwrap_or(i64::MAX));
    }

    /// Moves buffered samples into the spool as numbered batches.
    fn seal(&mut self) {
        while !self.buffer.is_empty() {
            let take = self.buffer.len().min(self.settings.max_batch_samples.max(1));
            let sequence = match self.state.reserve(&mut self.sequence) {
                Ok(s) => s,
                Err(e) => {
                    // Without a durable sequence a restart could reuse numbers and the
                    // collector would drop those batches as duplicates; keep the samples.
                    self.spool_trouble(&e.to_string());
                    return;
                }
            };
            let batch = Batch {
                version: PROTOCOL_VERSION,
                agent: self.client.agent().to_string(),
                instance: Some(self.instance.clone()),
                sequence,
                samples: self.buffer[..take].to_vec(),
                agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            };
            let body = match CollectorClient::encode(&batch) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a batch; dropping it");
                    self.metrics.dropped("spool_error", take as u64);
                    self.buffer.drain(..take);
                    continue;
                }
            };
            match self.spool.append(sequence, take as u64, &body) {
                Ok(dropped) => {
                    self.buffer.drain(..take);
                    if self.spool_failing {
                        tracing::info!("spool writable again");
                        self.spool_failing = false;
                    }
                    if dropped.batches > 0 {
                        self.metrics.dropped("spool_full", dropped.samples);
                        tracing::error!(
                            batches = dropped.batches,
                            samples = dropped.samples,
                            "spool full: dropped the oldest batches (raise spool_max_bytes or fix the collector link)"
                        );
                    }
                }
                Err(e) => {
                    self.spool_trouble(&e.to_string());
                    break;
                }
            }
        }
        if self.buffer.len() > MAX_BUFFERED_SAMPLES {
            let excess = self.buffer.len() - MAX_BUFFERED_SAMPLES;
            self.buffer.drain(..excess);
            self.metrics.dropped("spool_error", excess as u64);
            tracing::error!(samples = excess, "spool unwritable and memory buffer full: dropped the oldest samples");
        }
        self.update_gauges();
    }

    /// Logs a spool problem once per episode, not once per tick.
    fn spool_trouble(&mut self, error: &str) {
        self.metrics.spool_write_errors.inc();
        if !self.spool_failing {
            tracing::error!(%error, buffered = self.buffer.len(), "cannot write the spool; holding samples in memory");
            self.spool_failing = true;
        }
    }

    /// Sends spooled batches in order until one fails. Returns false when a retry is scheduled.
    async fn send_spooled(&mut self) -> bool {
        while let Some(entry) = self.spool.front().cloned() {
            let body = match self.spool.read(&entry) {
                Ok(b) => b,
                Err(e @ SpoolError::Corrupt { .. }) => {
                    tracing::error!(error = %e, samples = entry.samples, "skipping a damaged spool file");
                    self.metrics.dropped("corrupt", entry.samples);
                    self.spool.pop_front();
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the spool");
                    self.retry_at = Some(Instant::now() + jittered(self.backoff));
                    return false;
                }
            };
            match self.client.push(body).await {
                Ok(ack) => {
                    self.on_ack(&ack);
                    tracing::debug!(
                        sequence = ack.sequence,
                        accepted = ack.accepted,
                        duplicate = ack.duplicate,
                        "batch acknowledged"
                    );
                    if self.backoff > BACKOFF_START {
                        tracing::info!(
                            spooled = self.spool.len() - 1,
                            "collector reachable again; replaying the spool"
                        );
                    }
                    self.backoff = BACKOFF_START;
                    self.retry_at = None;
                    self.metrics.samples_sent.inc_by(entry.samples);
                    self.last_contact = Instant::now();
                    self.spool.pop_front();
                }
                Err(ClientError::Rejected(reason)) => {
                    tracing::error!(sequence = entry.sequence, samples = entry.samples, %reason, "collector refused batch; dropping it");
                    self.metrics.dropped("rejected", entry.samples);
                    self.spool.pop_front();
                }
                Err(ClientError::Throttled { wait, message }) => {
                    // Not a failure: the collector is pacing this agent. Wait as asked.
                    tracing::info!(spooled_batches = self.spool.len(), retry_in_ms = wait.as_millis() as u64, %message, "collector asks to slow down");
                    self.retry_at = Some(Instant::now() + wait);
                    self.update_gauges();
                    return false;
                }
                Err(ClientError::Retryable(reason)) => {
                    let wait = jittered(self.backoff);
                    self.metrics.push_failures.inc();
                    tracing::warn!(spooled_batches = self.spool.len(), retry_in_ms = wait.as_millis() as u64, %reason, "push failed");
                    self.retry_at = Some(Instant::now() + wait);
                    self.backoff = next_backoff(self.backoff);
                    self.update_gauges();
                    return false;
                }
            }
            self.update_gauges();
        }
        true
    }

    /// What an ack says beyond the batch: a new configuration on the collector (fetch the
    /// assignments now), and this agent's clock skew.
    fn on_ack(&mut self, ack: &IngestAck) {
        if ack.config_generation.is_some() && ack.config_generation != self.config_generation {
            self.config_generation.clone_from(&ack.config_generation);
            self.assignments_stale.notify_one();
        }
        self.check_clock(ack);
        for r in &ack.refused {
            self.metrics.dropped("rejected", r.samples as u64);
            if self.refusals_logged.insert((r.check.clone(), r.reason.clone())) {
                tracing::error!(check = %r.check, reason = %r.reason, samples = r.samples, "the collector refused samples: {}", r.message);
            }
        }
    }

    /// Says so, once, when the collector finds this agent's clock off, and when it is right again.
    fn check_clock(&mut self, ack: &IngestAck) {
        let Some(skew) = ack.clock_skew_ms else { return };
        let off = skew.abs() > CLOCK_SKEW_WARN_MS;
        if off && !self.clock_off {
            tracing::warn!(
                skew_seconds = skew / 1000,
                "this agent's clock is {} the collector's; samples carry the agent's time: check time sync (NTP)",
                describe_clock_skew(skew)
            );
        } else if !off && self.clock_off {
            tracing::info!(skew_seconds = skew / 1000, "this agent's clock is back in step with the collector's");
        }
        self.clock_off = off;
    }

    /// Sends an empty batch when nothing else reached the collector for a heartbeat interval.
    async fn heartbeat(&mut self) {
        if !self.buffer.is_empty() || self.last_contact.elapsed() < self.settings.heartbeat_interval {
            return;
        }
        let Ok(sequence) = self.state.reserve(&mut self.sequence) else { return };
        let batch = Batch {
            version: PROTOCOL_VERSION,
            agent: self.client.agent().to_string(),
            instance: Some(self.instance.clone()),
            sequence,
            samples: Vec::new(),
            agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        };
        let Ok(body) = CollectorClient::encode(&batch) else { return };
        match self.client.push(body).await {
            Ok(ack) => {
                self.on_ack(&ack);
                tracing::debug!(sequence, "heartbeat acknowledged");
                self.last_contact = Instant::now();
            }
            Err(e) => {
                self.metrics.push_failures.inc();
                tracing::debug!(error = %e, "heartbeat failed");
                self.retry_at = Some(Instant::now() + jittered(self.backoff));
                self.backoff = next_backoff(self.backoff);
            }
        }
    }

    pub async fn run(mut self, mut samples: mpsc::Receiver<Sample>, shutdown: CancellationToken) {
        let mut next_push = Instant::now() + self.settings.push_interval;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                s = samples.recv() => match s {
                    Some(s) => {
                        self.buffer.push(s);
                        if self.buffer.len() < self.settings.max_batch_samples {
                            continue;
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(next_push) => {}
            }
            self.seal();
            if self.may_push() && self.retry_at.is_none_or(|t| Instant::now() >= t) && self.send_spooled().await {
                self.heartbeat().await;
            }
            next_push = Instant::now() + self.settings.push_interval;
        }
        // Drain: spool what the probes already handed in, then try to deliver within the grace.
        while let Ok(s) = samples.try_recv() {
            self.buffer.push(s);
        }
        self.seal();
        let deadline = Instant::now() + self.settings.shutdown_grace;
        while self.may_push() && !self.spool.is_empty() && Instant::now() < deadline {
            if self.send_spooled().await {
                break;
            }
            let wait = self.retry_at.map_or(BACKOFF_START, |t| t.saturating_duration_since(Instant::now()));
            tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
        }
        if self.spool.is_empty() && self.buffer.is_empty() {
            tracing::info!("all samples delivered");
        } else {
            tracing::warn!(
                spooled_batches = self.spool.len(),
                spooled_samples = self.spool.samples(),
                "collector not reachable within the shutdown grace: the spool keeps the rest for the next start"
            );
        }
        if !self.buffer.is_empty() {
            tracing::error!(samples = self.buffer.len(), "samples that could not be spooled are lost");
            self.metrics.dropped("spool_error", self.buffer.len() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut d = BACKOFF_START;
        let mut seen = vec![];
        for _ in 0..8 {
            seen.push(d.as_secs());
            d = next_backoff(d);
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
