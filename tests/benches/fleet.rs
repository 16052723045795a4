//! A fleet on loopback: BENCH_FLEET_AGENTS (default 1,000) simulated agents with
//! BENCH_FLEET_CHECKS (default 20) checks each push one batch per second against one collector
//! for BENCH_FLEET_SECONDS (default 30). Prints the push latency (p50, p99), the collector's RSS
//! and CPU, its memory per active check, and that nothing was lost.
//!
//!     cargo bench -p vakt-tests --bench fleet
//!
//!     BENCH_FLEET_COLLECTORS=2 cargo bench -p vakt-tests --bench fleet
//!
//! runs the same fleet through two collectors sharing one PostgreSQL (Debian's, started by the
//! bench), each agent pushing to one of them (even to the first, odd to the second); the
//! figures are the two together, the process figures the first collector's.
//! `BENCH_FLEET_POOL` sets each collector's `pool_size` (default 8, the collector's default).
//!
//! Memory per active check: for the first third of the run each agent reports one of its checks,
//! then all of them; the collector's RSS after, less its RSS before every check was active, over
//! the checks that became active. (The agents' connections cost the same in both phases.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vakt_tests::{proc_stats, token_hash, Collector};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let agents = env("BENCH_FLEET_AGENTS", 1_000);
    let checks = env("BENCH_FLEET_CHECKS", 20);
    let seconds = env("BENCH_FLEET_SECONDS", 30);
    let nodes = env("BENCH_FLEET_COLLECTORS", 1).clamp(1, 2);
    let dir = tempfile::tempdir().unwrap();
    let postgres = (nodes > 1).then(|| tokio::task::block_in_place(vakt_tests::Postgres::start));
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let mut cfg = format!("listen = \"{addr}\"\ndata_dir = \"data\"\n");
    if let Some(pg) = &postgres {
        cfg.push_str(&format!(
            "[store]\nkind = \"postgres\"\nurl = {{ value = \"{}\" }}\nnode = \"NODE\"\npool_size = {}\n",
            pg.url(),
            env("BENCH_FLEET_POOL", 8)
        ));
    }
    for a in 0..agents {
        cfg.push_str(&format!("[agents.a{a}]\ntoken_hash = \"{}\"\n", token_hash(&format!("fleet-token-{a:05}"))));
    }
    for a in 0..agents {
        for c in 0..checks {
            cfg.push_str(&format!(
                "[checks.a{a}-c{c}]\nkind = \"http\"\ntarget = \"http://127.0.0.1:9/{c}\"\ninterval = \"1s\"\nagents = [\"a{a}\"]\n"
            ));
        }
    }
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, cfg.replace("NODE", "c1")).unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let pid = collector.proc.child.id();
    let second = match nodes {
        1 => None,
        _ => {
            let addr2: SocketAddr = vakt_tests::loopback_addr();
            let ctoml2 = dir.path().join("collector-2.toml");
            let cfg2 =
                cfg.replace("NODE", "c2").replace(&format!("listen = \"{addr}\""), &format!("listen = \"{addr2}\""));
            std::fs::write(&ctoml2, cfg2).unwrap();
            Some(Collector::start(&ctoml2, addr2, &dir.path().join("collector-2.log")).await)
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = proc_stats(pid);

    let http =
        reqwest::Client::builder().pool_max_idle_per_host(agents).timeout(Duration::from_secs(30)).build().unwrap();
    let one_check_until = (seconds / 3).max(2) as u64;
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let urls: Vec<String> =
        std::iter::once(&collector).chain(second.as_ref()).map(|c| c.url("/api/v1/ingest")).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..agents {
        let url = urls[a % urls.len()].clone();
        let (http, latencies, sent, failed) = (http.clone(), latencies.clone(), sent.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            // Spread the agents over the second, as real ones drift apart.
            tokio::time::sleep(Duration::from_micros((a as u64 * 1_000_000) / agents as u64)).await;
            let token = format!("fleet-token-{a:05}");
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for seq in 1..=seconds as u64 {
                tick.tick().await;
                let ts = now_ms();
                let active = if seq <= one_check_until { 1 } else { checks };
                let samples: Vec<serde_json::Value> = (0..active)
                    .map(|c| {
                        serde_json::json!({"check": format!("a{a}-c{c}"), "timestamp_ms": ts, "success": (c + a) % 50 != 0 || seq % 2 == 0,
                        "latency_seconds": 0.02, "values": {"status_code": 200.0}})
                    })
                    .collect();
                let body = serde_json::json!({"version": 1, "agent": format!("a{a}"), "sequence": seq, "samples": samples});
                let t = Instant::now();
                match http.post(&url).bearer_auth(&token).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        latencies.lock().unwrap().push(t.elapsed());
                        sent.fetch_add(active as u64, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut peak_rss = 0u64;
    let mut one_check_rss = 0u64;
    while !tasks.iter().all(|t| t.is_finished()) {
        let s = proc_stats(pid);
        peak_rss = peak_rss.max(s.rss_kib);
        // Just before every check becomes active: the connections, one check each.
        if started.elapsed() < Duration::from_millis(one_check_until * 1000 - 200) {
            one_check_rss = s.rss_kib;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let loaded = proc_stats(pid);
    let mut stored = collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0) as u64;
    if let Some(c) = &second {
        stored += c.metric("vakt_ingest_samples_total").await.unwrap_or(0.0) as u64;
    }
    let sent = sent.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1];
    let active = (agents * checks) as f64;
    let became_active = (agents * (checks - 1)).max(1) as f64;
    let per_check = (loaded.rss_kib.saturating_sub(one_check_rss)) as f64 * 1024.0 / became_active;
    let per_agent = (one_check_rss.saturating_sub(idle.rss_kib)) as f64 / agents as f64;

    println!(
        "fleet: {agents} agents x {checks} checks, one push per agent per second for {seconds} s ({:.0} samples/s offered){}",
        active,
        if nodes > 1 { ", through two collectors on one PostgreSQL" } else { "" }
    );
    println!(
        "  pushes: {} acknowledged, {failed} failed · latency p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
        l.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        l[l.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "  loss: {sent} samples acknowledged, {stored} committed ({})",
        if sent == stored && failed == 0 { "none lost" } else { "MISMATCH" }
    );
    println!(
        "  collector: CPU {:.1} s over {:.1} s ({:.0}% of one core) · RSS idle {:.1} MiB, loaded {:.1} MiB, peak {:.1} MiB",
        loaded.cpu_seconds - idle.cpu_seconds,
        elapsed.as_secs_f64(),
        100.0 * (loaded.cpu_seconds - idle.cpu_seconds) / elapsed.as_secs_f64(),
        idle.rss_kib as f64 / 1024.0,
        loaded.rss_kib as f64 / 1024.0,
        peak_rss.max(loaded.peak_rss_kib) as f64 / 1024.0
    );
    println!(
        "  memory per active check: {per_check:.0} bytes (target <= 1024) · per connected agent with one check: {per_agent:.1} KiB"
    );
    assert_eq!(sent, stored, "acknowledged samples must all be committed");
}
