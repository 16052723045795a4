//! The HTTP API's router: every route by audience (agents, people, the public, on-call pages),
//! behind access control, a body limit and security headers; and what the routes share.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use vakt_config::wire::ErrorBody;

use crate::app::App;
use crate::core::time::now_ms;
use crate::http::agents::{agent_checks, ingest_batch};
use crate::http::incidents::{
    ack_incident, get_incident, list_incidents, list_notifications, note_incident, resolve_incident,
};
use crate::http::inventory::{list_agents, list_checks, list_samples};
use crate::http::planned::{create_maintenance, create_silence, expire_silence, list_maintenance, list_silences};
use crate::http::public::{serve_badge, serve_status_page};
use crate::http::slos::{list_slos, sla_report};

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
        .route("/api/v1/cluster", get(crate::http::cluster::cluster))
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/", get(serve_status_page))
        .route("/badge/{service}/{kind}", get(serve_badge))
        .route("/p/{name}", get(crate::http::public::serve_audience_page))
        .merge(crate::http::oncall::routes())
        .merge(crate::http::ping::routes())
        .merge(crate::http::status_posts::routes())
        .merge(crate::http::status_public::routes())
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

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: message.into() })).into_response()
}

/// Longest free text a person may post: a note, a silence's comment.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Longest name: a maintenance window's, a change id, an "on behalf of".
pub const MAX_NAME_BYTES: usize = 200;

/// Refuses `text` longer than `max` bytes, naming `what`.
pub(crate) fn bounded(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!("{what} is longer than {max} bytes"));
    }
    Ok(())
}

/// Who acted, for the audit: always the API token's name; a name the request gives is shown as
/// on whose behalf, never in its place.
pub(crate) fn acting(caller: String, on_behalf_of: Option<&str>) -> String {
    match on_behalf_of.map(str::trim).filter(|b| !b.is_empty() && *b != caller) {
        Some(person) => format!("{caller} on behalf of {person}"),
        None => caller,
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

pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("time {s:?} is neither Unix milliseconds nor RFC 3339: {e}"))
}
