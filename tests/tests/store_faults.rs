//! The store under faults, with the real binaries: a database another process keeps locked
//! makes pushes fail with a 503 that says so, the collector keeps running, the agent keeps its
//! samples and delivers them all once the lock is gone; a data directory the collector cannot
//! write is refused at start with the reason and the fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use vakt_tests::{wait_for, Collector, Proc, Target};

const TOKEN: &str = "store-faults-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_delays_ingest_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, vakt_tests::edge_collector_toml(addr, "data", TOKEN, &[("web", target.addr)], "")).unwrap();
    let atoml = dir.path().join("agent.toml");
    std::fs::write(
        &atoml,
        format!("name = \"edge\"\ncollector = \"http://{addr}\"\ntoken = \"{TOKEN}\"\nspool_dir = \"agent\"\npush_interval = \"200ms\"\n"),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let mut agent = Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("a.log"));
    collector.wait_up("web").await;

    // Another process takes the write lock and keeps it longer than the collector waits.
    let db = rusqlite::Connection::open(dir.path().join("data/vakt.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    wait_for("a push refused for the lock", Duration::from_secs(30), || async {
        (collector.metric("vakt_ingest_rejected_total{reason=\"store_error\"}").await.unwrap_or(0.0) >= 1.0)
            .then_some(())
    })
    .await;
    let health = reqwest::get(collector.url("/healthz")).await.unwrap();
    assert!(health.status().is_success() || health.status() == 503, "the collector answers: {}", health.status());
    assert!(
        collector.proc.log_text().contains("database is locked"),
        "the reason is logged:\n{}",
        collector.proc.log_text()
    );
    assert!(
        std::fs::read_to_string(dir.path().join("a.log")).unwrap().contains("503"),
        "the agent was told 503 and keeps its samples"
    );

    // The lock goes: everything spooled meanwhile arrives, once.
    db.execute_batch("COMMIT").unwrap();
    drop(db);
    agent.signal("TERM");
    assert!(agent.wait_exit(Duration::from_secs(20)).success());
    let log = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    assert!(log.contains("all samples delivered"), "{log}");
    let probes = vakt_tests::exit_summary(&dir.path().join("a.log"), "probes_run");
    let stored = collector.get_json("/api/v1/samples?limit=100000").await.as_array().unwrap().len() as u64;
    assert_eq!(stored, probes, "every probe result stored once");
}

/// Runs the collector as an unprivileged user when the tests run as root (root ignores file
/// permissions), so an unwritable directory really is unwritable. The binary is copied into
/// `dir` first, so that user can run it wherever the build lives.
fn collector_command(dir: &std::path::Path) -> std::process::Command {
    let exe = dir.join("vakt-collector");
    if !exe.exists() {
        std::fs::copy(vakt_tests::bin("vakt-collector"), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let is_root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if is_root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(exe);
        c
    } else {
        std::process::Command::new(exe)
    }
}

#[test]
fn an_unwritable_data_dir_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, format!("listen = \"{}\"\ndata_dir = \"data\"\n", vakt_tests::loopback_addr())).unwrap();
    std::fs::set_permissions(&ctoml, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = collector_command(dir.path()).args(["run", "--config", ctoml.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it must not start: {err}");
    assert!(err.contains(&data.display().to_string()), "names the place: {err}");
    assert!(err.contains("must be writable by the user the collector runs as"), "says the fix: {err}");
    assert!(!err.contains("panicked"), "{err}");

    // A file that is not a database: refused, with what to do.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(data.join("vakt.db"), "not a database, a note someone left").unwrap();
    std::fs::set_permissions(data.join("vakt.db"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = collector_command(dir.path()).args(["run", "--config", ctoml.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is not an SQLite database"), "{err}");
}
