//! The `alertmanager` receiver against a real Alertmanager (Debian's prometheus-alertmanager,
//! on loopback with its own storage and clustering off): an incident becomes an alert in its
//! API and in `amtool`, with the labels routing needs and a link to the incident's page, and is
//! resolved there when the incident resolves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Proc, Target};

const WAIT: Duration = Duration::from_secs(40);
const AM: &str = "/usr/bin/prometheus-alertmanager";

fn require_alertmanager() {
    assert!(
        std::path::Path::new(AM).exists(),
        "{AM} is missing: apt-get install prometheus-alertmanager (.ci/run installs it)"
    );
}

async fn alerts(am: SocketAddr) -> Vec<serde_json::Value> {
    let body: serde_json::Value =
        reqwest::get(format!("http://{am}/api/v2/alerts")).await.unwrap().json().await.unwrap();
    body.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_become_alertmanager_alerts_and_resolve_there() {
    require_alertmanager();
    let dir = tempfile::tempdir().unwrap();
    let am_addr = vakt_tests::loopback_addr();
    std::fs::write(dir.path().join("am.yml"), "route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n").unwrap();
    let am_storage = dir.path().join("am-data");
    let _am = Proc::spawn_exe(
        std::path::Path::new(AM),
        &[
            &format!("--config.file={}", dir.path().join("am.yml").display()),
            &format!("--storage.path={}", am_storage.display()),
            &format!("--web.listen-address={am_addr}"),
            "--cluster.listen-address=",
        ],
        &dir.path().join("alertmanager.log"),
    );
    wait_for("Alertmanager ready", WAIT, || async {
        let r = reqwest::get(format!("http://{am_addr}/-/ready")).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let token = "am-agent-token-0123456789abcdef";
    let collector_toml = dir.path().join("collector.toml");
    std::fs::write(
        &collector_toml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
public_url = "http://vakt.example.test"
group_wait = "0s"

[agents.edge]
token_hash = "{hash}"

[checks.shop]
kind = "http"
target = "http://{target}/"
interval = "200ms"
timeout = "150ms"
agents = ["edge"]
labels = {{ tier = "frontend" }}

[services.webshop]
checks = ["shop"]

[receivers.am]
kind = "alertmanager"
url = {{ value = "http://{am_addr}" }}

[[routes]]
receivers = ["am"]
"#,
            hash = token_hash(token),
            target = target.addr,
        ),
    )
    .unwrap();
    let agent_toml = vakt_tests::agent_toml(dir.path(), "edge", addr, token, "refresh_interval = \"1s\"\n");
    let collector = Collector::start(&collector_toml, addr, &dir.path().join("collector.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_toml.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("shop").await;

    target.set_status(503);
    let alert = wait_for("the alert in Alertmanager", WAIT, || async {
        alerts(am_addr).await.into_iter().find(|a| a["labels"]["check"] == "shop")
    })
    .await;
    let id = collector.get_json("/api/v1/incidents?status=open").await[0]["id"].as_i64().unwrap();
    let labels = &alert["labels"];
    assert_eq!(labels["alertname"], "vakt_check_down", "{alert}");
    assert_eq!((labels["service"].as_str(), labels["services"].as_str()), (Some("webshop"), Some("webshop")));
    assert_eq!((labels["severity"].as_str(), labels["tier"].as_str()), (Some("critical"), Some("frontend")));
    assert!(labels["priority"].as_str().unwrap().starts_with('P'), "{alert}");
    assert!(labels.as_object().unwrap().values().all(|v| v.as_str().is_some_and(|s| !s.is_empty())), "{alert}");
    let page = format!("http://vakt.example.test/incidents/{id}");
    assert_eq!(
        (alert["annotations"]["incident"].as_str(), alert["generatorURL"].as_str()),
        (Some(page.as_str()), Some(page.as_str()))
    );
    assert!(alert["annotations"]["summary"].as_str().unwrap().contains("503"), "{alert}");
    assert_eq!(alert["status"]["state"], "active", "{alert}");

    // amtool, the operator's own view, lists it too.
    let out = std::process::Command::new("amtool")
        .args(["alert", "query", "--alertmanager.url", &format!("http://{am_addr}"), "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed.as_array().unwrap().iter().any(|a| a["labels"]["check"] == "shop"), "{listed}");

    // Recovery resolves the incident; the alert ends in Alertmanager.
    target.set_status(200);
    wait_for("the alert to resolve in Alertmanager", WAIT, || async {
        let still = alerts(am_addr)
            .await
            .into_iter()
            .any(|a| a["labels"]["check"] == "shop" && a["status"]["state"] == "active");
        (!still).then_some(())
    })
    .await;
    let sent = collector.get_json(&format!("/api/v1/notifications?incident={id}")).await;
    let statuses: Vec<(String, String)> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["event"].as_str().unwrap().to_string(), n["status"].as_str().unwrap().to_string()))
        .collect();
    assert!(statuses.contains(&("firing".into(), "delivered".into())), "{statuses:?}");
    assert!(statuses.contains(&("resolved".into(), "delivered".into())), "{statuses:?}");
}
