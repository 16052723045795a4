//! `vakt-collector backup` while the collector runs and an agent pushes: the copy is consistent
//! and complete up to its moment, a collector started on it has the same incidents and samples,
//! and an existing file is never overwritten.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{run_bin, wait_for, Collector, Proc, Target};

const TOKEN: &str = "backup-agent-token-0123456789abcdef";

fn collector_toml(addr: SocketAddr, data_dir: &str, target: SocketAddr) -> String {
    vakt_tests::edge_collector_toml(addr, data_dir, TOKEN, &[("web", target)], "fail_after = 2\n")
}

fn sample_count(samples: &serde_json::Value) -> usize {
    samples.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_to_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, collector_toml(addr, "data", target.addr)).unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, "");
    let _agent = Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("a.log"));
    collector.wait_up("web").await;
    target.set_status(500);
    wait_for("an incident", Duration::from_secs(30), || async {
        (collector.metric("vakt_incidents_open").await == Some(1.0)).then_some(())
    })
    .await;

    // The agent keeps pushing ten batches a second while the backup runs.
    let before = wait_for("some history", Duration::from_secs(30), || async {
        let n = sample_count(&collector.get_json("/api/v1/samples?limit=1000000").await);
        (n >= 20).then_some(n)
    })
    .await;
    let copy = dir.path().join("vakt-backup.db");
    let (code, out, err) =
        run_bin("vakt-collector", &["backup", "--config", ctoml.to_str().unwrap(), copy.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("written and checked"), "{out}");
    let after = sample_count(&collector.get_json("/api/v1/samples?limit=1000000").await);

    // Never over an existing file.
    let (code, _, err) =
        run_bin("vakt-collector", &["backup", "--config", ctoml.to_str().unwrap(), copy.to_str().unwrap()], None);
    assert_eq!(code, 1);
    assert!(err.contains("already exists; a backup never overwrites"), "{err}");

    // Restored: a second collector on the copy (no agent) has the incident and the samples.
    let restored_dir = dir.path().join("restored");
    std::fs::create_dir(&restored_dir).unwrap();
    std::fs::copy(&copy, restored_dir.join("vakt.db")).unwrap();
    let addr2: SocketAddr = vakt_tests::loopback_addr();
    let ctoml2 = dir.path().join("restored.toml");
    std::fs::write(&ctoml2, collector_toml(addr2, "restored", target.addr)).unwrap();
    let restored = Collector::start(&ctoml2, addr2, &dir.path().join("restored.log")).await;
    let incidents = restored.get_json("/api/v1/incidents?status=open").await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    assert_eq!(incidents[0]["subject"], "web");
    let restored_samples = sample_count(&restored.get_json("/api/v1/samples?limit=1000000").await);
    assert!(
        (before..=after).contains(&restored_samples),
        "a snapshot of one moment: {before} ≤ {restored_samples} ≤ {after}"
    );
}
