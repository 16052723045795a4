//! The heartbeat ping URLs: `/ping/{key}`, `/ping/{key}/start`, `/ping/{key}/fail` and
//! `/ping/{key}/{exit code}`, by GET, HEAD or POST (the body, e.g. a job's log tail, is kept,
//! bounded, with a failure). The key is the secret: no other token is asked for, so a crontab
//! line with `curl` is enough. An unknown key is a 404 that says nothing more.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

use crate::app::App;
use crate::core::heartbeat::Signal;
use crate::core::time::now_ms;
use crate::evaluate::heartbeat::{ping, PingOutcome};
use crate::http::api::error;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/ping/{key}", get(ping_success).post(ping_success))
        .route("/ping/{key}/{signal}", get(ping_signal).post(ping_signal))
}

async fn ping_success(State(app): State<Arc<App>>, Path(key): Path<String>, body: Bytes) -> Response {
    handle(app, key, String::new(), body).await
}

async fn ping_signal(
    State(app): State<Arc<App>>,
    Path((key, signal)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    handle(app, key, signal, body).await
}

async fn handle(app: Arc<App>, key: String, signal: String, body: Bytes) -> Response {
    let Some(check) = app.heartbeats.check_of(&key).map(str::to_string) else {
        return error(StatusCode::NOT_FOUND, "no heartbeat check has this ping key");
    };
    let Some(signal) = Signal::parse(&signal) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{signal:?} is not a ping: use /ping/KEY, /ping/KEY/start, /ping/KEY/fail or /ping/KEY/<exit code 0-255>"),
        );
    };
    let store_app = app.clone();
    let done = tokio::task::spawn_blocking(move || ping(&store_app, &check, signal, &body, now_ms())).await;
    match done {
        Ok(Ok(PingOutcome::Started)) => (StatusCode::OK, "OK: run started\n").into_response(),
        Ok(Ok(PingOutcome::Recorded)) => (StatusCode::OK, "OK\n").into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("the ping could not be stored: {e}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
