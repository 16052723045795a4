//! Routes for people about incidents: list, one with its timeline, acknowledge, note,
//! resolve, and the notifications sent for them.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::app::App;
use crate::core::incident::{Incident, IncidentKind, IncidentStatus, ManualError, ManualOp};
use crate::core::time::{now_ms, rfc3339};
use crate::http::api::{acting, bounded, error, MAX_NAME_BYTES, MAX_TEXT_BYTES};
use crate::store::IncidentFilter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentQuery {
    status: Option<String>,
    kind: Option<String>,
    check: Option<String>,
    agent: Option<String>,
    limit: Option<usize>,
}

/// An incident as the API shows it.
#[derive(Serialize)]
pub(crate) struct IncidentView {
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
pub(crate) struct TimelineView {
    at: String,
    kind: String,
    message: String,
}

pub(crate) fn view(app: &App, i: Incident) -> IncidentView {
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
        check: matches!(i.kind, IncidentKind::CheckDown | IncidentKind::Flapping | IncidentKind::CheckWarning)
            .then(|| i.subject.clone()),
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

pub(crate) async fn list_incidents(
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

pub(crate) async fn get_incident(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManualBody {
    /// Defaults to the API token's name.
    by: Option<String>,
    note: Option<String>,
    text: Option<String>,
}

pub(crate) async fn manual(
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

pub(crate) async fn ack_incident(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    manual(app, headers, id, body, |by, b| Ok(ManualOp::Acknowledge { by, note: b.note })).await
}

pub(crate) async fn note_incident(
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

pub(crate) async fn resolve_incident(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    manual(app, headers, id, body, |by, b| Ok(ManualOp::Resolve { by, note: b.note })).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotificationQuery {
    incident: Option<i64>,
}

pub(crate) async fn list_notifications(
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
