//! The whole path with real binaries: an agent probes an HTTP server the test controls, the
//! collector opens an incident when it fails and resolves it when it recovers; the incident
//! history survives a SIGKILL of the collector.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Proc, Target};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_check_opens_an_incident_that_resolves_and_survives_a_collector_crash() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let token = "e2e-agent-token-0123456789";

    let collector_toml = dir.path().join("collector.toml");
    std::fs::write(
        &collector_toml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"

[agents.edge-1]
token_hash = "{hash}"

[checks.shop]
kind = "http"
target = "http://{target}/"
interval = "200ms"
timeout = "150ms"
fail_after = 3
recover_after = 2
agents = ["edge-1"]

[services.webshop]
checks = ["shop"]
"#,
            hash = token_hash(token),
            target = target.addr
        ),
    )
    .unwrap();
    let agent_toml = dir.path().join("agent.toml");
    std::fs::write(&agent_toml, format!("name = \"edge-1\"\ncollector = \"http://{addr}\"\ntoken_file = \"agent.token\"\nspool_dir = \"agent-data\"\npush_interval = \"100ms\"\nrefresh_interval = \"1s\"\n")).unwrap();
    std::fs::write(dir.path().join("agent.token"), format!("{token}\n")).unwrap();

    let mut collector = Collector::start(&collector_toml, addr, &dir.path().join("collector-1.log")).await;
    let mut agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_toml.to_str().unwrap()], &dir.path().join("agent.log"));

    // Healthy: up, no incident.
    collector.wait_up("shop").await;
    assert_eq!(collector.metric("vakt_incidents_open").await, Some(0.0));
    assert!(collector.get_json("/api/v1/incidents").await.as_array().unwrap().is_empty());
    assert!(collector.metric("vakt_ingest_samples_total").await.unwrap() >= 1.0);
    assert!(collector.metric("vakt_agent_last_seen_timestamp_seconds{agent=\"edge-1\"}").await.unwrap() > 1.7e9);
    assert!(collector.metric("vakt_check_latency_seconds_count{check=\"shop\"}").await.unwrap() >= 1.0);

    // Failing: an incident opens, but only after fail_after failed probes.
    let failures_before = target.failures();
    target.set_status(500);
    let incidents = wait_for("an open incident", WAIT, || async {
        let list = collector.get_json("/api/v1/incidents?status=open").await;
        (!list.as_array().unwrap().is_empty()).then_some(list)
    })
    .await;
    assert!(target.failures() - failures_before >= 3, "opened before 3 failures were probed");
    let incident = &incidents[0];
    assert_eq!(incidents.as_array().unwrap().len(), 1);
    assert_eq!(incident["check"], "shop");
    assert_eq!(incident["services"], serde_json::json!(["webshop"]));
    assert!(incident["title"].as_str().unwrap().ends_with("is down: HTTP 500"), "{incident}");
    assert_eq!(collector.metric("vakt_check_up{check=\"shop\"}").await, Some(0.0));
    assert_eq!(collector.metric("vakt_incidents_open").await, Some(1.0));
    let id = incident["id"].as_i64().unwrap();
    let full = collector.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert!(full["timeline"].to_string().contains("status 500"), "the full reason stays on the timeline: {full}");

    // It keeps failing: still one incident.
    let hits = target.hits();
    wait_for("more failed probes", WAIT, || async { (target.hits() >= hits + 3).then_some(()) }).await;
    assert_eq!(collector.get_json("/api/v1/incidents").await.as_array().unwrap().len(), 1);

    // Recovering: the same incident resolves.
    target.set_status(200);
    let resolved = wait_for("the incident to resolve", WAIT, || async {
        let i = collector.get_json(&format!("/api/v1/incidents/{id}")).await;
        (i["status"] == "resolved").then_some(i)
    })
    .await;
    // The metrics follow the commit (they are set after it): wait for them, do not race them.
    wait_for("the metrics to show the recovery", WAIT, || async {
        let open = collector.metric("vakt_incidents_open").await;
        let up = collector.metric("vakt_check_up{check=\"shop\"}").await;
        (open == Some(0.0) && up == Some(1.0)).then_some(())
    })
    .await;
    let kinds: Vec<&str> =
        resolved["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["opened", "resolved"]);

    // Crash the collector and start it again on the same data: the history is intact and the
    // metrics come back from the store, before any new sample arrives.
    collector.proc.kill();
    let collector = Collector::start(&collector_toml, addr, &dir.path().join("collector-2.log")).await;
    let after = collector.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(after["status"], "resolved");
    assert_eq!(after["opened_at"], resolved["opened_at"]);
    assert_eq!(after["resolved_at"], resolved["resolved_at"]);
    assert_eq!(after["timeline"], resolved["timeline"]);
    assert_eq!(collector.metric("vakt_incidents_open").await, Some(0.0));
    assert_eq!(collector.metric("vakt_check_up{check=\"shop\"}").await, Some(1.0));

    // The agent carries on pushing to the restarted collector.
    wait_for("samples after restart", WAIT, || async {
        (collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;

    // SIGTERM: the agent drains and exits 0.
    agent.signal("TERM");
    let status = agent.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "agent exit: {status:?}\n{}", agent.log_text());
    assert!(agent.log_text().contains("agent stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_runs_its_cached_checks_when_the_collector_is_down_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let token = "cache-agent-token-0123456789";
    let collector_toml = dir.path().join("collector.toml");
    std::fs::write(
        &collector_toml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\n[agents.a1]\ntoken_hash = \"{}\"\n[checks.target]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"200ms\"\nagents = [\"a1\"]\n",
            token_hash(token),
            target.addr
        ),
    )
    .unwrap();
    let agent_toml = dir.path().join("agent.toml");
    std::fs::write(&agent_toml, format!("name = \"a1\"\ncollector = \"http://{addr}\"\ntoken = \"{token}\"\nspool_dir = \"agent-data\"\npush_interval = \"100ms\"\n")).unwrap();

    // First run: the agent learns its checks and caches them.
    let mut collector = Collector::start(&collector_toml, addr, &dir.path().join("c1.log")).await;
    let mut agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_toml.to_str().unwrap()], &dir.path().join("a1.log"));
    collector.wait_up("target").await;
    agent.signal("TERM");
    assert!(agent.wait_exit(Duration::from_secs(15)).success());
    collector.proc.kill();

    // Second run: the collector is down. The agent still probes from its cache; when the
    // collector returns, the samples taken during the outage arrive.
    let outage_start = now_ms();
    let mut agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_toml.to_str().unwrap()], &dir.path().join("a2.log"));
    wait_for("cached checks running", WAIT, || async {
        agent.log_text().contains("running cached assignments").then_some(())
    })
    .await;
    let hits = target.hits();
    wait_for("probes during the outage", WAIT, || async { (target.hits() >= hits + 2).then_some(()) }).await;
    assert!(agent.log_text().contains("push failed"));
    let outage_end = now_ms();
    let collector = Collector::start(&collector_toml, addr, &dir.path().join("c2.log")).await;
    let path = format!("/api/v1/samples?check=target&from={outage_start}&to={outage_end}");
    let samples = wait_for("samples probed during the outage", WAIT, || async {
        let list = collector.get_json(&path).await;
        (list.as_array().unwrap().len() >= 2).then_some(list)
    })
    .await;
    assert!(samples.as_array().unwrap().iter().all(|s| s["agent"] == "a1" && s["success"] == true), "{samples}");
    agent.signal("TERM");
    assert!(agent.wait_exit(Duration::from_secs(15)).success());
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
