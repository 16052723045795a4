//! Agent footprint beside Prometheus blackbox_exporter, in one run, on this machine.
//!
//!     cargo bench -p vakt-tests --bench agent_footprint
//!
//! Both probe the same N HTTP targets on a loopback server at the same rate (every target every
//! INTERVAL seconds) for DURATION seconds: vakt-agent by its own schedule (pushing to a real
//! collector), blackbox_exporter by /probe requests this program sends, as Prometheus would.
//! Printed: peak RSS and CPU seconds of each process and their ratios, plus the idle agent's
//! RSS. The agent measured is the shipped build (`cargo build-agent`: the `agent` profile,
//! linked statically). Environment: BENCH_TARGETS (500), BENCH_INTERVAL (10), BENCH_SECONDS (60).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use vakt_tests::{free_port, proc_stats, shipped_agent, token_hash, wait_for, Collector, Proc, ProcStats, Target};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const TOKEN: &str = "bench-token-0123456789abcdef";

async fn run_agent(
    dir: &std::path::Path,
    targets: u64,
    interval: u64,
    seconds: u64,
    server: SocketAddr,
) -> (ProcStats, ProcStats) {
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let mut cfg =
        format!("listen = \"{addr}\"\ndata_dir = \"data\"\n[agents.bench]\ntoken_hash = \"{}\"\n", token_hash(TOKEN));
    for i in 0..targets {
        cfg.push_str(&format!(
            "[checks.t{i}]\nkind = \"http\"\ntarget = \"http://{server}/t/{i}\"\ninterval = \"{interval}s\"\ntimeout = \"5s\"\nagents = [\"bench\"]\n"
        ));
    }
    let ctoml = dir.join("collector.toml");
    std::fs::write(&ctoml, cfg).unwrap();
    let atoml = dir.join("agent.toml");
    std::fs::write(
        &atoml,
        format!("name = \"bench\"\ncollector = \"http://{addr}\"\ntoken = \"{TOKEN}\"\nspool_dir = \"agent\"\n"),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.join("collector.log")).await;

    // Idle: an agent with no checks yet would need another config; measure the agent right
    // after start, before its first probes complete a round, as the idle figure's upper bound.
    let idle_toml = dir.join("idle.toml");
    std::fs::write(
        &idle_toml,
        format!("name = \"idle\"\ncollector = \"http://{addr}\"\ntoken = \"x\"\nspool_dir = \"idle\"\n"),
    )
    .unwrap();
    let exe = shipped_agent();
    let idle = Proc::spawn_exe(&exe, &["run", "--config", idle_toml.to_str().unwrap()], &dir.join("idle.log"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_stats = proc_stats(idle.child.id());
    drop(idle);

    let agent = Proc::spawn_exe(&exe, &["run", "--config", atoml.to_str().unwrap()], &dir.join("agent.log"));
    let start_stats = proc_stats(agent.child.id());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let end = proc_stats(agent.child.id());
    let samples = collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0);
    println!(
        "  vakt-agent: {samples} samples stored by the collector; at the end RSS {} KiB ({} KiB anonymous), {} threads",
        end.rss_kib, end.anon_kib, end.threads
    );
    (idle_stats, ProcStats { cpu_seconds: end.cpu_seconds - start_stats.cpu_seconds, ..end })
}

async fn run_blackbox(
    dir: &std::path::Path,
    targets: u64,
    interval: u64,
    seconds: u64,
    server: SocketAddr,
) -> Option<ProcStats> {
    let exe = "/usr/bin/prometheus-blackbox-exporter";
    if !std::path::Path::new(exe).exists() {
        println!("  blackbox_exporter: not installed (apt-get install prometheus-blackbox-exporter); no comparison");
        return None;
    }
    let port = free_port();
    let cfg = dir.join("blackbox.yml");
    std::fs::write(
        &cfg,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(exe)
        .args([&format!("--config.file={}", cfg.display()), &format!("--web.listen-address=127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("blackbox.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for("blackbox_exporter", Duration::from_secs(20), || {
        let http = http.clone();
        let base = base.clone();
        async move { http.get(format!("{base}/metrics")).send().await.ok().map(|_| ()) }
    })
    .await;
    let start_stats = proc_stats(pid);
    let started = Instant::now();
    let mut ok = 0u64;
    // Spread the targets over the interval, like a scraper with N jobs would.
    let gap = Duration::from_secs_f64(interval as f64 / targets as f64);
    let mut next = tokio::time::Instant::now();
    let mut i = 0u64;
    let mut inflight = tokio::task::JoinSet::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep_until(next).await;
        next += gap;
        let url = format!("{base}/probe?module=http_2xx&target=http://{server}/t/{}", i % targets);
        i += 1;
        let http = http.clone();
        inflight.spawn(async move {
            http.get(url).send().await.ok()?.text().await.ok().map(|t| t.contains("probe_success 1"))
        });
        while let Some(Ok(r)) = inflight.try_join_next() {
            ok += u64::from(r == Some(true));
        }
    }
    while let Some(r) = inflight.join_next().await {
        ok += u64::from(r.ok().flatten() == Some(true));
    }
    let end = proc_stats(pid);
    let _ = child.kill();
    let _ = child.wait();
    println!("  blackbox_exporter: {ok} of {i} probes succeeded");
    Some(ProcStats { cpu_seconds: end.cpu_seconds - start_stats.cpu_seconds, ..end })
}

#[tokio::main]
async fn main() {
    let targets = env("BENCH_TARGETS", 500);
    let interval = env("BENCH_INTERVAL", 10);
    let seconds = env("BENCH_SECONDS", 60);
    let dir = tempfile::tempdir().unwrap();
    let server = Target::start().await;
    println!("agent footprint: {targets} HTTP targets, each every {interval}s, for {seconds}s");
    let (idle, agent) = run_agent(dir.path(), targets, interval, seconds, server.addr).await;
    let blackbox = run_blackbox(dir.path(), targets, interval, seconds, server.addr).await;
    println!();
    println!("| process | peak RSS (MiB) | CPU seconds |");
    println!("| --- | ---: | ---: |");
    let mib = |k: u64| k as f64 / 1024.0;
    println!("| vakt-agent, idle (no checks) | {:.1} | — |", mib(idle.peak_rss_kib));
    println!("| vakt-agent, {targets} checks | {:.1} | {:.2} |", mib(agent.peak_rss_kib), agent.cpu_seconds);
    if let Some(b) = blackbox {
        println!("| blackbox_exporter, {targets} targets | {:.1} | {:.2} |", mib(b.peak_rss_kib), b.cpu_seconds);
        println!();
        println!(
            "RSS ratio agent/blackbox: {:.2} (target ≤ 0.33)",
            agent.peak_rss_kib as f64 / b.peak_rss_kib.max(1) as f64
        );
        println!("CPU ratio agent/blackbox: {:.2} (target ≤ 0.50)", agent.cpu_seconds / b.cpu_seconds.max(1e-9));
    }
    println!("idle agent RSS: {:.1} MiB (target < 10)", mib(idle.peak_rss_kib));
}
