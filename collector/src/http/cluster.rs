//! `GET /api/v1/cluster`: the collectors sharing the store, who leads them, and whether they
//! agree (same version, same configuration hash, clocks in step with the database's).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::sync::Arc;

use crate::app::App;
use crate::http::api::error;

#[derive(Serialize)]
struct ClusterAnswer {
    /// The node that answered.
    this_node: String,
    /// Whether the node that answered leads now.
    this_node_leads: bool,
    /// The leader with a live lease, if any.
    leader: Option<String>,
    /// The current term (fencing epoch).
    epoch: Option<i64>,
    lease_until_ms: Option<i64>,
    /// The database's clock when it answered (Unix ms).
    now_ms: i64,
    nodes: Vec<NodeAnswer>,
    /// Things an operator should look at: versions or configurations that differ, clocks off.
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct NodeAnswer {
    node: String,
    version: String,
    config_hash: String,
    started_ms: i64,
    last_seen_ms: i64,
    /// The database's clock minus the node's.
    clock_offset_ms: i64,
    leader: bool,
    /// Heard from recently; a node gone for longer stays listed until it comes back.
    alive: bool,
}

/// Clocks further apart than this are worth a warning: SLA times come from several nodes.
const CLOCK_WARN_MS: i64 = 1_000;

pub(crate) async fn cluster(State(app): State<Arc<App>>) -> Response {
    let store_app = app.clone();
    let view = match tokio::task::spawn_blocking(move || store_app.store.cluster()).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let lease = app.leadership.lease();
    let nodes: Vec<NodeAnswer> = view
        .nodes
        .iter()
        .map(|n| NodeAnswer {
            node: n.node.clone(),
            version: n.version.clone(),
            config_hash: n.config_hash.clone(),
            started_ms: n.started_ms,
            last_seen_ms: n.last_seen_ms,
            clock_offset_ms: n.clock_offset_ms,
            leader: view.leader.as_deref() == Some(n.node.as_str()),
            alive: crate::cluster::alive(&view, n.last_seen_ms, lease),
        })
        .collect();
    let mut warnings = Vec::new();
    let live: Vec<&NodeAnswer> = nodes.iter().filter(|n| n.alive).collect();
    let differ = |f: fn(&NodeAnswer) -> &str| live.windows(2).any(|w| f(w[0]) != f(w[1]));
    if differ(|n| &n.version) {
        warnings.push("the nodes run different versions".to_string());
    }
    if differ(|n| &n.config_hash) {
        warnings.push(
            "the nodes hand agents different checks (config_hash differs): deploy the same collector.toml to each"
                .to_string(),
        );
    }
    for n in live.iter().filter(|n| n.clock_offset_ms.abs() > CLOCK_WARN_MS) {
        warnings
            .push(format!("{}'s clock is {} ms off the database's: check time sync (NTP)", n.node, n.clock_offset_ms));
    }
    if view.leader.is_none() {
        warnings.push("no node holds the leadership: nothing is evaluated or delivered".to_string());
    }
    Json(ClusterAnswer {
        this_node: app.leadership.me.node.clone(),
        this_node_leads: app.leadership.is_leader(),
        leader: view.leader.clone(),
        epoch: view.epoch,
        lease_until_ms: view.lease_until_ms,
        now_ms: view.now_ms,
        nodes,
        warnings,
    })
    .into_response()
}
