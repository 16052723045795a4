//! The HTTP API: ingest, assignments, incidents, health and metrics.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use vakt_config::wire::{Assignments, ErrorBody, LocalChecks};

use crate::app::App;
use crate::auth::bearer;
use crate::core::incident::{Incident, IncidentKind, IncidentStatus, ManualError, ManualOp};
use crate::core::time::{now_ms, rfc3339};
use crate::http::ingest::{self, IngestError};
use crate::store::{IncidentFilter, SampleFilter};

/// Largest body of any request but a push.
pub const API_BODY_LIMIT: usize = 1 << 20;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/v1/ingest", post(ingest_batch))
        .route("/api/v1/agents/{name}/checks", get(agent_checks).post(agent_checks))
        .route("/api/v1/incidents", get(list_incidents))
        .route("/api/v1/incidents/{id}", get(get_incident))
        .route("/api/v1/incidents/{id}/ack", post(ack_incident))
        .route("/api/v1/incidents/{id}/notes", post(note_incident))
        .route("/api/v1/incidents/{id}/resolve", post(resolve_incident))
        .route("/api/v1/slos", get(list_slos))
        .route("/api/v1/reports/sla", get(sla_report))
        .route("/api/v1/maintenance", get(list_maintenance).post(create_maintenance))
        .route("/api/v1/notifications", get(list_notifications))
        .route("/api/v1/silences", get(list_silences).post(create_silence))
        .route("/api/v1/silences/{id}", axum::routing::delete(expire_silence))
        .route("/api/v1/checks", get(list_checks))
        .route("/api/v1/samples", get(list_samples))
        .route("/api/v1/agents", get(list_agents))
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/", get(status_page))
        .route("/badge/{service}/{kind}", get(badge))
        .merge(crate::http::oncall::routes())
        .layer(axum::middleware::from_fn_with_state(app.clone(), crate::http::access::guard))
        // Ingest reads its body itself (after the token, within `ingest_memory_bytes`); what
        // people post (notes, silences, maintenance) is small.
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// What every answer says to a browser: no framing (clickjacking), no content sniffing, no
/// script or outside source at all (the pages have none), forms only back to the collector.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: message.into() })).into_response()
}

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

async fn ingest_batch(State(app): State<Arc<App>>, request: axum::extract::Request) -> Response {
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

async fn ingest_inner(
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
    }
    // Per-agent votes of quorum checks ("check@agent") stay out of the metrics.
    for (check, state) in outcome.states.iter().filter(|(c, _)| !c.contains('@')) {
        app.metrics.set_check_state(check, state);
    }
    Ok(ack)
}

/// `GET`: the agent's assignments. `POST` with [`LocalChecks`]: the same, after taking the
/// agent's announcement of its local checks (which replaces the one before).
async fn agent_checks(
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
    })
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    status: Option<String>,
    kind: Option<String>,
    check: Option<String>,
    agent: Option<String>,
    limit: Option<usize>,
}

/// An incident as the API shows it.
#[derive(Serialize)]
struct IncidentView {
    id: i64,
    dedup_key: String,
    kind: IncidentKind,
    subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    services: Vec<String>,
    customers: Vec<String>,
    priority: String,
    /// The root-cause incident this one is linked under.
    parent_id: Option<i64>,
    title: String,
    severity: String,
    status: IncidentStatus,
    opened_at: String,
    acknowledged_at: Option<String>,
    acknowledged_by: Option<String>,
    resolved_at: Option<String>,
    duration_seconds: Option<f64>,
    /// Acknowledgement and resolution targets of its priority (`response_targets`): target,
    /// elapsed, due and met (true), breached (false) or still running (absent).
    #[serde(skip_serializing_if = "crate::core::incident::Targets::is_empty")]
    targets: crate::core::incident::Targets,
    timeline: Vec<TimelineView>,
}

#[derive(Serialize)]
struct TimelineView {
    at: String,
    kind: String,
    message: String,
}

