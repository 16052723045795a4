//! Heartbeat checks with the real collector and the real `curl`, as a crontab line would ping:
//! pings keep the check up, a silence past interval plus grace opens one incident (and
//! notifies), a job's failure with its output is down at once, the next success resolves it.
//! Unknown keys and bad signals are refused without saying more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use vakt_tests::{wait_for, Collector, Hook};

const KEY: &str = "7c1d0b9e-3f4a-4e8b-9a61-2d5c8e0f7b13";
const WAIT: Duration = Duration::from_secs(30);

/// `curl -fsS` as a crontab would run it: (exit status, body).
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl").args(["-sS", "-m", "10"]).args(args).output().expect("curl runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_pinging_with_curl_is_watched_missed_failed_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
group_wait = "100ms"

[checks.nightly-backup]
kind = "heartbeat"
ping_key = {{ value = "{KEY}" }}
interval = "2s"
grace = "1s"

[receivers.hook]
kind = "webhook"
url = {{ value = "http://{hook}/hook" }}

[[routes]]
receivers = ["hook"]
"#,
            hook = hook.addr
        ),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let url = |path: &str| format!("http://{addr}/ping/{path}");

    // Refused: an unknown key (404, nothing said of any check), a signal that is none (400).
    let (code, body) = curl(&["-w", "%{http_code}", &url("0000000000000000-not-a-key")]);
    assert_eq!(code, 0);
    assert!(body.ends_with("404") && !body.contains("nightly"), "{body}");
    let (code, body) = curl(&["-w", "%{http_code}", &url(&format!("{KEY}/maybe"))]);
    assert_eq!(code, 0);
    assert!(body.ends_with("400") && body.contains("/ping/KEY/fail"), "{body}");

    // A run: start, then success. Up, with its duration recorded.
    assert_eq!(curl(&["-f", &url(&format!("{KEY}/start"))]), (0, "OK: run started\n".into()));
    assert_eq!(curl(&["-f", &url(KEY)]), (0, "OK\n".into()));
    collector.wait_up("nightly-backup").await;
    let samples = collector.get_json("/api/v1/samples?check=nightly-backup").await;
    assert!(samples[0]["latency_seconds"].as_f64().is_some(), "the run's duration: {samples}");
    let agents = collector.get_json("/api/v1/agents").await;
    assert!(!agents.to_string().contains("vakt-heartbeat"), "no agent sends heartbeats: {agents}");

    // Silence: down after interval + grace (3 s), one incident, announced.
    let firing = wait_for("the missed heartbeat's notification", WAIT, || async {
        hook.received().into_iter().find(|m| m["event"] == "firing")
    })
    .await;
    assert_eq!(firing["incident"]["subject"], "nightly-backup");
    assert!(
        firing["incident"]["title"].as_str().unwrap().contains("no ping within 2 s of the last (1 s grace)"),
        "{firing}"
    );
    assert_eq!(collector.metric("vakt_check_up{check=\"nightly-backup\"}").await, Some(0.0));

    // Back: the next ping resolves it.
    assert_eq!(curl(&["-f", &url(KEY)]).0, 0);
    wait_for("the resolution", WAIT, || async { hook.received().into_iter().find(|m| m["event"] == "resolved") }).await;

    // The job fails and says why (its log's tail, POSTed): down at once, the output kept.
    let log = dir.path().join("job.log");
    std::fs::write(&log, "dumping db...\npg_dump: error: connection to server failed\n").unwrap();
    let (code, _) = curl(&["-f", "--data-binary", &format!("@{}", log.display()), &url(&format!("{KEY}/1"))]);
    assert_eq!(code, 0);
    let incident = wait_for("the failed run's incident", WAIT, || async {
        let open = collector.get_json("/api/v1/incidents?status=open").await;
        open.as_array().unwrap().first().cloned()
    })
    .await;
    // Soon after the recovery, so the same incident again (reopened, not a second page),
    // with this run's exit code and output on its timeline.
    let id = incident["id"].as_i64().unwrap();
    assert_eq!(id, firing["incident"]["id"].as_i64().unwrap());
    let full = collector.get_json(&format!("/api/v1/incidents/{id}")).await;
    let last = full["timeline"].as_array().unwrap().iter().rfind(|e| e["kind"] == "reopened").cloned().unwrap();
    let said = last["message"].as_str().unwrap();
    assert!(said.contains("the job exited with code 1"), "{full}");
    assert!(said.contains("pg_dump: error: connection to server failed"), "{full}");
    assert_eq!(hook.received().iter().filter(|m| m["event"] == "firing").count(), 1, "paged once");
}
