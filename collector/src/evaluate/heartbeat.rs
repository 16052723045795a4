//! Heartbeat checks, the collector's side: a ping becomes a result of its check (committed
//! like an agent's batch, so states, periods, incidents and notifications follow the same
//! path), and a run that did not ping in time becomes a failed result at the moment it was
//! late (see `core::heartbeat`).

use vakt_config::wire::{Batch, Sample, PROTOCOL_VERSION};

use crate::app::App;
use crate::core::heartbeat::{bounded_body, run_seconds, Signal, HEARTBEAT_AGENT};
use crate::store::StoreError;

/// What a ping did.
#[derive(Debug, PartialEq, Eq)]
pub enum PingOutcome {
    /// A run started; nothing is recorded until it ends.
    Started,
    /// The result was stored (and the check's state follows it).
    Recorded,
}

fn result_batch(sequence: u64, sample: Sample) -> Batch {
    Batch {
        version: PROTOCOL_VERSION,
        agent: HEARTBEAT_AGENT.into(),
        agent_version: None,
        instance: Some("collector".into()),
        sequence,
        samples: vec![sample],
    }
}

/// Commits a heartbeat result and brings the metrics and the outbox up to date.
fn commit(app: &App, batch: &Batch, now_ms: i64) -> Result<(), StoreError> {
    let outcome = app.store.commit_batch(batch, now_ms, &app.policies)?;
    for (check, state) in outcome.states.iter().filter(|(c, _)| !c.contains('@')) {
        app.metrics.set_check_state(check, state);
    }
    if !outcome.incidents_opened.is_empty() || !outcome.incidents_resolved.is_empty() {
        app.metrics.set_incidents_open_from(app.store.as_ref());
        for id in &outcome.incidents_opened {
            tracing::warn!(incident = id, "incident opened: heartbeat");
        }
        app.outbox_wakeup.notify_one();
    }
    Ok(())
}

/// Distinct sequence numbers for pings within one millisecond.
fn ping_sequence(now_ms: i64) -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 999;
    u64::try_from(now_ms).unwrap_or(0) * 1000 + n
}

/// A ping of `check` at `now_ms` with `body` (the job's output, bounded).
pub fn ping(app: &App, check: &str, signal: Signal, body: &[u8], now_ms: i64) -> Result<PingOutcome, StoreError> {
    let Some(success) = signal.success() else {
        app.heartbeats.started(check, now_ms);
        return Ok(PingOutcome::Started);
    };
    let started = app.heartbeats.ended(check);
    let mut values = std::collections::BTreeMap::new();
    if let Signal::ExitCode(code) = signal {
        values.insert("exit_code".to_string(), f64::from(code));
    }
    let sample = Sample {
        check: check.to_string(),
        timestamp_ms: now_ms,
        success,
        degraded: false,
        latency_seconds: if success { run_seconds(started, now_ms) } else { None },
        values,
        error: (!success).then(|| signal.failure_reason(&bounded_body(body))),
        perfdata: Vec::new(),
    };
    commit(app, &result_batch(ping_sequence(now_ms), sample), now_ms)?;
    Ok(PingOutcome::Recorded)
}

/// Records a failed result for each heartbeat check whose run is late at `now_ms`, at the
/// moment it became late. A check that never pinged is left alone. Run again at the same
/// moment, it writes nothing twice (the batch is named by the moment).
pub fn record_missed(app: &App, now_ms: i64) -> Result<(), StoreError> {
    if app.heartbeats.expectations.is_empty() {
        return Ok(());
    }
    let states = app.store.check_states()?;
    for (check, expectation) in &app.heartbeats.expectations {
        let Some(last) = states.iter().find(|(c, _)| c == check).and_then(|(_, s)| s.last_sample_ms) else {
            continue;
        };
        let Some(missed) = expectation.missed(last, now_ms) else { continue };
        tracing::warn!(%check, reason = %missed.reason, "heartbeat missed");
        let sample = Sample {
            check: check.clone(),
            timestamp_ms: missed.late_ms,
            success: false,
            degraded: false,
            latency_seconds: None,
            values: Default::default(),
            error: Some(missed.reason),
            perfdata: Vec::new(),
        };
        let sequence = u64::try_from(missed.late_ms).unwrap_or(0) * 1000 + 999;
        commit(app, &result_batch(sequence, sample), now_ms)?;
    }
    Ok(())
}
