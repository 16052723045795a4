//! Nothing lost, nothing twice: the agent's spool across collector outages and agent crashes,
//! with the real binaries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vakt_tests::{exit_summary, token_hash, wait_for, Collector, Proc, Target};

const WAIT: Duration = Duration::from_secs(40);
const CHECKS: usize = 5;
const TOKEN: &str = "delivery-token-0123456789";

struct Rig {
    dir: tempfile::TempDir,
    target: Target,
    addr: SocketAddr,
    collector_toml: PathBuf,
    agent_toml: PathBuf,
}

async fn rig() -> Rig {
    rig_with("", "100ms").await
}

/// A rig with extra collector settings and the agent's push interval.
async fn rig_with(collector_extra: &str, push_interval: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let mut collector = format!(
        "listen = \"{addr}\"\ndata_dir = \"data\"\n{collector_extra}\n[agents.d1]\ntoken_hash = \"{}\"\n",
        token_hash(TOKEN)
    );
    for i in 0..CHECKS {
        collector.push_str(&format!(
            "[checks.c{i}]\nkind = \"http\"\ntarget = \"http://{}/{i}\"\ninterval = \"50ms\"\ntimeout = \"50ms\"\nagents = [\"d1\"]\n",
            target.addr
        ));
    }
    let collector_toml = dir.path().join("collector.toml");
    std::fs::write(&collector_toml, collector).unwrap();
    let agent_toml = dir.path().join("agent.toml");
    std::fs::write(
        &agent_toml,
        format!("name = \"d1\"\ncollector = \"http://{addr}\"\ntoken = \"{TOKEN}\"\nspool_dir = \"agent\"\npush_interval = \"{push_interval}\"\nrefresh_interval = \"1s\"\n"),
    )
    .unwrap();
    Rig { dir, target, addr, collector_toml, agent_toml }
}

impl Rig {
    async fn collector(&self, log: &str) -> Collector {
        Collector::start(&self.collector_toml, self.addr, &self.dir.path().join(log)).await
    }
    fn agent(&self, log: &str) -> Proc {
        Proc::spawn("vakt-agent", &["run", "--config", self.agent_toml.to_str().unwrap()], &self.dir.path().join(log))
    }
    fn spool_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("agent/spool")).map_or(0, |d| d.count())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// All stored samples as (check, timestamp) pairs; panics on a duplicate.
async fn stored(collector: &Collector) -> HashSet<(String, i64)> {
    let list = collector.get_json("/api/v1/samples?limit=100000").await;
    let mut seen = HashSet::new();
    for s in list.as_array().unwrap() {
        let key = (s["check"].as_str().unwrap().to_string(), s["timestamp_ms"].as_i64().unwrap());
        assert!(seen.insert(key.clone()), "sample stored twice: {key:?}");
    }
    seen
}

async fn wait_for_spool_files(rig: &Rig, n: usize) {
    wait_for("the spool to fill", WAIT, || async { (rig.spool_files() >= n).then_some(()) }).await;
}

