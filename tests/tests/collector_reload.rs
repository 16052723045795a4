//! `collector.toml` re-read on SIGHUP, with the real binaries: a broken file is refused with its
//! file:line and the collector goes on; a good one adds a check that the agent then runs, with
//! the listening socket kept open throughout (no request refused), the agent running the new
//! check within moments (not at its next refresh), and no sample lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vakt_tests::{exit_summary, wait_for, Collector, Proc, Target};

const TOKEN: &str = "reload-agent-token-0123456789abcdef";

fn collector_toml(addr: SocketAddr, checks: &[(&str, SocketAddr)]) -> String {
    vakt_tests::edge_collector_toml(addr, "data", TOKEN, checks, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_configuration_in_place_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let (web, api) = (Target::start().await, Target::start().await);
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, collector_toml(addr, &[("web", web.addr)])).unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    // The default refresh_interval (60 s): the new check reaches the agent through the next ack.
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, "");
    let agent_log = dir.path().join("agent.log");
    let mut agent = Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &agent_log);
    collector.wait_up("web").await;

    // Someone polls the collector all along: not one request may be refused.
    let (polls, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = tokio::spawn({
        let (polls, refused, stop, url) = (polls.clone(), refused.clone(), stop.clone(), collector.url("/healthz"));
        async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
            while !stop.load(Ordering::SeqCst) {
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {}
                    _ => {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
                polls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    // A broken file: refused with where and why; the running configuration goes on.
    let good = std::fs::read_to_string(&ctoml).unwrap();
    std::fs::write(&ctoml, format!("{good}[checks.broken]\nkind = \"htp\"\n")).unwrap();
    collector.proc.signal("HUP");
    wait_for("the refusal", Duration::from_secs(20), || async {
        collector.proc.log_text().contains("SIGHUP: configuration not reloaded").then_some(())
    })
    .await;
    let log = collector.proc.log_text();
    assert!(log.contains(&format!("{}:", ctoml.display())), "the file and line of the problem:\n{log}");
    assert!(log.contains("htp"), "{log}");
    assert_eq!(collector.metric("vakt_check_up{check=\"web\"}").await, Some(1.0));

    // A check added: the collector takes it in place; the agent hears of the new configuration
    // in its next ack, fetches its assignments at once and runs the check.
    std::fs::write(&ctoml, collector_toml(addr, &[("web", web.addr), ("api", api.addr)])).unwrap();
    vakt_tests::grant_reader(&ctoml);
    collector.proc.signal("HUP");
    collector.wait_up("api").await;
    assert!(collector.proc.log_text().contains("SIGHUP: configuration reloaded"));
    collector.wait_up("web").await;

    stop.store(true, Ordering::SeqCst);
    poller.await.unwrap();
    assert!(polls.load(Ordering::SeqCst) > 20, "the poller ran through the reloads");
    assert_eq!(refused.load(Ordering::SeqCst), 0, "the socket stayed open: no request refused or failed");

    agent.signal("TERM");
    assert!(agent.wait_exit(Duration::from_secs(20)).success());
    let stored = collector.get_json("/api/v1/samples?limit=1000000").await.as_array().unwrap().len() as u64;
    assert_eq!(stored, exit_summary(&agent_log, "probes_run"), "every probe result arrived once across the reloads");
    let text = std::fs::read_to_string(&agent_log).unwrap();
    assert!(!text.contains("push failed"), "the agent never noticed the reloads:\n{text}");
}
