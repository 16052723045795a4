//! Routes for people planning ahead: maintenance windows and silences.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::app::App;
use crate::core::time::{now_ms, rfc3339};
use crate::http::api::{acting, bounded, error, parse_time, MAX_NAME_BYTES, MAX_TEXT_BYTES};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaintenanceQuery {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct MaintenanceView {
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
pub(crate) struct CreatedView {
    by: String,
    at: Option<String>,
    retroactive: bool,
}

pub(crate) async fn list_maintenance(
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
pub(crate) struct NewMaintenance {
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

pub(crate) async fn create_maintenance(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
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
pub(crate) struct NewSilence {
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
pub(crate) struct SilenceMatchers {
    service: Option<String>,
    check: Option<String>,
    agent: Option<String>,
    slo: Option<String>,
    kind: Option<String>,
    severity: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct SilenceView {
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

pub(crate) async fn create_silence(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
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

pub(crate) async fn list_silences(State(app): State<Arc<App>>) -> Response {
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

pub(crate) async fn expire_silence(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
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

fn default_true() -> bool {
    true
}
