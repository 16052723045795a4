//! Runs each check on its interval, with a random initial offset (jitter) so a fleet of agents
//! does not probe in lockstep, and the check's timeout around every run.

use rand::Rng;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use vakt_config::wire::CheckSpec;
use vakt_config::wire::Sample;

use crate::metrics::AgentMetrics;
use crate::probe::{self, Probe, ProbeContext, ProbeResult};
use std::sync::Arc;

/// Extra time a probe gets beyond its timeout before the scheduler gives up on it.
const GUARD: Duration = Duration::from_secs(1);

struct Running {
    /// Shared with the check's task: one copy per check.
    spec: Arc<CheckSpec>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

pub struct Scheduler {
    ctx: ProbeContext,
    samples: mpsc::Sender<Sample>,
    running: HashMap<String, Running>,
    metrics: Arc<AgentMetrics>,
}

impl Scheduler {
    pub fn new(ctx: ProbeContext, samples: mpsc::Sender<Sample>, metrics: Arc<AgentMetrics>) -> Self {
        Self { ctx, samples, running: HashMap::new(), metrics }
    }

    /// Makes the running set equal to `specs`: starts new checks, restarts changed ones, stops
    /// removed ones. Unchanged checks keep their rhythm.
    pub fn apply(&mut self, specs: &[Arc<CheckSpec>]) {
        let wanted: HashMap<&str, &CheckSpec> = specs.iter().map(|s| (s.id.as_str(), &**s)).collect();
        self.running.retain(|id, r| {
            let keep = wanted.get(id.as_str()).is_some_and(|s| **s == *r.spec);
            if !keep {
                r.cancel.cancel();
                tracing::info!(check = %id, "check stopped");
            }
            keep
        });
        for spec in specs {
            if self.running.contains_key(&spec.id) {
                continue;
            }
            match probe::build(spec, &self.ctx) {
                Ok(probe) => {
                    let spec = spec.clone();
                    let cancel = CancellationToken::new();
                    let task = tokio::spawn(run_check(
                        spec.clone(),
                        probe,
                        self.samples.clone(),
                        cancel.clone(),
                        self.metrics.clone(),
                    ));
                    tracing::info!(check = %spec.id, kind = spec.kind.as_str(), target = %spec.target, interval_ms = spec.interval_ms, "check started");
                    self.running.insert(spec.id.clone(), Running { spec, cancel, task });
                }
                Err(e) => tracing::error!(check = %spec.id, error = %e, "check cannot run"),
            }
        }
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Stops every check and waits for runs in flight to hand in their sample.
    pub async fn stop(&mut self) {
        for r in self.running.values() {
            r.cancel.cancel();
        }
        for (_, r) in self.running.drain() {
            let _ = r.task.await;
        }
    }
}

/// Unix milliseconds of a wall-clock time.
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn run_check(
    spec: Arc<CheckSpec>,
    probe: Box<dyn Probe>,
    samples: mpsc::Sender<Sample>,
    cancel: CancellationToken,
    metrics: Arc<AgentMetrics>,
) {
    let interval = Duration::from_millis(spec.interval_ms.max(1));
    let jitter = Duration::from_millis(rand::rng().random_range(0..spec.interval_ms.max(1)));
    let mut ticker = tokio::time::interval_at(Instant::now() + jitter, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let sample = run_once(&spec, probe.as_ref(), &metrics).await;
        if samples.send(sample).await.is_err() {
            return;
        }
    }
}

/// One run of a probe: the timeout guard, degraded latency, metrics, and the sample.
pub async fn run_once(spec: &CheckSpec, probe: &dyn Probe, metrics: &AgentMetrics) -> Sample {
    let kind = spec.kind.as_str();
    let timeout = Duration::from_millis(spec.timeout_ms.max(1));
    let started = SystemTime::now();
    let clock = std::time::Instant::now();
    // Probes keep their own timeout; this guard only catches one that does not.
    let result = match tokio::time::timeout(timeout + GUARD, probe.run()).await {
        Ok(r) => crate::probe::apply_degraded_latency(r, spec),
        Err(_) => ProbeResult::failed(
            Some(timeout),
            format!("timed out after {}", vakt_config::duration::format_duration(timeout)),
        ),
    };
    let outcome = if result.success { "success" } else { "failure" };
    metrics.probes.with_label_values(&[kind, outcome]).inc();
    metrics.probes_run.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    metrics.probe_duration.with_label_values(&[kind]).observe(clock.elapsed().as_secs_f64());
    if !result.success {
        tracing::debug!(check = %spec.id, error = result.error.as_deref().unwrap_or(""), "probe failed");
    }
    Sample {
        check: spec.id.clone(),
        timestamp_ms: unix_ms(started),
        success: result.success,
        degraded: result.degraded,
        latency_seconds: result.latency.map(|d| d.as_secs_f64()),
        values: result.values,
        error: result.error,
        perfdata: if crate::probe::PERFDATA_ACCEPTED.load(std::sync::atomic::Ordering::Relaxed) {
            result.perfdata
        } else {
            Vec::new()
        },
    }
}
