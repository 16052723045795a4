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

/// A database damaged in the middle of the file (a bad disk, a copy torn in half) is found at
/// start, and the collector refuses to run on it with what to do, rather than failing some
/// night on the page a query happens to touch.
#[tokio::test]
async fn a_database_damaged_mid_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let addr = vakt_tests::loopback_addr();
    let token = "damage-agent-token-0123456789";
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\n[agents.a]\ntoken_hash = \"{}\"\n\
             [checks.web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nagents = [\"a\"]\n",
            vakt_tests::token_hash(token)
        ),
    )
    .unwrap();
    let mut collector = vakt_tests::Collector::start(&ctoml, addr, &dir.path().join("c1.log")).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let samples: Vec<_> = (0..5000)
        .map(|i| serde_json::json!({"check": "web", "timestamp_ms": now - 5000 + i, "success": true, "error": "x".repeat(40)}))
        .collect();
    let body = serde_json::json!({"version": 1, "agent": "a", "sequence": 1, "samples": samples});
    let resp = reqwest::Client::new()
        .post(collector.url("/api/v1/ingest"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    collector.proc.signal("TERM");
    collector.proc.wait_exit(std::time::Duration::from_secs(15));
    // Overwrite one page in the middle of the file with garbage.
    let db = dir.path().join("data").join("vakt.db");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 40 * 4096, "{} bytes", bytes.len());
    let page = bytes.len() / 4096 / 2 * 4096;
    for (i, b) in bytes[page..page + 4096].iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    std::fs::write(&db, bytes).unwrap();
    let out = std::process::Command::new(vakt_tests::bin("vakt-collector"))
        .args(["run", "--config", ctoml.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it must not run on a damaged file: {err}");
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains("restore the last backup"), "says what to do: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The collector's disk fills up: pushes are refused with 503 (never acknowledged unstored),
/// and `/healthz` and `/readyz` say the store cannot write, so a load balancer or a monitor
/// of the monitor sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_health_fail_and_ingest_refuse() {
    if !vakt_tests::mount_namespaces_allowed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = vakt_tests::loopback_addr();
    let token = "full-disk-collector-token-0123456789";
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"{}\"\n[agents.a]\ntoken_hash = \"{}\"\n\
             [checks.web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nagents = [\"a\"]\n",
            data.display(),
            vakt_tests::token_hash(token)
        ),
    )
    .unwrap();
    vakt_tests::grant_reader(&ctoml);
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs '{}' && exec '{}' run --config '{}'",
        data.display(),
        vakt_tests::bin("vakt-collector").display(),
        ctoml.display()
    );
    let log = dir.path().join("collector.log");
    let child = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let collector = Collector::adopt(Proc { child, log }, &ctoml, addr).await;
    let http = reqwest::Client::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut refused = None;
    for seq in 1..=200u64 {
        let samples: Vec<_> = (0..2000)
            .map(|i| serde_json::json!({"check": "web", "timestamp_ms": now - 60_000 + i, "success": true, "error": "y".repeat(200)}))
            .collect();
        let body = serde_json::json!({"version": 1, "agent": "a", "sequence": seq, "samples": samples});
        let resp = http.post(collector.url("/api/v1/ingest")).bearer_auth(token).json(&body).send().await.unwrap();
        if resp.status() != 200 {
            refused = Some((resp.status().as_u16(), resp.text().await.unwrap()));
            break;
        }
    }
    let (status, why) = refused.expect("a 1 MiB disk fills within 200 pushes of 2000 samples");
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("storing the batch failed"), "{why}");
    for path in ["/healthz", "/readyz"] {
        let text = wait_for(&format!("{path} to say the store cannot write"), Duration::from_secs(15), || {
            let url = collector.url(path);
            let http = http.clone();
            async move {
                let r = http.get(url).send().await.ok()?;
                (r.status() == 503).then_some(r.text().await.ok()?)
            }
        })
        .await;
        assert!(text.contains("the store cannot write"), "{text}");
    }
}
