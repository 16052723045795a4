//! The agent as an operator lives with it: reload on SIGHUP, new assignments without a
//! restart, and an "agent silent" incident when it stops reporting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Proc, Target};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "lifecycle-token-0123456789";

fn collector_toml(path: &Path, addr: SocketAddr, target: SocketAddr, extra_check: bool) {
    let mut text = format!(
        "listen = \"{addr}\"\ndata_dir = \"data\"\nagent_silent_after = \"1500ms\"\n\
         [agents.life]\ntoken_hash = \"{}\"\nlabels = {{ role = \"edge\" }}\n\
         [checks.assigned]\nkind = \"http\"\ntarget = \"http://{target}/a\"\ninterval = \"200ms\"\nagents = [\"life\"]\n",
        token_hash(TOKEN)
    );
    if extra_check {
        text.push_str(&format!(
            "[checks.added-later]\nkind = \"tcp\"\ntarget = \"{target}\"\ninterval = \"200ms\"\nselector = \"role=edge\"\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn agent_toml(path: &Path, addr: SocketAddr, target: SocketAddr, local_check: bool) {
    let mut text = format!(
        "name = \"life\"\ncollector = \"http://{addr}\"\ntoken = \"{TOKEN}\"\nspool_dir = \"agent\"\n\
         push_interval = \"100ms\"\nrefresh_interval = \"500ms\"\nheartbeat_interval = \"300ms\"\n"
    );
    if local_check {
        text.push_str(&format!("[checks.local-one]\nkind = \"tcp\"\ntarget = \"{target}\"\ninterval = \"200ms\"\n"));
    }
    std::fs::write(path, text).unwrap();
}

async fn has_samples(c: &Collector, check: &str) -> bool {
    c.get_json(&format!("/api/v1/samples?check={check}&limit=1")).await.as_array().is_some_and(|a| !a.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_new_assignments_change_checks_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let (ctoml, atoml) = (dir.path().join("collector.toml"), dir.path().join("agent.toml"));
    collector_toml(&ctoml, addr, target.addr, false);
    agent_toml(&atoml, addr, target.addr, false);
    let mut collector = Collector::start(&ctoml, addr, &dir.path().join("c1.log")).await;
    let mut agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    wait_for("assigned check samples", WAIT, || async { has_samples(&collector, "assigned").await.then_some(()) })
        .await;

    // A local check added to agent.toml and SIGHUP: it runs, same process.
    agent_toml(&atoml, addr, target.addr, true);
    agent.signal("HUP");
    wait_for("the reloaded local check", WAIT, || async { has_samples(&collector, "local-one").await.then_some(()) })
        .await;

    // A broken agent.toml and SIGHUP: refused with the reason, the running checks go on.
    std::fs::write(&atoml, "name = \"life\"\ncolector = 1\n").unwrap();
    agent.signal("HUP");
    wait_for("the reload refusal", WAIT, || async { agent.log_text().contains("reload refused").then_some(()) }).await;
    assert!(agent.log_text().contains("unknown field `colector`"), "{}", agent.log_text());

    // The collector assigns one more check (by selector): the agent picks it up.
    collector.proc.signal("TERM");
    collector.proc.wait_exit(Duration::from_secs(15));
    collector_toml(&ctoml, addr, target.addr, true);
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c2.log")).await;
    wait_for("the newly assigned check", WAIT, || async { has_samples(&collector, "added-later").await.then_some(()) })
        .await;
    assert!(agent.child.try_wait().unwrap().is_none(), "the same agent process did all of this");
    assert!(agent.log_text().contains("assignments updated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_opens_an_incident_that_resolves_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let (ctoml, atoml) = (dir.path().join("collector.toml"), dir.path().join("agent.toml"));
    collector_toml(&ctoml, addr, target.addr, false);
    agent_toml(&atoml, addr, target.addr, false);
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let mut agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("a1.log"));
    wait_for("the agent reporting", WAIT, || async { has_samples(&collector, "assigned").await.then_some(()) }).await;
    assert!(collector.get_json("/api/v1/incidents?agent=life").await.as_array().unwrap().is_empty());

    agent.kill();
    let incident = wait_for("an agent-silent incident", WAIT, || async {
        let list = collector.get_json("/api/v1/incidents?agent=life&status=open").await;
        list.as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(incident["kind"], "agent_silent");
    assert_eq!(incident["title"], "agent life is silent");
    assert_eq!(collector.metric("vakt_incidents_open").await, Some(1.0));

    let _agent = Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("a2.log"));
    let id = incident["id"].as_i64().unwrap();
    let resolved = wait_for("the incident to resolve", WAIT, || async {
        let i = collector.get_json(&format!("/api/v1/incidents/{id}")).await;
        (i["status"] == "resolved").then_some(i)
    })
    .await;
    assert!(resolved["timeline"][1]["message"].as_str().unwrap().starts_with("agent life reports again after"));
    assert_eq!(collector.metric("vakt_incidents_open").await, Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_agent_stays_present_through_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    // No checks at all: only heartbeats keep the agent from being silent.
    std::fs::write(
        &ctoml,
        format!("listen = \"{addr}\"\ndata_dir = \"data\"\nagent_silent_after = \"1500ms\"\n[agents.life]\ntoken_hash = \"{}\"\n", token_hash(TOKEN)),
    )
    .unwrap();
    let atoml = dir.path().join("agent.toml");
    agent_toml(&atoml, addr, addr, false);
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let _agent = Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("a.log"));
    let first = wait_for("a heartbeat", WAIT, || async {
        let agents = collector.get_json("/api/v1/agents").await;
        agents[0]["batches"].as_u64().filter(|b| *b >= 1)
    })
    .await;
    // Several silence periods pass with heartbeats only.
    wait_for("more heartbeats", WAIT, || async {
        let agents = collector.get_json("/api/v1/agents").await;
        agents[0]["batches"].as_u64().filter(|b| *b >= first + 10).map(|_| ())
    })
    .await;
    assert!(collector.get_json("/api/v1/incidents?agent=life").await.as_array().unwrap().is_empty());
    assert_eq!(collector.get_json("/api/v1/agents").await[0]["samples"], 0);
}
