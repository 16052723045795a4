//! The collector on PostgreSQL with the real binaries: a real PostgreSQL (Debian's, started by
//! the test), an agent probing an HTTP server the test controls. A failing check opens one
//! incident, recorded in PostgreSQL; a collector killed with SIGKILL and started again finds
//! it there and resolves it when the check recovers; every acknowledged sample is in the
//! database, and the notification went out once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Hook, Postgres, Proc, Target};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_on_postgres_keeps_its_incidents_and_samples_across_a_crash() {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hook = Hook::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let token = "pg-agent-token-0123456789abcdef";
    std::fs::write(dir.path().join("db-url"), format!("{}\n", pg.url())).unwrap();
    let collector_toml = dir.path().join("collector.toml");
    std::fs::write(
        &collector_toml,
        format!(
            r#"listen = "{addr}"
data_dir = "unused"
group_wait = "0s"

[store]
kind = "postgres"
url = {{ file = "db-url" }}
pool_size = 4

[agents.edge]
token_hash = "{hash}"

[checks.shop]
kind = "http"
target = "http://{target}/"
interval = "200ms"
timeout = "150ms"
agents = ["edge"]

[services.webshop]
checks = ["shop"]

[receivers.hook]
kind = "webhook"
url = {{ value = "http://{hook}/" }}

[[routes]]
receivers = ["hook"]
"#,
            hash = token_hash(token),
            target = target.addr,
            hook = hook.addr,
        ),
    )
    .unwrap();
    let agent_toml = vakt_tests::agent_toml(dir.path(), "edge", addr, token, "refresh_interval = \"1s\"\n");

    let mut collector = Collector::start(&collector_toml, addr, &dir.path().join("collector-1.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_toml.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("shop").await;
    assert!(!dir.path().join("unused").join("vakt.db").exists(), "nothing went to SQLite");

    target.set_status(500);
    let open = wait_for("an open incident", WAIT, || async {
        let list = collector.get_json("/api/v1/incidents?status=open").await;
        (!list.as_array().unwrap().is_empty()).then_some(list)
    })
    .await;
    let id = open[0]["id"].as_i64().unwrap();
    wait_for("the page", WAIT, || async { (!hook.received().is_empty()).then_some(()) }).await;

    // SIGKILL: whatever was acknowledged is in PostgreSQL.
    let acknowledged = collector.metric("vakt_ingest_samples_total").await.unwrap();
    collector.proc.kill();
    let in_db = {
        let url = pg.url();
        tokio::task::spawn_blocking(move || {
            let mut c = postgres_client(&url);
            let samples: i64 = c.query_one("SELECT count(*) FROM samples", &[]).unwrap().get(0);
            let incidents: Vec<(i64, String)> = c
                .query("SELECT id, status FROM incidents", &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            (samples, incidents)
        })
        .await
        .unwrap()
    };
    // At least one up result and three failures (fail_after = 3), and all acknowledged ones.
    assert!(
        in_db.0 >= 4 && in_db.0 as f64 >= acknowledged,
        "{} samples in PostgreSQL, {acknowledged} acknowledged",
        in_db.0
    );
    assert_eq!(in_db.1, vec![(id, "open".to_string())]);

    let collector = Collector::start(&collector_toml, addr, &dir.path().join("collector-2.log")).await;
    assert_eq!(collector.get_json(&format!("/api/v1/incidents/{id}")).await["status"], "open");
    target.set_status(200);
    wait_for("the incident to resolve", WAIT, || async {
        (collector.get_json(&format!("/api/v1/incidents/{id}")).await["status"] == "resolved").then_some(())
    })
    .await;
    let all = collector.get_json("/api/v1/incidents").await;
    assert_eq!(all.as_array().unwrap().len(), 1, "one outage, one incident: {all}");
    // Paged once for the outage, across the crash (the webhook body's `event`).
    let received = hook.received();
    wait_for("the resolution to be told", WAIT, || async {
        hook.received().iter().any(|b| b["event"] == "resolved").then_some(())
    })
    .await;
    let events: Vec<String> = hook.received().iter().map(|b| b["event"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(events.iter().filter(|e| *e == "firing").count(), 1, "paged once: {events:?} (before: {received:?})");
}

/// A plain client for the test's own look into the database.
fn postgres_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}
