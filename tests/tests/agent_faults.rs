//! The agent's disk fills up, with the real binaries: its spool lives on a 96 KiB tmpfs (in a
//! mount namespace of its own) while the collector is away. The agent says so once, counts the
//! failed writes, keeps probing and holds the samples in memory; when the collector is back the
//! spool drains, space returns, and every sample arrives once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{metric, wait_for, Collector, Proc, Target};

const TOKEN: &str = "disk-full-agent-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_samples_in_memory_and_recovers_when_space_returns() {
    if !vakt_tests::mount_namespaces_allowed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let agent_metrics = vakt_tests::loopback_addr();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let mut checks = String::new();
    for i in 0..10 {
        checks.push_str(&format!(
            "[checks.local-{i}]\nkind = \"http\"\ntarget = \"http://{}/{i}\"\ninterval = \"20ms\"\ntimeout = \"20ms\"\n",
            target.addr
        ));
    }
    let atoml = dir.path().join("agent.toml");
    std::fs::write(
        &atoml,
        format!(
            "name = \"edge\"\ncollector = \"http://{addr}\"\ntoken = \"{TOKEN}\"\nspool_dir = \"{}\"\n\
             push_interval = \"100ms\"\nmetrics_listen = \"{agent_metrics}\"\n{checks}",
            spool.display()
        ),
    )
    .unwrap();
    // The agent in its own mount namespace, its spool on a tiny tmpfs; the collector not there yet.
    let script = format!(
        "mount -t tmpfs -o size=96k tmpfs '{}' && exec '{}' run --config '{}'",
        spool.display(),
        vakt_tests::bin("vakt-agent").display(),
        atoml.display()
    );
    let log = dir.path().join("agent.log");
    let child = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("VAKT_LOG", "info,vakt_agent=debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut agent = Proc { child, log: log.clone() };

    let agent_metric = |series: &'static str| async move {
        let text = reqwest::get(format!("http://{agent_metrics}/metrics")).await.ok()?.text().await.ok()?;
        metric(&text, series)
    };

    wait_for("the spool to fill the disk", Duration::from_secs(60), || async {
        (agent_metric("vakt_agent_spool_write_errors_total").await.unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("cannot write the spool; holding samples in memory"), "{text}");
    assert!(text.contains("No space left on device"), "the reason, as the system gave it: {text}");
    assert_eq!(text.matches("cannot write the spool").count(), 1, "said once per episode, not per tick");
    wait_for("samples held in memory", Duration::from_secs(10), || async {
        (agent_metric("vakt_agent_buffered_samples").await.unwrap_or(0.0) > 0.0).then_some(())
    })
    .await;
    assert!(agent.child.try_wait().unwrap().is_none(), "the agent keeps running");

    // The collector comes: the spool drains, space returns, the held samples follow.
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, vakt_tests::edge_collector_toml(addr, "data", TOKEN, &[], "")).unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    wait_for("the spool writable again", Duration::from_secs(60), || async {
        std::fs::read_to_string(&log).unwrap().contains("spool writable again").then_some(())
    })
    .await;
    agent.signal("TERM");
    assert!(agent.wait_exit(Duration::from_secs(30)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("all samples delivered"), "{text}");
    let probes = vakt_tests::exit_summary(&log, "probes_run");
    let stored = collector.get_json("/api/v1/samples?limit=1000000").await.as_array().unwrap().len() as u64;
    assert_eq!(stored, probes, "every probe result arrived once, none dropped");
}

/// An agent whose wall clock drifts a minute ahead, then jumps two hours ahead (as a bad NTP
/// step would), then is put right. A minute off: samples still accepted, the skew measured on
/// every push (`vakt_agent_clock_skew_seconds`) and said once in both logs. Two hours off: the
/// collector refuses the impossible timestamps with the reason and the measured skew, the agent
/// logs it and counts the dropped samples, the check's state is not disturbed. Put right: both
/// sides say the clock is back in step and samples flow again, and a failure right after the
/// step back is seen at once. The agent's schedule runs on the monotonic clock and does not stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_clock_on_the_agent_is_measured_refused_when_impossible_and_recovers() {
    let Some(faketime) = vakt_tests::faketime_lib() else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let agent_metrics = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, vakt_tests::edge_collector_toml(addr, "data", TOKEN, &[("web", target.addr)], "")).unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let atoml =
        vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, &format!("metrics_listen = \"{agent_metrics}\"\n"));
    let offset = dir.path().join("clock-offset");
    std::fs::write(&offset, "+0\n").unwrap();
    let log = dir.path().join("agent.log");
    let _agent =
        vakt_tests::spawn_agent_with_clock(faketime, &offset, &["run", "--config", atoml.to_str().unwrap()], &log);
    collector.wait_up("web").await;
    let skew = || collector.metric("vakt_agent_clock_skew_seconds{agent=\"edge\"}");
    assert!(skew().await.is_some_and(|s| s.abs() < 5.0), "in step at first: {:?}", skew().await);

    // A minute ahead: accepted, measured, said once on each side.
    std::fs::write(&offset, "+1m\n").unwrap();
    wait_for("the collector to measure the skew", Duration::from_secs(30), || async {
        skew().await.filter(|s| (s - 60.0).abs() < 5.0)
    })
    .await;
    wait_for("the agent to hear of it", Duration::from_secs(30), || async {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("this agent's clock is 1m ahead of the collector's")
            .then_some(())
    })
    .await;
    let collector_log = collector.proc.log_text();
    assert_eq!(
        collector_log.matches("the agent's clock is 1m ahead of the collector's").count(),
        1,
        "once per episode, not per push:\n{collector_log}"
    );
    assert_eq!(collector.metric("vakt_ingest_rejected_total{reason=\"invalid\"}").await.unwrap_or(0.0), 0.0);
    // The check's state has moved on to the agent's time, a minute ahead.
    wait_for("results stamped a minute ahead in the check's state", Duration::from_secs(30), || async {
        let checks = collector.get_json("/api/v1/checks").await;
        let last: jiff::Timestamp = checks[0]["last_sample"].as_str()?.parse().ok()?;
        (last > jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30)).then_some(())
    })
    .await;

    // Two hours ahead.
    std::fs::write(&offset, "+2h\n").unwrap();
    wait_for("the collector to refuse the future", Duration::from_secs(30), || async {
        (collector.metric("vakt_ingest_rejected_total{reason=\"invalid\"}").await.unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;
    wait_for("the agent to count what it dropped", Duration::from_secs(30), || async {
        let text = reqwest::get(format!("http://{agent_metrics}/metrics")).await.ok()?.text().await.ok()?;
        (metric(&text, "vakt_agent_dropped_samples_total{reason=\"rejected\"}").unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("is the agent's clock right?); the agent's clock is 2h ahead of the collector's"),
        "the reason and the measured skew reach the agent's log:\n{text}"
    );
    assert!(skew().await.is_some_and(|s| (s - 7200.0).abs() < 5.0), "{:?}", skew().await);
    assert_eq!(collector.metric("vakt_check_up{check=\"web\"}").await, Some(1.0), "the state is not disturbed");

    // The clock is put right: samples are accepted again.
    std::fs::write(&offset, "+0\n").unwrap();
    let before = collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0);
    wait_for("samples accepted again", Duration::from_secs(30), || async {
        (collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0) >= before + 10.0).then_some(())
    })
    .await;
    assert!(skew().await.is_some_and(|s| s.abs() < 5.0), "{:?}", skew().await);
    wait_for("the agent to hear its clock is right", Duration::from_secs(30), || async {
        std::fs::read_to_string(&log).unwrap().contains("this agent's clock is back in step").then_some(())
    })
    .await;
    assert!(collector.proc.log_text().contains("the agent's clock is back in step"));
    let incidents = collector.get_json("/api/v1/incidents").await;
    assert_eq!(incidents.as_array().unwrap().len(), 0, "no incident from a clock: {incidents}");

    // Its clock went back a minute, so its results are older than the last one accepted: they
    // must still move the check, not wait until the clock catches up.
    target.set_status(500);
    wait_for("the check down while the clock catches up", Duration::from_secs(20), || async {
        (collector.metric("vakt_check_up{check=\"web\"}").await == Some(0.0)).then_some(())
    })
    .await;
    let incidents = collector.get_json("/api/v1/incidents?status=open").await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
}