fn assert_in_log(log: &Path, needle: &str) {
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains(needle), "{needle:?} not in {}:\n{text}", log.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_outage_loses_nothing_and_duplicates_nothing() {
    let rig = rig().await;
    let mut collector = rig.collector("c1.log").await;
    let mut agent = rig.agent("agent.log");
    wait_for("samples flowing", WAIT, || async {
        (collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0) >= 20.0).then_some(())
    })
    .await;

    // Outage: hundreds of probe results pile up in the spool.
    collector.proc.kill();
    let outage_start = now_ms();
    let hits = rig.target.hits();
    wait_for("hundreds of probes during the outage", WAIT, || async {
        (rig.target.hits() >= hits + 300).then_some(())
    })
    .await;
    let outage_end = now_ms();
    assert!(rig.spool_files() >= 5, "batches are spooled on disk while the collector is away");

    // Back: the spool replays; then the agent stops cleanly and has delivered everything.
    let collector = rig.collector("c2.log").await;
    wait_for("the spool to drain", WAIT, || async { (rig.spool_files() == 0).then_some(()) }).await;
    agent.signal("TERM");
    assert!(agent.wait_exit(Duration::from_secs(20)).success());
    assert_in_log(&rig.dir.path().join("agent.log"), "all samples delivered");

    let samples = stored(&collector).await;
    let probes_run = exit_summary(&rig.dir.path().join("agent.log"), "probes_run");
    assert_eq!(exit_summary(&rig.dir.path().join("agent.log"), "samples_delivered"), probes_run);
    assert_eq!(samples.len() as u64, probes_run, "every probe result arrived exactly once");
    let during_outage = samples.iter().filter(|(_, t)| (outage_start..outage_end).contains(t)).count();
    assert!(during_outage >= 250, "only {during_outage} samples from the outage arrived");
    // Count by sequence: the batches the agent numbered add up to the samples stored.
    let agents = collector.get_json("/api/v1/agents").await;
    assert_eq!(agents[0]["name"], "d1");
    assert_eq!(agents[0]["samples"].as_u64().unwrap(), samples.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_stream_replays_its_spool_without_duplicates() {
    let rig = rig().await;
    let mut collector = rig.collector("c1.log").await;
    let mut agent = rig.agent("a1.log");
    wait_for("samples flowing", WAIT, || async {
        (collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0) >= 20.0).then_some(())
    })
    .await;

    // The agent spools while the collector is down, and is then killed outright.
    collector.proc.kill();
    let outage_start = now_ms();
    let hits_before = rig.target.hits();
    wait_for_spool_files(&rig, 5).await;
    agent.kill();
    let killed_at = now_ms();
    let spooled_hits = rig.target.hits() - hits_before;

    // Collector back, agent restarted: the spool from before the crash is delivered.
    let collector = rig.collector("c2.log").await;
    let mut agent = rig.agent("a2.log");
    wait_for("the old spool to drain", WAIT, || async { (rig.spool_files() == 0).then_some(()) }).await;

    // Kill it again while it pushes, restart, and let it settle.
    wait_for("more samples", WAIT, || async {
        (collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0) >= 50.0).then_some(())
    })
    .await;
    agent.kill();
    let mut agent = rig.agent("a3.log");
    let hits = rig.target.hits();
    wait_for("probes after the second restart", WAIT, || async { (rig.target.hits() >= hits + 50).then_some(()) })
        .await;
    agent.signal("TERM");
    assert!(agent.wait_exit(Duration::from_secs(20)).success());

    let samples = stored(&collector).await; // panics on any duplicate
    let from_first_run = samples.iter().filter(|(_, t)| (outage_start..killed_at).contains(t)).count() as u64;
    // What the first run had spooled arrived; only samples still in memory at the kill (at
    // most one push interval's worth) may be missing.
    let per_push = (CHECKS * 2 + CHECKS) as u64;
    assert!(from_first_run + per_push >= spooled_hits, "{from_first_run} of {spooled_hits} spooled samples arrived");
    assert!(
        samples.len() as u64 + 2 * per_push >= rig.target.hits(),
        "{} stored, {} probed",
        samples.len(),
        rig.target.hits()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_agent_waits_as_asked_and_loses_nothing() {
    // One push every two seconds allowed, one pushed every second: the collector keeps saying
    // 429 with Retry-After, and the agent keeps waiting that long instead of failing.
    let rig = rig_with("agent_push_rate = 0.5", "1s").await;
    let collector = rig.collector("c.log").await;
    let mut agent = rig.agent("agent.log");
    wait_for("the collector to throttle", WAIT, || async {
        (collector.metric("vakt_ingest_rejected_total{reason=\"rate_limited\"}").await.unwrap_or(0.0) >= 2.0)
            .then_some(())
    })
    .await;
    agent.signal("TERM");
    assert!(agent.wait_exit(Duration::from_secs(20)).success());
    let log = rig.dir.path().join("agent.log");
    assert_in_log(&log, "collector asks to slow down");
    assert_in_log(&log, "retry_in_ms=2000");
    assert_in_log(&log, "all samples delivered");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("push failed"), "being paced is not a failure:\n{text}");
    let samples = stored(&collector).await;
    assert_eq!(samples.len() as u64, exit_summary(&log, "probes_run"), "every probe result arrived once");
}