fn view(app: &App, i: Incident) -> IncidentView {
    let targets = crate::core::incident::targets_of(&i, &app.config, now_ms());
    IncidentView {
        targets,
        id: i.id,
        customers: crate::core::catalog::customers_of(
            &app.config,
            &crate::core::catalog::services_of(&app.config, i.kind, &i.subject),
        ),
        services: crate::core::catalog::services_of(&app.config, i.kind, &i.subject),
        priority: i.priority,
        parent_id: i.parent_id,
        check: matches!(i.kind, IncidentKind::CheckDown | IncidentKind::Flapping).then(|| i.subject.clone()),
        agent: (i.kind == IncidentKind::AgentSilent).then(|| i.subject.clone()),
        kind: i.kind,
        dedup_key: i.dedup_key,
        title: i.title,
        severity: i.severity,
        status: i.status,
        opened_at: rfc3339(i.opened_ms),
        acknowledged_at: i.acknowledged_ms.map(rfc3339),
        acknowledged_by: i.acknowledged_by,
        resolved_at: i.resolved_ms.map(rfc3339),
        duration_seconds: i.resolved_ms.map(|r| (r - i.opened_ms) as f64 / 1000.0),
        timeline: i
            .timeline
            .into_iter()
            .map(|e| TimelineView { at: rfc3339(e.at_ms), kind: e.kind, message: e.message })
            .collect(),
        subject: i.subject,
    }
}

async fn list_incidents(
    State(app): State<Arc<App>>,
    query: Result<Query<IncidentQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let status = match q.status.as_deref() {
        None | Some("all") => None,
        Some(s) => match IncidentStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("status {s:?} is not one of open, acknowledged, resolved, all"),
                )
            }
        },
    };
    let kind = match q.kind.as_deref().map(|k| IncidentKind::parse(k).ok_or(k)) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(k)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("kind {k:?} is not one of check_down, agent_silent, slo_burn, flapping"),
            )
        }
    };
    let (kind, subject) = match (q.check, q.agent) {
        (Some(_), Some(_)) => return error(StatusCode::BAD_REQUEST, "give check or agent, not both"),
        (Some(c), None) => (Some(IncidentKind::CheckDown), Some(c)),
        (None, Some(a)) => (Some(IncidentKind::AgentSilent), Some(a)),
        (None, None) => (kind, None),
    };
    let filter =
        IncidentFilter { status, kind, subject, limit: Some(q.limit.unwrap_or(100).min(10_000)), overlapping: None };
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.incidents(&filter)).await {
        Ok(Ok(list)) => Json(list.into_iter().map(|i| view(&app, i)).collect::<Vec<_>>()).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn get_incident(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::BAD_REQUEST, format!("incident id {id:?} is not a number"));
    };
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.incident(id)).await {
        Ok(Ok(Some(i))) => Json(view(&app, i)).into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("no incident {id}")),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Serialize)]
struct CheckView {
    check: String,
    status: &'static str,
    degraded: bool,
    since: Option<String>,
    last_sample: Option<String>,
    last_error: Option<String>,
    open_incident: Option<i64>,
}

