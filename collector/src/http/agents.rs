//! Routes for agents: the push (`/api/v1/ingest`) with each refusal's status and reason, and
//! the assignments an agent fetches with its local checks announced.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use vakt_config::wire::{Assignments, LocalChecks};

use crate::app::App;
use crate::auth::bearer;
use crate::core::time::now_ms;
use crate::http::api::error;
use crate::http::ingest::{self, IngestError};

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let mut response = error(self.status(), self.to_string());
        if let IngestError::RateLimited { retry_after_ms, .. } = &self {
            // Whole seconds, rounded up, at least 1.
            let secs = ((*retry_after_ms).max(1) + 999) / 1000;
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if matches!(self, IngestError::Overloaded) {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        // Refused before its body was read (or while): the connection cannot carry another.
        if matches!(
            self,
            IngestError::Unauthorized(_)
                | IngestError::RateLimited { .. }
                | IngestError::TooLarge(_)
                | IngestError::Overloaded
                | IngestError::BodyTimeout(_)
        ) {
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        response
    }
}

pub(crate) async fn ingest_batch(State(app): State<Arc<App>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    match ingest_inner(&app, &parts.headers, body).await {
        Ok(ack) => (StatusCode::OK, Json(ack)).into_response(),
        Err(e) => {
            app.metrics.rejected(e.reason());
            if e.status().is_server_error() {
                tracing::error!(error = %e, "ingest failed");
            } else {
                tracing::debug!(status = %e.status(), error = %e, "ingest rejected");
            }
            e.into_response()
        }
    }
}

pub(crate) async fn ingest_inner(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<vakt_config::wire::IngestAck, IngestError> {
    // Authenticate from the headers, before reading (let alone decompressing) the body.
    let token = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .ok_or_else(|| IngestError::Unauthorized("missing bearer token (Authorization: Bearer <token>)".into()))?;
    let agent = app
        .tokens
        .agent_for(token)
        .ok_or_else(|| IngestError::Unauthorized("token is not valid for any agent".into()))?;
    // The batch's receipt time: for the rate limit, the agent's clock skew, validation, the store.
    let now = now_ms();
    // Before decompressing and parsing: a flood costs little.
    app.rate_limiter
        .admit(agent, now)
        .map_err(|retry_after_ms| IngestError::RateLimited { agent: agent.to_string(), retry_after_ms })?;
    let sent_at_ms = headers.get(vakt_config::wire::SENT_AT_HEADER).and_then(|v| v.to_str().ok()?.parse::<i64>().ok());
    let skew_ms = sent_at_ms.map(|sent_ms| sent_ms.saturating_sub(now));
    if let Some(skew) = skew_ms {
        app.observe_clock_skew(agent, skew);
    }
    let max_body = *app.config.max_body_bytes.get_ref();
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let (body, _held) =
        ingest::read_body(body, length, max_body, &app.ingest_budget, app.config.request_body_timeout.get()).await?;
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let batch = ingest::decode(&body, encoding, max_body)?;
    let batch_agent = agent.to_string();
    if batch.agent != agent {
        return Err(IngestError::Forbidden(format!(
            "this token belongs to agent {agent:?}; it cannot push for {:?}",
            batch.agent
        )));
    }
    ingest::validate(&batch, now, *app.config.max_batch_samples.get_ref()).map_err(|e| match (e, skew_ms) {
        (IngestError::Invalid(why), Some(skew)) if skew.abs() > vakt_config::wire::CLOCK_SKEW_WARN_MS => {
            IngestError::Invalid(format!(
                "{why}; the agent's clock is {} the collector's",
                vakt_config::wire::describe_clock_skew(skew)
            ))
        }
        (e, _) => e,
    })?;
    let store_app = app.clone();
    let (batch, refused, outcome) = tokio::task::spawn_blocking(move || {
        let mut batch = batch;
        // Only what this agent may report: its assigned and announced checks, nothing before
        // its last results (beyond what its spool holds back).
        let floor = match store_app.store.agent_high_water(&batch.agent) {
            Ok(hw) => crate::core::admission::backfill_floor(hw, sent_at_ms),
            Err(e) => return (batch, Vec::new(), Err(e)),
        };
        let refused =
            crate::core::admission::admit(&mut batch, |check| store_app.may_report(&batch_agent, check), floor);
        let outcome = store_app.store.commit_batch(&batch, now, &store_app.policies);
        (batch, refused, outcome)
    })
    .await
    .map_err(|e| IngestError::Store(e.to_string()))?;
    let outcome = outcome.map_err(|e| {
        app.batch_written(Err(&e.to_string()));
        IngestError::Store(e.to_string())
    })?;
    app.batch_written(Ok(()));
    for r in &refused {
        app.refused_samples(&batch.agent, r);
    }
    if let Some(before) = &outcome.new_instance {
        tracing::warn!(
            agent = %batch.agent,
            instance = batch.instance.as_deref().unwrap_or(""),
            before = %before,
            "the agent pushes under a new instance: its state directory is new, its sequence numbers start again"
        );
    }
    if outcome.sequence_reused {
        tracing::warn!(
            agent = %batch.agent,
            sequence = batch.sequence,
            "the agent reused a sequence number with other content (was its state directory restored from a copy?); stored as a new batch"
        );
    }
    let mut ack = outcome.ack.clone().ok_or_else(|| IngestError::Store("no acknowledgement".into()))?;
    ack.clock_skew_ms = skew_ms;
    ack.config_generation = Some(app.generation.clone());
    ack.refused = refused;
    // Committed: now the metrics may show it.
    app.metrics.agent_seen(&batch.agent, now);
    if let Some(v) = &batch.agent_version {
        app.metrics.agent_version(&batch.agent, v);
    }
    if !outcome.incidents_opened.is_empty() || !outcome.incidents_resolved.is_empty() {
        let count_app = app.clone();
        let _ =
            tokio::task::spawn_blocking(move || count_app.metrics.set_incidents_open_from(count_app.store.as_ref()))
                .await;
        // Root causes are linked before the notifications' group wait ends, then the outbox
        // worker is woken: alerts go out within the group wait, not at the next poll.
        if !outcome.incidents_opened.is_empty() {
            let link_app = app.clone();
            let _ = tokio::task::spawn_blocking(move || crate::evaluate::link_root_causes(&link_app, now)).await;
        }
        app.outbox_wakeup.notify_one();
    }
    for id in &outcome.incidents_opened {
        tracing::warn!(incident = id, agent = %batch.agent, "incident opened");
    }
    for id in &outcome.incidents_resolved {
        tracing::info!(incident = id, "incident resolved");
    }
    if ack.duplicate {
        app.metrics.batch_duplicate();
        tracing::debug!(agent = %batch.agent, sequence = batch.sequence, "duplicate batch acknowledged");
        return Ok(ack);
    }
    app.metrics.batch_accepted(ack.accepted);
    // One histogram lookup per check and batch, not per sample.
    let mut by_check: std::collections::HashMap<&str, Vec<f64>> = std::collections::HashMap::new();
    for s in &batch.samples {
        if let Some(l) = s.latency_seconds {
            by_check.entry(s.check.as_str()).or_default().push(l);
        }
    }
    for (check, latencies) in by_check {
        app.metrics.observe_latencies(check, &latencies);
    }
    for s in &batch.samples {
        if let Some(days) = s.values.get("cert_days_left") {
            app.metrics.set_cert_days_left(&s.check, *days);
        }
        if !s.perfdata.is_empty() {
            app.metrics.set_perfdata(&s.check, &s.perfdata);
        }
        if s.values.contains_key("exit_code") || s.values.contains_key(vakt_config::wire::PLUGIN_UNKNOWN_VALUE) {
            let unknown = s.values.get(vakt_config::wire::PLUGIN_UNKNOWN_VALUE) == Some(&1.0);
            app.metrics.set_plugin_unknown(&s.check, unknown);
        }
    }
    // Per-agent votes of quorum checks ("check@agent") stay out of the metrics.
    for (check, state) in outcome.states.iter().filter(|(c, _)| !c.contains('@')) {
        app.metrics.set_check_state(check, state);
    }
    Ok(ack)
}

/// `GET`: the agent's assignments. `POST` with [`LocalChecks`]: the same, after taking the
/// agent's announcement of its local checks (which replaces the one before).
pub(crate) async fn agent_checks(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) else {
        return error(StatusCode::UNAUTHORIZED, "missing bearer token (Authorization: Bearer <token>)");
    };
    if !app.tokens.verify(&name, token) {
        return error(StatusCode::UNAUTHORIZED, format!("token is not valid for agent {name:?}"));
    }
    let mut refused_local = Vec::new();
    if method == axum::http::Method::POST {
        let local: LocalChecks = match serde_json::from_slice(&body) {
            Ok(l) => l,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not a list of local checks: {e}")),
        };
        let announce_app = app.clone();
        let agent = name.clone();
        match tokio::task::spawn_blocking(move || announce_app.announce_local_checks(&agent, &local.checks, now_ms()))
            .await
        {
            Ok(Ok(refused)) => refused_local = refused,
            Ok(Err(e)) => {
                return error(StatusCode::SERVICE_UNAVAILABLE, format!("storing the local checks failed: {e}"))
            }
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }
    Json(Assignments {
        agent: name.clone(),
        checks: app.config.assignments_for(&name).into_iter().map(std::sync::Arc::new).collect(),
        refused_local,
        accepts: vec![vakt_config::wire::ACCEPTS_PERFDATA.to_string()],
    })
    .into_response()
}
