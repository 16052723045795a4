//! Three collectors on one PostgreSQL with the real binaries, one agent listing all three, an
//! outage in progress while the leader is killed with SIGKILL ten times and frozen (SIGSTOP)
//! once. What must hold: a new leader within 3 s of each kill and of the freeze (the lease is
//! 2 s, renewed every 0.5 s); one incident for the outage; every notification delivered, at
//! most once more per failover and always under the same notification id; the resumed old
//! leader delivers and commits nothing; every sample the agent saw acknowledged is in the
//! database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vakt_tests::{token_hash, wait_for, Collector, Hook, Postgres, Proc, Target};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "ha-agent-token-0123456789abcdef";
/// The bound for both: a new leader within 3 s. A killed leader's session lock goes with its
/// process, so another takes over at its next campaign (0.5 s); a frozen one's lease (2 s)
/// must run out first.
const FAILOVER_BOUND: Duration = Duration::from_secs(3);

struct Node {
    name: String,
    config: PathBuf,
    addr: SocketAddr,
    collector: Collector,
    starts: u32,
}

fn node_config(
    dir: &Path,
    name: &str,
    addr: SocketAddr,
    db_url: &Path,
    target: SocketAddr,
    hook: SocketAddr,
) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"listen = "{addr}"
data_dir = "unused-{name}"
group_wait = "0s"

[store]
kind = "postgres"
url = {{ file = "{db_url}" }}
pool_size = 4
node = "{name}"

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
            db_url = db_url.display(),
            hash = token_hash(TOKEN),
        ),
    )
    .unwrap();
    path
}

async fn start(dir: &Path, name: &str, config: &Path, addr: SocketAddr, n: u32) -> Collector {
    Collector::start(config, addr, &dir.join(format!("{name}-{n}.log"))).await
}

/// The leader as any live node's cluster API tells it.
async fn leader(nodes: &[Node], skip: Option<&str>) -> Option<(String, i64)> {
    for n in nodes.iter().filter(|n| Some(n.name.as_str()) != skip) {
        let Ok(resp) = reqwest::Client::new()
            .get(n.collector.url("/api/v1/cluster"))
            .bearer_auth(vakt_tests::READ_TOKEN)
            .timeout(Duration::from_millis(500))
            .send()
            .await
        else {
            continue;
        };
        let Ok(view) = resp.json::<serde_json::Value>().await else { continue };
        if let (Some(l), Some(e)) = (view["leader"].as_str(), view["epoch"].as_i64()) {
            return Some((l.to_string(), e));
        }
    }
    None
}

