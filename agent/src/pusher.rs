//! Batches samples and pushes them to the collector in order, retrying with exponential backoff.
//! A batch leaves memory only when the collector acknowledged it (or refused it for good).

use rand::Rng;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vakt_config::wire::{Batch, Sample, PROTOCOL_VERSION};

use crate::client::{ClientError, CollectorClient};
use crate::state_dir::{Sequence, StateDir};

pub const BACKOFF_START: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

pub struct PusherSettings {
    pub push_interval: Duration,
    pub max_batch_samples: usize,
    /// Above this many unacknowledged samples the oldest batch is dropped, loudly.
    pub max_pending_samples: usize,
    /// On shutdown, how long to keep trying to deliver what is pending.
    pub shutdown_grace: Duration,
}

pub struct Pusher {
    client: CollectorClient,
    state: StateDir,
    sequence: Sequence,
    settings: PusherSettings,
    buffer: Vec<Sample>,
    pending: VecDeque<Batch>,
    pending_samples: usize,
    backoff: Duration,
    retry_at: Option<Instant>,
}

/// Doubles up to the cap, with ±20% jitter so agents do not retry in step.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..1.2))
}

impl Pusher {
    pub fn new(
        client: CollectorClient,
        state: StateDir,
        settings: PusherSettings,
    ) -> Result<Self, crate::state_dir::StateError> {
        let sequence = state.sequence()?;
        Ok(Self {
            client,
            state,
            sequence,
            settings,
            buffer: Vec::new(),
            pending: VecDeque::new(),
            pending_samples: 0,
            backoff: BACKOFF_START,
            retry_at: None,
        })
    }

    fn seal(&mut self) {
        while !self.buffer.is_empty() {
            let take = self
                .buffer
                .len()
                .min(self.settings.max_batch_samples.max(1));
            let samples: Vec<Sample> = self.buffer.drain(..take).collect();
            let sequence = match self.state.reserve(&mut self.sequence) {
                Ok(s) => s,
                Err(e) => {
                    // Without a durable sequence a restart could reuse numbers and the
                    // collector would drop those batches as duplicates; keep the samples.
                    tracing::error!(error = %e, "cannot reserve batch sequence numbers; holding samples");
                    self.buffer.splice(0..0, samples);
                    return;
                }
            };
            self.pending_samples += samples.len();
            self.pending.push_back(Batch {
                version: PROTOCOL_VERSION,
                agent: self.client.agent().to_string(),
                sequence,
                samples,
            });
        }
        while self.pending_samples > self.settings.max_pending_samples {
            let Some(dropped) = self.pending.pop_front() else {
                break;
            };
            self.pending_samples -= dropped.samples.len();
            tracing::error!(
                sequence = dropped.sequence,
                samples = dropped.samples.len(),
                "collector unreachable for too long: dropped the oldest batch"
            );
        }
    }

    /// Sends pending batches in order until one fails. Returns false when a retry is scheduled.
    async fn send_pending(&mut self) -> bool {
        while let Some(batch) = self.pending.front() {
            match self.client.push(batch).await {
                Ok(ack) => {
                    tracing::debug!(
                        sequence = ack.sequence,
                        accepted = ack.accepted,
                        duplicate = ack.duplicate,
                        "batch acknowledged"
                    );
                    if self.backoff > BACKOFF_START {
                        tracing::info!(
                            pending = self.pending.len() - 1,
                            "collector reachable again"
                        );
                    }
                    self.backoff = BACKOFF_START;
                    self.retry_at = None;
                    self.pending_samples -= batch.samples.len();
                    self.pending.pop_front();
                }
                Err(ClientError::Rejected(reason)) => {
                    tracing::error!(sequence = batch.sequence, samples = batch.samples.len(), %reason, "collector refused batch; dropping it");
                    self.pending_samples -= batch.samples.len();
                    self.pending.pop_front();
                }
                Err(ClientError::Retryable(reason)) => {
                    let wait = jittered(self.backoff);
                    tracing::warn!(pending_batches = self.pending.len(), retry_in_ms = wait.as_millis() as u64, %reason, "push failed");
                    self.retry_at = Some(Instant::now() + wait);
                    self.backoff = next_backoff(self.backoff);
                    return false;
                }
            }
        }
        true
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
            if self.retry_at.is_none_or(|t| Instant::now() >= t) {
                self.send_pending().await;
            }
            next_push = Instant::now() + self.settings.push_interval;
        }
        // Drain: take what the probes already handed in, then try to deliver within the grace.
        while let Ok(s) = samples.try_recv() {
            self.buffer.push(s);
        }
        self.seal();
        let deadline = Instant::now() + self.settings.shutdown_grace;
        while !self.pending.is_empty() && Instant::now() < deadline {
            if self.send_pending().await {
                break;
            }
            let wait = self.retry_at.map_or(BACKOFF_START, |t| {
                t.saturating_duration_since(Instant::now())
            });
            tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
        }
        if self.pending.is_empty() {
            tracing::info!("all samples delivered");
        } else {
            tracing::warn!(
                batches = self.pending.len(),
                samples = self.pending_samples,
                "shutdown grace over: undelivered samples are lost"
            );
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
