//! `[[remote_write]]` into a real Prometheus (Debian's, `--web.enable-remote-write-receiver`,
//! on loopback with its own data directory): the probe results arrive as series that
//! Prometheus answers queries with, sample for sample as the collector stored them, including
//! those made while Prometheus was down for a while.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use vakt_tests::{free_port, token_hash, wait_for, Collector, Proc, Target};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const TOKEN: &str = "rw-agent-token-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(40);

fn start_prometheus(dir: &Path, port: u16, n: u32) -> Proc {
    let yml = dir.join("prometheus.yml");
    std::fs::write(&yml, "global:\n  scrape_interval: 1h\n").unwrap();
    Proc::spawn_exe(
        Path::new(PROMETHEUS),
        &[
            &format!("--config.file={}", yml.display()),
            &format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-remote-write-receiver",
        ],
        &dir.join(format!("prometheus-{n}.log")),
    )
}

/// (timestamp ms, value) of every raw sample Prometheus holds for `selector` in the last hour.
async fn prometheus_samples(port: u16, selector: &str) -> Option<BTreeSet<(i64, String)>> {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let resp = reqwest::Client::new().get(&url).query(&[("query", format!("{selector}[1h]"))]).send().await.ok()?;
    let body: serde_json::Value = resp.json().await.ok()?;
    let result = body["data"]["result"].as_array()?;
    let mut out = BTreeSet::new();
    for series in result {
        for v in series["values"].as_array()? {
            let t = (v[0].as_f64()? * 1000.0).round() as i64;
            out.insert((t, v[1].as_str()?.to_string()));
        }
    }
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_results_reach_prometheus_and_survive_its_outage() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{PROMETHEUS} is missing: .ci/run must install it");
        eprintln!("skipping: {PROMETHEUS} is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let prom_port = free_port();
    let mut prometheus = start_prometheus(dir.path(), prom_port, 0);
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"

[agents.edge]
token_hash = "{hash}"

[checks.shop]
kind = "http"
target = "http://{target}/"
interval = "200ms"
agents = ["edge"]

[[remote_write]]
name = "prom"
url = {{ value = "http://127.0.0.1:{prom_port}/api/v1/write" }}
max_samples_per_send = 50
timeout = "2s"
"#,
            hash = token_hash(TOKEN),
            target = target.addr,
        ),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, "");
    let mut agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));

    // Results arrive: success and duration series, per check and agent.
    wait_for("vakt_probe_success in Prometheus", WAIT, || async {
        prometheus_samples(prom_port, "vakt_probe_success{check=\"shop\",agent=\"edge\"}")
            .await
            .filter(|s| s.len() >= 5)
    })
    .await;
    assert!(prometheus_samples(prom_port, "vakt_probe_duration_seconds{check=\"shop\"}")
        .await
        .is_some_and(|s| !s.is_empty()));
    assert!(prometheus_samples(prom_port, "vakt_probe_status_code{check=\"shop\"}")
        .await
        .is_some_and(|s| !s.is_empty()));

    // Prometheus goes away; the agent keeps probing (failures too) and the queue grows.
    prometheus.kill();
    target.set_status(503);
    wait_for("failed sends", WAIT, || async {
        (collector.metric("vakt_remote_write_failures_total{target=\"prom\"}").await? >= 2.0).then_some(())
    })
    .await;
    wait_for("a backlog", WAIT, || async {
        (collector.metric("vakt_remote_write_pending_samples{target=\"prom\"}").await? > 0.0).then_some(())
    })
    .await;
    let _prometheus = start_prometheus(dir.path(), prom_port, 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    agent.signal("TERM");
    agent.wait_exit(Duration::from_secs(20));

    // Everything the collector stored is in Prometheus, value for value.
    wait_for("the queue to drain", WAIT, || async {
        (collector.metric("vakt_remote_write_pending_samples{target=\"prom\"}").await == Some(0.0)).then_some(())
    })
    .await;
    let stored = collector.get_json("/api/v1/samples?check=shop&limit=100000").await;
    let expected: BTreeSet<(i64, String)> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (s["timestamp_ms"].as_i64().unwrap(), if s["success"].as_bool().unwrap() { "1" } else { "0" }.to_string())
        })
        .collect();
    assert!(expected.iter().any(|(_, v)| v == "0"), "failures made while Prometheus was down are among them");
    let got = wait_for("every sample in Prometheus", WAIT, || async {
        prometheus_samples(prom_port, "vakt_probe_success{check=\"shop\",agent=\"edge\"}")
            .await
            .filter(|got| got.len() >= expected.len())
    })
    .await;
    assert_eq!(got, expected, "Prometheus holds exactly the stored samples");
    let sent = collector.metric("vakt_remote_write_samples_total{outcome=\"sent\",target=\"prom\"}").await.unwrap();
    assert!(sent >= expected.len() as f64, "{sent} sent");
    assert_eq!(
        collector.metric("vakt_remote_write_samples_total{outcome=\"dropped\",target=\"prom\"}").await,
        Some(0.0)
    );
}
