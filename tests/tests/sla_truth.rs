//! The SLA figures a service manager signs, with the real binaries: a silence is unknown time
//! from where the last result stopped vouching, and a flapping check is one incident with one
//! "now flapping" update.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Proc, Target};

const TOKEN: &str = "sla-truth-agent-token-0123456789";
const WAIT: Duration = Duration::from_secs(40);

fn ms(t: &serde_json::Value) -> i64 {
    t.as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// The agent is stopped for a while and started again. Its check (probed every second) is
/// unknown from one interval after its last result before the stop to its first result after:
/// the SLO's unknown time is exactly that, plus the time before the first result ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_is_unknown_from_where_the_last_result_stopped_vouching() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\nslo_evaluation_interval = \"1s\"\n\
             [agents.edge]\ntoken_hash = \"{}\"\n\
             [checks.web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"1s\"\nagents = [\"edge\"]\n\
             [services.shop]\nchecks = [\"web\"]\n\
             [slos.shop-up]\nservice = \"shop\"\nobjective = 99.9\nwindow = \"1d\"\n",
            token_hash(TOKEN),
            target.addr
        ),
    )
    .unwrap();
    let collector = Collector::start(&cfg, addr, &dir.path().join("collector.log")).await;
    let agent_cfg = vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, "");
    let args = ["run", "--config", agent_cfg.to_str().unwrap()];
    let samples = || async { collector.get_json("/api/v1/samples?check=web").await.as_array().unwrap().clone() };
    let mut agent = Proc::spawn("vakt-agent", &args, &dir.path().join("agent1.log"));
    wait_for("three results", WAIT, || async { (samples().await.len() >= 3).then_some(()) }).await;
    agent.signal("TERM");
    agent.wait_exit(Duration::from_secs(15));
    let before = samples().await.len();
    // Silent for five seconds: five intervals without a result.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _agent = Proc::spawn("vakt-agent", &args, &dir.path().join("agent2.log"));
    wait_for("results again", WAIT, || async { (samples().await.len() >= before + 2).then_some(()) }).await;
    let all = samples().await;
    let first = all[0]["timestamp_ms"].as_i64().unwrap();
    let last_before = all[before - 1]["timestamp_ms"].as_i64().unwrap();
    let first_after = all[before]["timestamp_ms"].as_i64().unwrap();
    assert!(first_after - last_before > 4_000, "a real silence: {last_before} .. {first_after}");
    // By hand: unknown before the first result ever (from the window's start), and from one
    // interval (1 s) after the last result before the stop to the first one after.
    let slo = wait_for("the SLO evaluated after the return", WAIT, || async {
        let slos = collector.get_json("/api/v1/slos").await;
        let s = slos.as_array()?.iter().find(|s| s["name"] == "shop-up")?.clone();
        (ms(&s["window_end"]) > first_after).then_some(s)
    })
    .await;
    let window_start = ms(&slo["window_start"]);
    let expected_ms = (first - window_start) + (first_after - (last_before + 1_000));
    let unknown_ms = (slo["unknown_minutes"].as_f64().unwrap() * 60_000.0).round() as i64;
    assert!(
        (unknown_ms - expected_ms).abs() <= 1,
        "unknown {unknown_ms} ms, by hand {expected_ms} ms (silence {} ms after the last result's interval)",
        first_after - (last_before + 1_000)
    );
    assert_eq!(slo["downtime_minutes"].as_f64().unwrap(), 0.0, "silence is not downtime either");
}

/// A check that goes up and down every few probes: one incident, its first page and recovery,
/// then one "now flapping" update — not a page per flap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_check_pages_once_and_then_says_it_is_flapping() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let hook = vakt_tests::Hook::start().await;
    let hook_addr = hook.addr;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\ngroup_wait = \"10ms\"\n\
             [receivers.pager]\nkind = \"webhook\"\nurl = {{ value = \"http://{hook_addr}/\" }}\n\
             [[routes]]\nreceivers = [\"pager\"]\n\
             [agents.edge]\ntoken_hash = \"{}\"\n\
             [checks.web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"100ms\"\nfail_after = 1\nrecover_after = 1\n\
             flap_threshold = 5\nflap_window = \"1m\"\nagents = [\"edge\"]\n",
            token_hash(TOKEN),
            target.addr
        ),
    )
    .unwrap();
    let collector = Collector::start(&cfg, addr, &dir.path().join("collector.log")).await;
    let agent_cfg = vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, "");
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_cfg.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("web").await;
    // Eight changes, each held long enough to be seen (a second; probes every 100 ms).
    for i in 0..8 {
        target.set_status(if i % 2 == 0 { 503 } else { 200 });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let flapping = wait_for("the flapping incident", WAIT, || async {
        let list = collector.get_json("/api/v1/incidents?kind=flapping").await;
        list.as_array()?.first().cloned()
    })
    .await;
    let all = collector.get_json("/api/v1/incidents").await;
    let all = all.as_array().unwrap();
    let roots: Vec<&serde_json::Value> = all.iter().filter(|i| i["parent_id"].is_null()).collect();
    assert_eq!(roots.len(), 1, "one problem, one incident: {all:#?}");
    assert_eq!(roots[0]["id"], flapping["id"]);
    let check_incidents: Vec<&serde_json::Value> = all.iter().filter(|i| i["kind"] == "check_down").collect();
    assert_eq!(check_incidents.len(), 1, "down again within the flap window is the same incident: {all:#?}");
    assert_eq!(check_incidents[0]["parent_id"], flapping["id"], "folded under the flapping incident");
    // The pages: the first down and the flapping update fire; at most the first recovery besides.
    let flapping_id = flapping["id"].as_i64().unwrap();
    wait_for("the flapping update delivered", WAIT, || async {
        let got = serde_json::to_string(&hook.received()).unwrap();
        got.contains(&format!("\"id\":{flapping_id}")).then_some(())
    })
    .await;
    let got = hook.received();
    let firing = got.iter().filter(|p| p["event"] == "firing").count();
    let resolved = got.iter().filter(|p| p["event"] == "resolved").count();
    assert_eq!(firing, 2, "the first down and 'now flapping': {got:#?}");
    assert!(resolved <= 1, "at most the first recovery: {got:#?}");
}