async fn list_checks(State(app): State<Arc<App>>) -> Response {
    let store_app = app.clone();
    let states = match tokio::task::spawn_blocking(move || store_app.store.check_states()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut views: Vec<CheckView> = states
        .into_iter()
        .map(|(check, s)| CheckView {
            check,
            status: s.status.as_str(),
            degraded: s.degraded,
            since: (s.status != crate::core::state::Status::Unknown).then(|| rfc3339(s.since_ms)),
            last_sample: s.last_sample_ms.map(rfc3339),
            last_error: s.last_error,
            open_incident: s.open_incident,
        })
        .collect();
    // Configured checks without data yet are unknown, not missing.
    for id in app.config.checks.keys() {
        if !views.iter().any(|v| v.check == id.as_str()) {
            views.push(CheckView {
                check: id.to_string(),
                status: "unknown",
                degraded: false,
                since: None,
                last_sample: None,
                last_error: None,
                open_incident: None,
            });
        }
    }
    views.sort_by(|a, b| a.check.cmp(&b.check));
    Json(views).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleQuery {
    check: Option<String>,
    /// Unix ms or RFC 3339.
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("time {s:?} is neither Unix milliseconds nor RFC 3339: {e}"))
}

#[derive(Serialize)]
struct SampleView {
    check: String,
    agent: String,
    timestamp: String,
    timestamp_ms: i64,
    success: bool,
    degraded: bool,
    latency_seconds: Option<f64>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    values: std::collections::BTreeMap<String, f64>,
    error: Option<String>,
}

async fn list_samples(
    State(app): State<Arc<App>>,
    query: Result<Query<SampleQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let (from_ms, to_ms) =
        match (q.from.as_deref().map(parse_time).transpose(), q.to.as_deref().map(parse_time).transpose()) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
        };
    let filter = SampleFilter { check: q.check, from_ms, to_ms, limit: Some(q.limit.unwrap_or(1000).min(100_000)) };
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.samples(&filter)).await {
        Ok(Ok(list)) => Json(
            list.into_iter()
                .map(|s| SampleView {
                    timestamp: rfc3339(s.timestamp_ms),
                    timestamp_ms: s.timestamp_ms,
                    check: s.check,
                    agent: s.agent,
                    success: s.success,
                    degraded: s.degraded,
                    latency_seconds: s.latency_seconds,
                    values: s.values,
                    error: s.error,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn list_agents(State(app): State<Arc<App>>) -> Response {
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.agents()).await {
        Ok(Ok(known)) => Json(crate::http::fleet::overview(&app, known, now_ms())).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualBody {
    /// Defaults to the API token's name.
    by: Option<String>,
    note: Option<String>,
    text: Option<String>,
}

async fn manual(
    app: Arc<App>,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    op: fn(String, ManualBody) -> Result<ManualOp, String>,
) -> Response {
    let caller = match crate::http::access::caller(&app, &headers) {
        Ok(c) => c,
        Err(reason) => return error(StatusCode::UNAUTHORIZED, reason),
    };
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::BAD_REQUEST, format!("incident id {id:?} is not a number"));
    };
    let body: ManualBody = if body.is_empty() {
        ManualBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not valid JSON: {e}")),
        }
    };
    if let Err(why) = bounded("by", body.by.as_deref().unwrap_or(""), MAX_NAME_BYTES)
        .and_then(|()| bounded("the note", body.note.as_deref().or(body.text.as_deref()).unwrap_or(""), MAX_TEXT_BYTES))
    {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let by = acting(caller, body.by.as_deref());
    let op = match op(by, body) {
        Ok(op) => op,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.manual(id, &op, now_ms())).await {
        Ok(Ok(Ok(incident))) => {
            app.metrics.set_incidents_open_from(&*app.store);
            Json(view(&app, incident)).into_response()
        }
        Ok(Ok(Err(e @ ManualError::NotFound(_)))) => error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Ok(Err(e))) => error(StatusCode::CONFLICT, e.to_string()),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn ack_incident(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    manual(app, headers, id, body, |by, b| Ok(ManualOp::Acknowledge { by, note: b.note })).await
}

async fn note_incident(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    manual(app, headers, id, body, |by, b| match b.text.or(b.note) {
        Some(text) if !text.trim().is_empty() => Ok(ManualOp::Note { by, text }),
        _ => Err("a note needs {\"text\": \"...\"}".into()),
    })
    .await
}

async fn resolve_incident(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    manual(app, headers, id, body, |by, b| Ok(ManualOp::Resolve { by, note: b.note })).await
}

#[derive(Serialize)]
struct SloView {
    name: String,
    service: String,
    objective: f64,
    window_start: String,
    window_end: String,
    achieved: Option<f64>,
    met: bool,
    /// no_data, met, on_track, at_risk or breached (a calendar window still running is judged
    /// against the whole period).
    status: crate::core::slo::Status,
    /// When the budget runs out at the burn rate so far (a calendar window still running).
    #[serde(skip_serializing_if = "Option::is_none")]
    forecast_exhausted_at: Option<String>,
    /// Minutes of the window with data (valid time, or minutes with probes).
    observed_minutes: f64,
    /// "ms" for time-based SLOs, "events" otherwise.
    unit: &'static str,
    valid: f64,
    bad: f64,
    downtime_minutes: f64,
    unknown_minutes: f64,
    excluded_minutes: f64,
    error_budget_allowed: f64,
    error_budget_spent: f64,
    /// Time-based SLOs: the error budget in minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_budget_allowed_minutes: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_budget_spent_minutes: Option<f64>,
    error_budget_remaining_ratio: f64,
    burn_rates: std::collections::BTreeMap<String, f64>,
    alerts: Vec<String>,
    /// Latency SLOs: the latency at the objective's quantile over the window (p99 for 99).
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_quantile_seconds: Option<f64>,
}

async fn list_slos(State(app): State<Arc<App>>) -> Response {
    let store_app = app.clone();
    let now = now_ms();
    let evaluated = tokio::task::spawn_blocking(move || {
        let evaluations = crate::evaluate::slos::evaluate_all(store_app.store.as_ref(), &store_app.config, now)?;
        let mut quantiles = std::collections::HashMap::new();
        for e in &evaluations {
            if let Some(c) = store_app.config.slos.get(e.name.as_str()) {
                let q = crate::evaluate::slos::latency_quantile(
                    store_app.store.as_ref(),
                    &store_app.config,
                    c,
                    e.verdict.window_start_ms,
                    now,
                )?;
                quantiles.insert(e.name.clone(), q);
            }
        }
        Ok::<_, crate::store::StoreError>((evaluations, quantiles))
    })
    .await;
    let (evaluations, quantiles) = match evaluated {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let views: Vec<SloView> = evaluations
        .into_iter()
        .filter_map(|e| {
            let cfg = app.config.slos.get(e.name.as_str())?;
            let v = e.verdict;
            let spec = crate::evaluate::slos::spec(&app.config, &e.name, cfg);
            let time_based = spec.method == crate::core::slo::Method::Time;
            let minutes = |ms: u64| ms as f64 / 60_000.0;
            Some(SloView {
                service: cfg.service.get_ref().clone(),
                objective: *cfg.objective.get_ref() / 100.0,
                window_start: rfc3339(v.window_start_ms),
                window_end: rfc3339(v.window_end_ms),
                achieved: v.achieved,
                met: v.met,
                status: v.status,
                observed_minutes: spec.observed_ms(&v) as f64 / 60_000.0,
                forecast_exhausted_at: v.forecast_exhausted_ms.map(rfc3339),
                unit: if time_based { "ms" } else { "events" },
                valid: v.sli.valid,
                bad: v.sli.bad,
                downtime_minutes: minutes(v.counts.down_ms),
                unknown_minutes: minutes(v.counts.unknown_ms),
                excluded_minutes: minutes(v.counts.excluded_ms),
                error_budget_allowed: v.budget_allowed,
                error_budget_spent: v.budget_spent,
                error_budget_allowed_minutes: time_based.then(|| v.budget_allowed / 60_000.0),
                error_budget_spent_minutes: time_based.then(|| v.budget_spent / 60_000.0),
                error_budget_remaining_ratio: v.budget_remaining_ratio,
                burn_rates: e
                    .published_burn_rates
                    .iter()
                    .map(|(w, r)| (crate::core::time::human_duration_ms(*w), *r))
                    .collect(),
                latency_quantile_seconds: quantiles.get(&e.name).copied().flatten(),
                alerts: v.alerts.iter().map(crate::core::slo::BurnAlert::describe).collect(),
                name: e.name,
            })
        })
        .collect();
    Json(views).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    service: Option<String>,
    customer: Option<String>,
    vendor: Option<String>,
    period: String,
    format: Option<String>,
    timezone: Option<String>,
}

async fn sla_report(
    State(app): State<Arc<App>>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let scope = match (q.service, q.customer, q.vendor) {
        (Some(s), None, None) => crate::evaluate::report::Scope::Service(s),
        (None, Some(c), None) => crate::evaluate::report::Scope::Customer(c),
        (None, None, Some(v)) => crate::evaluate::report::Scope::Vendor(v),
        _ => return error(StatusCode::BAD_REQUEST, "give exactly one of service, customer, vendor"),
    };
    let Some(format) = crate::evaluate::report::Format::parse(q.format.as_deref().unwrap_or("json")) else {
        return error(StatusCode::BAD_REQUEST, "format is one of json, csv, html");
    };
    let store_app = app.clone();
    let now = now_ms();
    let built = tokio::task::spawn_blocking(move || {
        // Default: the SLOs' own time zone.
        let tz = q.timezone.as_deref();
        crate::evaluate::report::build(store_app.store.as_ref(), &store_app.config, &scope, &q.period, tz, now)
    })
    .await;
    match built {
        Ok(Ok(report)) => {
            ([(header::CONTENT_TYPE, format.content_type())], crate::evaluate::report::render(&report, format))
                .into_response()
        }
        Ok(Err(crate::evaluate::report::ReportError::Invalid(e))) => error(StatusCode::BAD_REQUEST, e),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceQuery {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Serialize)]
struct MaintenanceView {
    name: String,
    start: String,
    end: String,
    services: Vec<String>,
    change_id: Option<String>,
    exclude_from_sla: bool,
    source: &'static str,
    active: bool,
    /// Minutes the covered services stayed down past the end (ended windows only).
    overran_minutes: f64,
    /// Who made it through the API or CLI, when, and whether after its start on purpose.
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<CreatedView>,
}

#[derive(Serialize)]
struct CreatedView {
    by: String,
    at: Option<String>,
    retroactive: bool,
}

async fn list_maintenance(
    State(app): State<Arc<App>>,
    query: Result<Query<MaintenanceQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let now = now_ms();
    let (from, to) = match (q.from.as_deref().map(parse_time).transpose(), q.to.as_deref().map(parse_time).transpose())
    {
        (Ok(f), Ok(t)) => (f.unwrap_or(now - 86_400_000), t.unwrap_or(now + 7 * 86_400_000)),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let store_app = app.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let created = store_app.store.maintenance(from, to)?;
        let all = crate::core::maintenance::occurrences_in(
            Some(&store_app.config),
            &store_app.config.maintenance,
            &created,
            from,
            to,
        );
        let mut views = Vec::with_capacity(all.len());
        for o in all {
            let services: Vec<String> = if o.services.is_empty() {
                store_app.config.services.keys().map(|s| s.to_string()).collect()
            } else {
                o.services.clone()
            };
            let checks: Vec<String> =
                services.iter().flat_map(|s| crate::evaluate::slos::service_checks(&store_app.config, s)).collect();
            let overrun = if o.end_ms <= now {
                let periods = store_app.store.periods(&checks, o.start_ms, now)?;
                crate::core::maintenance::overrun_ms(o.end_ms, now, &periods)
            } else {
                0
            };
            views.push(MaintenanceView {
                start: rfc3339(o.start_ms),
                end: rfc3339(o.end_ms),
                active: o.start_ms <= now && now < o.end_ms,
                overran_minutes: overrun as f64 / 60_000.0,
                name: o.name,
                services: o.services,
                change_id: o.change_id,
                exclude_from_sla: o.exclude_from_sla,
                source: o.source,
                created: o.created.map(|c| CreatedView {
                    by: c.by,
                    at: (c.at_ms > 0).then(|| rfc3339(c.at_ms)),
                    retroactive: c.retroactive,
                }),
            });
        }
        Ok::<_, crate::store::StoreError>(views)
    })
    .await;
    match listed {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMaintenance {
    name: String,
    /// RFC 3339, e.g. "2026-12-01T22:00:00+01:00".
    start: String,
    end: String,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    change_id: Option<String>,
    #[serde(default = "default_true")]
    exclude_from_sla: bool,
    /// The window starts in the past on purpose (an admin token's decision): it takes recorded
    /// downtime out of the SLA.
    #[serde(default)]
    retroactive: bool,
}

fn default_true() -> bool {
    true
}

/// Longest free text a person may post: a note, a silence's comment.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Longest name: a maintenance window's, a change id, an "on behalf of".
pub const MAX_NAME_BYTES: usize = 200;

/// Refuses `text` longer than `max` bytes, naming `what`.
fn bounded(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!("{what} is longer than {max} bytes"));
    }
    Ok(())
}

/// Who acted, for the audit: always the API token's name; a name the request gives is shown as
/// on whose behalf, never in its place.
fn acting(caller: String, on_behalf_of: Option<&str>) -> String {
    match on_behalf_of.map(str::trim).filter(|b| !b.is_empty() && *b != caller) {
        Some(person) => format!("{caller} on behalf of {person}"),
        None => caller,
    }
}

async fn create_maintenance(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match crate::http::access::caller(&app, &headers) {
        Ok(c) => c,
        Err(reason) => return error(StatusCode::UNAUTHORIZED, reason),
    };
    let new: NewMaintenance = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not a maintenance window: {e}")),
    };
    let (start, end) = match (new.start.parse::<jiff::Timestamp>(), new.end.parse::<jiff::Timestamp>()) {
        (Ok(s), Ok(e)) => (s.as_millisecond(), e.as_millisecond()),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "start and end must be RFC 3339 times with an offset, e.g. 2026-12-01T22:00:00+01:00",
            )
        }
    };
    if end <= start {
        return error(StatusCode::BAD_REQUEST, "end must be after start");
    }
    if let Err(why) = bounded("name", &new.name, MAX_NAME_BYTES)
        .and_then(|()| bounded("change_id", new.change_id.as_deref().unwrap_or(""), MAX_NAME_BYTES))
    {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let now = now_ms();
    if let Err(why) = crate::core::maintenance::check_start(start, now, new.retroactive) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    if let Some(s) = new.services.iter().find(|s| !app.config.services.contains_key(s.as_str())) {
        return error(StatusCode::BAD_REQUEST, format!("unknown service {s:?}"));
    }
    if new.retroactive {
        tracing::warn!(by = %caller, name = %new.name, start = %rfc3339(start), "a retroactive maintenance window takes recorded downtime out of the SLA");
    }
    let occurrence = crate::core::maintenance::Occurrence {
        name: new.name,
        start_ms: start,
        end_ms: end,
        services: new.services,
        change_id: new.change_id,
        exclude_from_sla: new.exclude_from_sla,
        source: "api",
        created: Some(crate::core::maintenance::Created { by: caller, at_ms: now, retroactive: new.retroactive }),
    };
    let store_app = app.clone();
    let saved = occurrence.clone();
    match tokio::task::spawn_blocking(move || store_app.store.add_maintenance(&saved)).await {
        Ok(Ok(id)) => (
            StatusCode::CREATED,
            Json(serde_json::json!({"id": id, "name": occurrence.name, "start": rfc3339(start), "end": rfc3339(end)})),
        )
            .into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationQuery {
    incident: Option<i64>,
}

async fn list_notifications(
    State(app): State<Arc<App>>,
    query: Result<Query<NotificationQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.notifications(q.incident)).await {
        Ok(Ok(rows)) => Json(rows).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    #[serde(default)]
    matchers: SilenceMatchers,
    /// RFC 3339; default now.
    #[serde(default)]
    starts_at: Option<String>,
    ends_at: String,
    #[serde(default)]
    author: Option<String>,
    comment: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceMatchers {
    service: Option<String>,
    check: Option<String>,
    agent: Option<String>,
    slo: Option<String>,
    kind: Option<String>,
    severity: Option<String>,
}

#[derive(Serialize)]
struct SilenceView {
    id: i64,
    service: Option<String>,
    subject: Option<String>,
    kind: Option<String>,
    severity: Option<String>,
    starts_at: String,
    ends_at: String,
    active: bool,
    author: String,
    comment: String,
}

async fn create_silence(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match crate::http::access::caller(&app, &headers) {
        Ok(c) => c,
        Err(reason) => return error(StatusCode::UNAUTHORIZED, reason),
    };
    let new: NewSilence = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not a silence: {e}")),
    };
    let now = now_ms();
    let starts = match new.starts_at.as_deref().map(|s| s.parse::<jiff::Timestamp>()) {
        None => now,
        Some(Ok(t)) => t.as_millisecond(),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("starts_at is not RFC 3339: {e}")),
    };
    let Ok(ends) = new.ends_at.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()) else {
        return error(StatusCode::BAD_REQUEST, "ends_at must be an RFC 3339 time");
    };
    if ends <= starts {
        return error(StatusCode::BAD_REQUEST, "ends_at must be after starts_at");
    }
    if new.comment.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "a silence needs a comment saying why");
    }
    if let Err(why) = bounded("comment", &new.comment, MAX_TEXT_BYTES)
        .and_then(|()| bounded("author", new.author.as_deref().unwrap_or(""), MAX_NAME_BYTES))
    {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let m = new.matchers;
    let (kind, subject) = match (m.check, m.agent, m.slo) {
        (Some(c), None, None) => (m.kind.or(Some("check_down".into())), Some(c)),
        (None, Some(a), None) => (Some("agent_silent".into()), Some(a)),
        (None, None, Some(s)) => (Some("slo_burn".into()), Some(s)),
        (None, None, None) => (m.kind, None),
        _ => return error(StatusCode::BAD_REQUEST, "give at most one of check, agent, slo"),
    };
    if kind.as_deref().is_some_and(|k| !vakt_config::notify::INCIDENT_KINDS.contains(&k)) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("kind is one of {}", vakt_config::notify::INCIDENT_KINDS.join(", ")),
        );
    }
    if m.service.as_deref().is_some_and(|s| !app.config.services.contains_key(s)) {
        return error(StatusCode::BAD_REQUEST, "unknown service");
    }
    let silence = crate::core::routing::Silence {
        id: 0,
        service: m.service,
        subject,
        kind,
        severity: m.severity,
        starts_ms: starts,
        ends_ms: ends,
        author: acting(caller, new.author.as_deref()),
        comment: new.comment,
    };
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.add_silence(&silence)).await {
        Ok(Ok(id)) => (StatusCode::CREATED, Json(serde_json::json!({"id": id}))).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn list_silences(State(app): State<Arc<App>>) -> Response {
    let now = now_ms();
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.silences(now)).await {
        Ok(Ok(list)) => Json(
            list.into_iter()
                .map(|s| SilenceView {
                    id: s.id,
                    active: s.starts_ms <= now,
                    starts_at: rfc3339(s.starts_ms),
                    ends_at: rfc3339(s.ends_ms),
                    service: s.service,
                    subject: s.subject,
                    kind: s.kind,
                    severity: s.severity,
                    author: s.author,
                    comment: s.comment,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn expire_silence(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(reason) = crate::http::access::caller(&app, &headers) {
        return error(StatusCode::UNAUTHORIZED, reason);
    }
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::BAD_REQUEST, format!("silence id {id:?} is not a number"));
    };
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.expire_silence(id, now_ms())).await {
        Ok(Ok(true)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(false)) => error(StatusCode::NOT_FOUND, format!("no silence {id}")),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `/healthz` and `/readyz`: 200 while the store takes writes (probed with a real write at most
/// every few seconds), 503 with the reason otherwise: a full disk, a damaged or read-only file.
async fn healthz(State(app): State<Arc<App>>) -> Response {
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store_health(now_ms())).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render()).into_response()
}

async fn status_page(State(app): State<Arc<App>>) -> Response {
    let store_app = app.clone();
    let now = now_ms();
    match tokio::task::spawn_blocking(move || {
        crate::http::public::build(store_app.store.as_ref(), &store_app.config, now)
    })
    .await
    {
        Ok(Ok(page)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], crate::http::public::render(&page, &app.config))
                .into_response()
        }
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BadgeQuery {
    window: Option<String>,
}

async fn badge(
    State(app): State<Arc<App>>,
    Path((service, kind)): Path<(String, String)>,
    query: Result<Query<BadgeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !app.config.services.contains_key(service.as_str()) {
        return error(StatusCode::NOT_FOUND, format!("no service {service:?}"));
    }
    let window = match q.window.as_deref().map(vakt_config::duration::parse_duration).transpose() {
        Ok(w) => w.unwrap_or(std::time::Duration::from_secs(30 * 86_400)),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let store_app = app.clone();
    let now = now_ms();
    let svc = service.clone();
    let svg = tokio::task::spawn_blocking(move || -> Result<Option<String>, crate::store::StoreError> {
        let store = store_app.store.as_ref();
        Ok(match kind.as_str() {
            "status.svg" => {
                let state = crate::evaluate::service::service_state(store, &store_app.config, &svc, now)?;
                Some(crate::http::public::badge(&svc, state, crate::http::public::state_color(state)))
            }
            "uptime.svg" => {
                let ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
                let label = format!("uptime {}", vakt_config::duration::format_duration(window));
                Some(match crate::evaluate::service::uptime(store, &store_app.config, &svc, ms, now)? {
                    Some(u) => {
                        let color = if u >= 0.999 {
                            "#2e9b4f"
                        } else if u >= 0.99 {
                            "#e0a100"
                        } else {
                            "#d93a2b"
                        };
                        crate::http::public::badge(&label, &format!("{:.2}%", u * 100.0), color)
                    }
                    None => crate::http::public::badge(&label, "no data", "#9aa5b1"),
                })
            }
            _ => None,
        })
    })
    .await;
    match svg {
        Ok(Ok(Some(svg))) => {
            ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=60")], svg).into_response()
        }
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "badges are status.svg and uptime.svg"),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
