//! The periodic evaluation: decisions that depend on time passing rather than on a sample
//! arriving — today, agents that fell silent. The decisions are pure (`incident.rs`); this task
//! reads the store, asks them with the clock's `now`, and stores what they decide.

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::incident::{silent_agents, AgentPresence, IncidentKind, IncidentStatus};
use crate::server::App;
use crate::store::{IncidentFilter, StoreError};
use crate::time::Clock;

/// How often the evaluation runs.
pub const TICK: Duration = Duration::from_secs(1);

/// One evaluation at `now_ms`; returns the incidents it opened.
pub fn evaluate(app: &App, now_ms: i64) -> Result<Vec<i64>, StoreError> {
    let seen = app.store.agents()?;
    let open = app.store.incidents(&IncidentFilter {
        status: Some(IncidentStatus::Open),
        kind: Some(IncidentKind::AgentSilent),
        ..Default::default()
    })?;
    let presence: Vec<AgentPresence> = app
        .config
        .agents
        .keys()
        .map(|name| AgentPresence {
            name: name.to_string(),
            last_seen_ms: seen.iter().find(|a| a.name == name.as_str()).map(|a| a.last_seen_ms),
            silent_after_ms: i64::try_from(app.config.silent_after(name.as_str()).as_millis()).unwrap_or(i64::MAX),
            incident_open: open.iter().any(|i| i.subject == name.as_str()),
        })
        .collect();
    let actions = silent_agents(&presence, now_ms);
    if actions.is_empty() {
        return Ok(Vec::new());
    }
    let opened = app.store.open_incidents(&actions)?;
    app.metrics.add_incidents_open(opened.len() as i64);
    for id in &opened {
        tracing::warn!(incident = id, "incident opened: agent silent");
    }
    Ok(opened)
}

/// Runs [`evaluate`] every [`TICK`] until shutdown.
pub async fn run(app: Arc<App>, clock: Arc<dyn Clock>, shutdown: CancellationToken) {
    let mut failing = false;
    loop {
        let now = clock.now_ms();
        let tick_app = app.clone();
        match tokio::task::spawn_blocking(move || evaluate(&tick_app, now)).await {
            Ok(Ok(_)) => failing = false,
            Ok(Err(e)) if !failing => {
                tracing::error!(error = %e, "evaluation failed; retrying every tick");
                failing = true;
            }
            Ok(Err(_)) => {}
            Err(e) => tracing::error!(error = %e, "evaluation task failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
