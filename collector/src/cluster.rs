//! Several collectors on one database: each node campaigns for the leadership every quarter
//! of the lease (the store elects one, see `Store::campaign`), and publishes what the cluster
//! looks like. Only the leader runs the time-driven work; every node takes ingest, serves the
//! API and the pages, and (on a shared store) refreshes the state metrics it exports from the
//! store, so that scraping any node gives the same answers.

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::store::ClusterView;

/// A node heard from within this long counts as alive (at least; five leases when longer).
const ALIVE_MS: i64 = 10_000;

/// Whether a node's last heartbeat is recent enough to count it.
pub fn alive(view: &ClusterView, last_seen_ms: i64, lease: Duration) -> bool {
    let within = ALIVE_MS.max(5 * i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 5));
    view.now_ms - last_seen_ms <= within
}

/// Campaigns until shutdown.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let every = (app.leadership.lease() / 4).max(Duration::from_millis(100));
    let shared = app.config.store.get_ref().kind == vakt_config::collector::StoreKind::Postgres;
    let mut failing = false;
    let mut round = 0u64;
    loop {
        let tick_app = app.clone();
        let publish = round.is_multiple_of(8);
        round += 1;
        let work = move || -> Result<(), crate::store::StoreError> {
            tick_app.leadership.campaign(tick_app.store.as_ref(), &tick_app.metrics)?;
            if publish {
                publish_cluster(&tick_app, shared)?;
            }
            Ok(())
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(Ok(())) => {
                if failing {
                    tracing::info!("leader election reaches the store again");
                }
                failing = false;
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::error!(error = %e, "leader election failed; this node stops leading when its lease ends, retrying");
                }
                failing = true;
                // What the metric says follows the lease, not the last answer.
                app.metrics.set_leadership(app.leadership.is_leader(), None, 0, false);
            }
            Err(e) => tracing::error!(error = %e, "leader election task failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Publishes the nodes and, on a shared store, the check states and open incidents as the
/// store holds them (another node may have ingested the batch that changed them).
fn publish_cluster(app: &App, shared: bool) -> Result<(), crate::store::StoreError> {
    let view = app.store.cluster()?;
    let lease = app.leadership.lease();
    let nodes: Vec<(String, String, String, bool)> = view
        .nodes
        .iter()
        .filter(|n| alive(&view, n.last_seen_ms, lease))
        .map(|n| (n.node.clone(), n.version.clone(), n.config_hash.clone(), view.leader.as_deref() == Some(&n.node)))
        .collect();
    app.metrics.set_cluster_nodes(&nodes);
    if shared {
        for (check, state) in app.store.check_states()?.into_iter().filter(|(c, _)| !c.contains('@')) {
            app.metrics.set_check_state(&check, &state);
        }
        app.metrics.set_incidents_open_from(app.store.as_ref());
    }
    Ok(())
}
