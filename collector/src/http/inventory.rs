//! Routes for people about what is monitored: checks with their state, raw samples, agents.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::app::App;
use crate::core::time::{now_ms, rfc3339};
use crate::http::api::{error, parse_time};
use crate::store::SampleFilter;

#[derive(Serialize)]
pub(crate) struct CheckView {
    check: String,
    status: &'static str,
    degraded: bool,
    since: Option<String>,
    last_sample: Option<String>,
    last_error: Option<String>,
    open_incident: Option<i64>,
}

pub(crate) async fn list_checks(State(app): State<Arc<App>>) -> Response {
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
pub(crate) struct SampleQuery {
    check: Option<String>,
    /// Unix ms or RFC 3339.
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    /// "newest" (the default without `from`) or "oldest" (the default with it).
    order: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct SampleView {
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

pub(crate) async fn list_samples(
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
    // The newest `limit` samples, unless asked from a start on (paging forward) or for the oldest.
    let newest = match q.order.as_deref() {
        None => from_ms.is_none(),
        Some("newest") => true,
        Some("oldest") => false,
        Some(other) => return error(StatusCode::BAD_REQUEST, format!("order {other:?} is newest or oldest")),
    };
    let limit = Some(q.limit.unwrap_or(1000).min(100_000));
    let filter = SampleFilter { check: q.check, from_ms, to_ms, limit, newest };
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

pub(crate) async fn list_agents(State(app): State<Arc<App>>) -> Response {
    let store_app = app.clone();
    match tokio::task::spawn_blocking(move || store_app.store.agents()).await {
        Ok(Ok(known)) => Json(crate::http::fleet::overview(&app, known, now_ms())).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
