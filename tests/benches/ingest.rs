//! Ingest throughput: samples per second end to end (HTTP + gzip + decode + validation +
//! durable commit with check states and rollups) into the real collector, beside the raw
//! rusqlite prepared-insert rate of the same rows on the same disk, measured in the same run.
//!
//!     cargo bench -p vakt-tests --bench ingest
//!
//! BENCH_SAMPLES (default 1,000,000) samples in batches of BENCH_BATCH (default 5,000), pushed
//! by BENCH_AGENTS (default 4) concurrent agents. The bodies are encoded before the clock
//! starts, so the figure is the collector's, not the load generator's.
//!
//!     BENCH_STORE=postgres cargo bench -p vakt-tests --bench ingest
//!
//! does the same into PostgreSQL (Debian's, started by the bench as in the tests), beside a raw
//! `COPY` of the same rows, one per batch, into a table of the same database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use flate2::write::GzEncoder;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use vakt_tests::{proc_stats, token_hash, Collector};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

const CHECKS_PER_AGENT: usize = 50;

/// The same rows the collector stores, inserted with one prepared statement per transaction of
/// `batch` rows, WAL and synchronous=FULL like the collector: the disk's and SQLite's ceiling.
fn raw_rusqlite_rate(dir: &std::path::Path, total: usize, batch: usize) -> f64 {
    let mut conn = rusqlite::Connection::open(dir.join("raw.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE samples (id INTEGER PRIMARY KEY, check_id TEXT NOT NULL, agent TEXT NOT NULL,
         ts_ms INTEGER NOT NULL, success INTEGER NOT NULL, latency_s REAL, values_json TEXT, error TEXT);
         CREATE INDEX samples_by_check_time ON samples (check_id, ts_ms);",
    )
    .unwrap();
    let base = now_ms();
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO samples (check_id, agent, ts_ms, success, latency_s, values_json, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .unwrap();
            for i in n..(n + batch).min(total) {
                let check = format!("c{}", i % CHECKS_PER_AGENT);
                stmt.execute(rusqlite::params![
                    check,
                    "a0",
                    base + i as i64,
                    1,
                    0.012,
                    Some("{\"status_code\":200.0}"),
                    Option::<String>::None
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
        n += batch;
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The same rows with one `COPY ... FROM STDIN` per transaction of `batch` rows, into a table
/// like the collector's `samples` in the same database: PostgreSQL's ceiling on this machine.
fn raw_postgres_copy_rate(url: &str, total: usize, batch: usize) -> f64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "CREATE TABLE raw_samples (id bigserial PRIMARY KEY, check_id text NOT NULL, agent text NOT NULL,
             ts_ms bigint NOT NULL, success boolean NOT NULL, latency_s double precision, values_json text,
             error text, degraded boolean NOT NULL DEFAULT false);
             CREATE INDEX ON raw_samples (check_id, ts_ms); CREATE INDEX ON raw_samples (ts_ms);",
        )
        .unwrap();
    let base = now_ms();
    let started = Instant::now();
    let mut n = 0usize;
    while n < total {
        let mut tx = client.transaction().unwrap();
        let mut text = String::with_capacity(batch * 80);
        for i in n..(n + batch).min(total) {
            let ok = !i.is_multiple_of(97);
            text.push_str(&format!(
                "raw-c{}\traw\t{}\t{}\t0.012\t{{\"status_code\":{}}}\t\\N\tf\n",
                i % CHECKS_PER_AGENT,
                base + i as i64,
                if ok { "t" } else { "f" },
                if ok { 200 } else { 503 }
            ));
        }
        let mut w = tx
            .copy_in("COPY raw_samples (check_id, agent, ts_ms, success, latency_s, values_json, error, degraded) FROM STDIN")
            .unwrap();
        w.write_all(text.as_bytes()).unwrap();
        w.finish().unwrap();
        tx.commit().unwrap();
        n += batch;
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let total = env("BENCH_SAMPLES", 1_000_000);
    let batch = env("BENCH_BATCH", 5_000);
    let agents = env("BENCH_AGENTS", 4).max(1);
    let dir = tempfile::tempdir().unwrap();
    let postgres = (std::env::var("BENCH_STORE").as_deref() == Ok("postgres"))
        .then(|| tokio::task::block_in_place(vakt_tests::Postgres::start));

    let (raw, raw_what) = match &postgres {
        Some(pg) => (
            tokio::task::block_in_place(|| raw_postgres_copy_rate(&pg.url(), total, batch)),
            "raw PostgreSQL COPY, same rows, same database, one COPY per batch",
        ),
        None => (
            raw_rusqlite_rate(dir.path(), total, batch),
            "raw rusqlite prepared insert, same rows, same disk, same pragmas",
        ),
    };

    let addr: SocketAddr = vakt_tests::loopback_addr();
    let mut cfg = format!(
        "listen = \"{addr}\"\ndata_dir = \"data\"\nagent_push_rate = 0\nmax_batch_samples = {batch}\n\
         max_body_bytes = 67108864\n"
    );
    if let Some(pg) = &postgres {
        cfg.push_str(&format!("[store]\nkind = \"postgres\"\nurl = {{ value = \"{}\" }}\n", pg.url()));
    }
    for a in 0..agents {
        cfg.push_str(&format!(
            "[agents.a{a}]\ntoken_hash = \"{}\"\n",
            token_hash(&format!("ingest-bench-token-{a:04}"))
        ));
        for c in 0..CHECKS_PER_AGENT {
            cfg.push_str(&format!(
                "[checks.a{a}-c{c}]\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nagents = [\"a{a}\"]\n"
            ));
        }
    }
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, cfg).unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;

    // Every body encoded up front: gzip'd JSON as agents send it, a few failures and values.
    let per_agent = total / batch / agents;
    let base = now_ms() - 60_000;
    let bodies: Vec<Vec<Vec<u8>>> = (0..agents)
        .map(|a| {
            (0..per_agent)
                .map(|b| {
                    let samples: Vec<serde_json::Value> = (0..batch)
                        .map(|i| {
                            let n = b * batch + i;
                            let ok = !n.is_multiple_of(97);
                            serde_json::json!({
                                "check": format!("a{a}-c{}", n % CHECKS_PER_AGENT),
                                "timestamp_ms": base + (n / CHECKS_PER_AGENT) as i64,
                                "success": ok,
                                "latency_seconds": 0.012,
                                "values": {"status_code": if ok { 200.0 } else { 503.0 }},
                            })
                        })
                        .collect();
                    let json = serde_json::json!({"version": 1, "agent": format!("a{a}"), "sequence": b + 1, "samples": samples});
                    gzip(&serde_json::to_vec(&json).unwrap())
                })
                .collect()
        })
        .collect();
    let pushed = per_agent * agents * batch;
    let bytes: usize = bodies.iter().flatten().map(Vec::len).sum();

    let before = proc_stats(collector.proc.child.id());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (a, list) in bodies.into_iter().enumerate() {
        let url = collector.url("/api/v1/ingest");
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
            let token = format!("ingest-bench-token-{a:04}");
            let mut latencies = Vec::new();
            for body in list {
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let after = proc_stats(collector.proc.child.id());
    let stored = collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0) as usize;
    assert_eq!(stored, pushed, "every acknowledged sample committed");
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1];
    let rate = pushed as f64 / elapsed.as_secs_f64();

    println!(
        "ingest: {pushed} samples in {} gzip'd batches of {batch} from {agents} agents ({:.1} MiB on the wire)",
        pushed / batch,
        bytes as f64 / 1048576.0
    );
    println!("  end to end (HTTP + gzip + JSON + validation + durable commit): {rate:.0} samples/s");
    println!("  {raw_what}: {raw:.0} rows/s");
    println!("  ratio end to end / raw insert: {:.2}", rate / raw);
    println!(
        "  per batch: p50 {:.1} ms · p99 {:.1} ms · collector CPU {:.1} s for {:.1} s wall · peak RSS {:.1} MiB",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        after.cpu_seconds - before.cpu_seconds,
        elapsed.as_secs_f64(),
        after.peak_rss_kib as f64 / 1024.0
    );
}