/// Waits for a leader other than `old` (seen from the other nodes); returns it and how long.
async fn new_leader(nodes: &[Node], old: &str, since: Instant) -> (String, i64, Duration) {
    loop {
        if let Some((l, e)) = leader(nodes, Some(old)).await {
            if l != old {
                return (l, e, since.elapsed());
            }
        }
        assert!(since.elapsed() < Duration::from_secs(15), "no new leader 15 s after {old} went away");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_collectors_survive_ten_leader_kills_and_a_freeze() {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hook = Hook::start().await;
    let db_url = dir.path().join("db-url");
    std::fs::write(&db_url, format!("{}\n", pg.url())).unwrap();

    let mut nodes = Vec::new();
    for name in ["c1", "c2", "c3"] {
        let addr = vakt_tests::loopback_addr();
        let config = node_config(dir.path(), name, addr, &db_url, target.addr, hook.addr);
        let collector = start(dir.path(), name, &config, addr, 0).await;
        nodes.push(Node { name: name.into(), config, addr, collector, starts: 0 });
    }
    let agent_metrics = vakt_tests::loopback_addr();
    let agent_toml = dir.path().join("agent.toml");
    let urls: Vec<String> = nodes.iter().map(|n| format!("\"http://{}\"", n.addr)).collect();
    std::fs::write(
        &agent_toml,
        format!(
            "name = \"edge\"\ncollectors = [{}]\ntoken = \"{TOKEN}\"\nspool_dir = \"agent\"\npush_interval = \"100ms\"\nrefresh_interval = \"1s\"\nmetrics_listen = \"{agent_metrics}\"\n",
            urls.join(", ")
        ),
    )
    .unwrap();
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_toml.to_str().unwrap()], &dir.path().join("agent.log"));

    // One leader; every node lists the three, with the same configuration hash.
    let (first, epoch0) = wait_for("a leader", WAIT, || async { leader(&nodes, None).await }).await;
    let view = nodes[2].collector.get_json("/api/v1/cluster").await;
    assert_eq!(view["nodes"].as_array().unwrap().len(), 3, "{view}");
    assert!(view["warnings"].as_array().unwrap().is_empty(), "same version, same checks, one clock: {view}");
    let hashes: Vec<&str> =
        view["nodes"].as_array().unwrap().iter().map(|n| n["config_hash"].as_str().unwrap()).collect();
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
    let leaders = nodes.iter().map(|n| async { n.collector.metric("vakt_cluster_is_leader").await.unwrap() });
    let mut sum = 0.0;
    for l in leaders {
        sum += l.await;
    }
    assert_eq!(sum, 1.0, "exactly one node says it leads");
    nodes[0].collector.wait_up("shop").await;

    // The outage begins; it is paged once.
    target.set_status(500);
    let open = wait_for("an open incident", WAIT, || async {
        let list = nodes[1].collector.get_json("/api/v1/incidents?status=open").await;
        (!list.as_array().unwrap().is_empty()).then_some(list)
    })
    .await;
    let id = open[0]["id"].as_i64().unwrap();
    wait_for("the page", WAIT, || async { (!hook.received().is_empty()).then_some(()) }).await;

    // Ten kills of whoever leads; each killed node comes back (as a new process).
    let mut current = first;
    let mut epoch = epoch0;
    let mut times = Vec::new();
    for _ in 0..10 {
        let i = nodes.iter().position(|n| n.name == current).unwrap();
        nodes[i].collector.proc.kill();
        let killed_at = Instant::now();
        let (next, next_epoch, took) = new_leader(&nodes, &current, killed_at).await;
        assert!(next_epoch > epoch, "every new leader has a new term: {next_epoch} after {epoch}");
        times.push(took);
        let n = &mut nodes[i];
        n.starts += 1;
        n.collector = start(dir.path(), &n.name, &n.config, n.addr, n.starts).await;
        (current, epoch) = (next, next_epoch);
    }
    let max = times.iter().max().unwrap();
    assert!(*max < FAILOVER_BOUND, "failover times over ten kills: {times:?}");

    // Frozen: the others take over within the lease; the frozen one, resumed, does nothing.
    let i = nodes.iter().position(|n| n.name == current).unwrap();
    let frozen_name = current.clone();
    let delivered_before = nodes[i]
        .collector
        .metric("vakt_notifications_total{outcome=\"delivered\",receiver=\"hook\"}")
        .await
        .unwrap_or(0.0);
    nodes[i].collector.proc.signal("STOP");
    let (next, next_epoch, took) = new_leader(&nodes, &frozen_name, Instant::now()).await;
    assert!(took < FAILOVER_BOUND, "a frozen leader replaced after {took:?}");
    let freeze_took = took;
    assert!(next_epoch > epoch);
    // The outage ends while it is frozen: the new leader resolves and tells.
    target.set_status(200);
    let alive = nodes.iter().find(|n| n.name == next).unwrap();
    wait_for("the incident to resolve", WAIT, || async {
        (alive.collector.get_json(&format!("/api/v1/incidents/{id}")).await["status"] == "resolved").then_some(())
    })
    .await;
    wait_for("the resolution to be told", WAIT, || async {
        hook.received().iter().any(|b| b["event"] == "resolved").then_some(())
    })
    .await;
    nodes[i].collector.proc.signal("CONT");
    let resumed = &nodes[i].collector;
    wait_for("the resumed node to know it no longer leads", WAIT, || async {
        (resumed.metric("vakt_cluster_is_leader").await == Some(0.0)).then_some(())
    })
    .await;
    // A few more rounds of its evaluator and outbox worker: still nothing from it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered_after =
        resumed.metric("vakt_notifications_total{outcome=\"delivered\",receiver=\"hook\"}").await.unwrap_or(0.0);
    assert_eq!(delivered_after, delivered_before, "the resumed old leader delivered nothing");
    let log = nodes[i].collector.proc.log_text();
    assert!(log.contains("this collector no longer leads"), "{log}");

    // One outage, one incident; its firing and its resolution each told under one id, at most
    // once more per failover (11).
    let all = alive.collector.get_json("/api/v1/incidents").await;
    assert_eq!(all.as_array().unwrap().len(), 1, "one outage, one incident: {all}");
    let received = hook.received();
    for event in ["firing", "resolved"] {
        let got: Vec<&serde_json::Value> = received.iter().filter(|b| b["event"] == event).collect();
        assert!(!got.is_empty() && got.len() <= 1 + 11, "{event}: {} deliveries", got.len());
        let ids: std::collections::BTreeSet<&str> =
            got.iter().map(|b| b["notification_id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 1, "{event}: every delivery under the same id: {ids:?}");
        assert!(got.iter().all(|b| b["incident"]["id"] == id));
    }
    let timeline = alive.collector.get_json(&format!("/api/v1/incidents/{id}")).await["timeline"].clone();
    let resolutions = timeline.as_array().unwrap().iter().filter(|e| e["kind"] == "resolved").count();
    assert_eq!(resolutions, 1, "resolved once: {timeline}");

    // Every sample the agent saw acknowledged is in PostgreSQL.
    let acknowledged = vakt_tests::metric(
        &reqwest::get(format!("http://{agent_metrics}/metrics")).await.unwrap().text().await.unwrap(),
        "vakt_agent_samples_sent_total",
    )
    .unwrap();
    let url = pg.url();
    let stored: i64 = tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query_one("SELECT count(*) FROM samples", &[]).unwrap().get(0)
    })
    .await
    .unwrap();
    assert!(stored as f64 >= acknowledged, "{stored} samples stored, {acknowledged} acknowledged");
    let mut ms: Vec<u128> = times.iter().map(|t| t.as_millis()).collect();
    ms.sort_unstable();
    println!("failover after SIGSTOP: {} ms (lease 2 s)", freeze_took.as_millis());
    println!(
        "failover after SIGKILL over {} kills: p50 {} ms, max {} ms (lease 2 s)",
        ms.len(),
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    );
}
