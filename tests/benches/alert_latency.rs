//! Alert latency: from the push of the sample that completes `fail_after` to the notification
//! handed to the receiver (a webhook on loopback), with the default group wait.
//!
//!     cargo bench -p vakt-tests --bench alert_latency
//!
//! BENCH_INCIDENTS (default 100) checks fail one after another; p50, p99 and max are printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use axum::body::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vakt_tests::{token_hash, wait_for, Collector};

const TOKEN: &str = "latency-agent-token-0123456789";

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_INCIDENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    // The receiver notes when each incident's firing message arrives.
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let sink = arrivals.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rx = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let sink = sink.clone();
        async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if v["event"] == "firing" {
                let subject = v["incident"]["subject"].as_str().unwrap_or_default().to_string();
                sink.lock().unwrap().entry(subject).or_insert_with(Instant::now);
            }
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let addr: SocketAddr = vakt_tests::loopback_addr();
    let mut cfg = format!(
        "listen = \"{addr}\"\ndata_dir = \"data\"\n[agents.bench]\ntoken_hash = \"{}\"\n\
         [receivers.hook]\nkind = \"webhook\"\nurl = {{ value = \"http://{rx}/\" }}\n[[routes]]\nreceivers = [\"hook\"]\n",
        token_hash(TOKEN)
    );
    for i in 0..n {
        cfg.push_str(&format!(
            "[checks.c{i}]\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nfail_after = 1\nagents = [\"bench\"]\n"
        ));
    }
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, cfg).unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let http = reqwest::Client::new();
    let now_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let check = format!("c{i}");
        let batch = serde_json::json!({"version": 1, "agent": "bench", "sequence": i + 1,
            "samples": [{"check": check, "timestamp_ms": now_ms(), "success": false, "error": "connection refused"}]});
        let sent = Instant::now();
        let resp = http.post(collector.url("/api/v1/ingest")).bearer_auth(TOKEN).json(&batch).send().await.unwrap();
        assert!(resp.status().is_success());
        let arrived = wait_for("the notification", Duration::from_secs(30), || {
            let arrivals = arrivals.clone();
            let check = check.clone();
            async move { arrivals.lock().unwrap().get(&check).copied() }
        })
        .await;
        latencies.push(arrived.duration_since(sent));
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1];
    println!("alert latency: failing sample pushed -> notification at the receiver, {n} incidents, group wait 500ms");
    println!(
        "  p50 {:.0} ms · p99 {:.0} ms (target < 1000 ms) · max {:.0} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies[n - 1].as_secs_f64() * 1e3
    );
}
