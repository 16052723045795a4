//! The ingest API against the real collector binary: bad tokens, bad bodies and replays get
//! clear answers and never take the collector down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use flate2::write::GzEncoder;
use std::io::Write;
use std::net::SocketAddr;
use vakt_tests::{token_hash, Collector};

struct Setup {
    _dir: tempfile::TempDir,
    collector: Collector,
    http: reqwest::Client,
}

const TOKEN_A: &str = "token-for-agent-a-0123456789";
const TOKEN_B: &str = "token-for-agent-b-0123456789";

async fn setup() -> Setup {
    setup_with("").await
}

async fn setup_with(extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\nmax_body_bytes = 65536\nmax_batch_samples = 100\n{extra}\n\
             [agents.a]\ntoken_hash = \"{}\"\nlabels = {{ role = \"web\" }}\n\
             [agents.b]\ntoken_hash = \"{}\"\n\
             [checks.web]\nkind = \"http\"\ntarget = \"http://127.0.0.1:9/\"\nselector = \"role=web\"\n",
            token_hash(TOKEN_A),
            token_hash(TOKEN_B)
        ),
    )
    .unwrap();
    let collector = Collector::start(&cfg, addr, &dir.path().join("collector.log")).await;
    Setup { _dir: dir, collector, http: reqwest::Client::new() }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn batch(agent: &str, seq: u64, n: usize) -> serde_json::Value {
    let samples: Vec<_> = (0..n)
        .map(|i| serde_json::json!({"check": "web", "timestamp_ms": now_ms() - 1000 + i as i64, "success": true, "latency_seconds": 0.01}))
        .collect();
    serde_json::json!({"version": 1, "agent": agent, "sequence": seq, "samples": samples})
}

impl Setup {
    async fn post(&self, token: Option<&str>, body: Vec<u8>, gzip: bool) -> (u16, serde_json::Value) {
        let mut req = self.http.post(self.collector.url("/api/v1/ingest")).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if gzip {
            req = req.header("content-encoding", "gzip");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    async fn healthy(&self) {
        let r = self.http.get(self.collector.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "collector must keep serving");
    }
}

#[tokio::test]
async fn bad_tokens_get_401_and_an_agent_cannot_push_for_another_403() {
    let s = setup().await;
    let body = serde_json::to_vec(&batch("a", 1, 1)).unwrap();
    let (status, err) = s.post(None, body.clone(), false).await;
    assert_eq!(status, 401);
    assert!(err["error"].as_str().unwrap().contains("missing bearer token"));
    let (status, err) = s.post(Some("wrong"), body.clone(), false).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"], "token is not valid for any agent");
    let (status, err) = s.post(Some(TOKEN_B), body.clone(), false).await;
    assert_eq!(status, 403, "b's token must not push for a");
    assert_eq!(err["error"], "this token belongs to agent \"b\"; it cannot push for \"a\"");
    let rejected =
        |reason: &str| s.collector.metric_owned(format!("vakt_ingest_rejected_total{{reason=\"{reason}\"}}"));
    assert_eq!(rejected("unauthorized").await, Some(2.0));
    assert_eq!(rejected("forbidden").await, Some(1.0));
    assert_eq!(s.collector.metric("vakt_ingest_samples_total").await, Some(0.0));
    s.healthy().await;
}

#[tokio::test]
async fn malformed_input_gets_400_with_a_reason_and_the_collector_keeps_serving() {
    let s = setup().await;
    let cases: Vec<(Vec<u8>, bool, &str)> = vec![
        (b"{not json".to_vec(), false, "batch is not valid JSON"),
        (br#"{"version":1,"agent":"a","sequence":1}"#.to_vec(), false, "missing field `samples`"),
        (br#"{"version":9,"agent":"a","sequence":1,"samples":[]}"#.to_vec(), false, "protocol version 9 is not supported"),
        (b"\x1f\x8b garbage".to_vec(), true, "body is not valid gzip"),
        (
            serde_json::to_vec(&serde_json::json!({"version":1,"agent":"a","sequence":1,"samples":[{"check":"bad id!","timestamp_ms":now_ms(),"success":true}]})).unwrap(),
            false,
            "check id must be",
        ),
        (
            serde_json::to_vec(&serde_json::json!({"version":1,"agent":"a","sequence":1,"samples":[{"check":"web","timestamp_ms":now_ms() + 3_600_000,"success":true}]})).unwrap(),
            false,
            "in the future",
        ),
        (
            serde_json::to_vec(&serde_json::json!({"version":1,"agent":"a","sequence":1,"samples":[{"check":"web","timestamp_ms":now_ms(),"success":true,"values":{"x".repeat(200): 1.0}}]})).unwrap(),
            false,
            "longer than 128 bytes",
        ),
        (
            serde_json::to_vec(&serde_json::json!({"version":1,"agent":"a","sequence":1,"samples":[{"check":"web","timestamp_ms":now_ms(),"success":true,"values":(0..65).map(|i| (format!("v{i}"), serde_json::json!(1.0))).collect::<serde_json::Map<String, serde_json::Value>>()}]})).unwrap(),
            false,
            "65 values; the limit is 64",
        ),
    ];
    for (body, gzip, reason) in cases {
        let (status, err) = s.post(Some(TOKEN_A), body, gzip).await;
        assert_eq!(status, 400, "{reason}: {err}");
        assert!(err["error"].as_str().unwrap().contains(reason), "want {reason:?}, got {err}");
        s.healthy().await;
    }
    // Too big: 413, before or after decompression.
    let (status, _) = s.post(Some(TOKEN_A), serde_json::to_vec(&batch("a", 1, 101)).unwrap(), false).await;
    assert_eq!(status, 413);
    let (status, _) = s.post(Some(TOKEN_A), vec![b' '; 100_000], false).await;
    assert_eq!(status, 413);
    s.healthy().await;
    assert_eq!(s.collector.metric("vakt_ingest_samples_total").await, Some(0.0), "nothing half-stored");
}

#[tokio::test]
async fn a_flooding_agent_gets_429_with_retry_after_and_other_agents_are_served() {
    let s = setup_with("agent_push_rate = 1").await; // 1 push per second, a burst of 2
    let mut statuses = Vec::new();
    for seq in 1..=5 {
        let resp = s
            .http
            .post(s.collector.url("/api/v1/ingest"))
            .bearer_auth(TOKEN_A)
            .body(serde_json::to_vec(&batch("a", seq, 1)).unwrap())
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert_eq!(resp.headers()["retry-after"], "1", "whole seconds to wait");
            let body: serde_json::Value = resp.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("faster than agent_push_rate"), "{body}");
        }
    }
    assert_eq!(&statuses[..2], [200, 200], "the burst is allowed: {statuses:?}");
    assert!(statuses[2..].iter().all(|s| *s == 429), "then 429: {statuses:?}");
    // Another agent has its own allowance.
    let (status, _) = s.post(Some(TOKEN_B), serde_json::to_vec(&batch("b", 1, 0)).unwrap(), false).await;
    assert_eq!(status, 200);
    assert_eq!(s.collector.metric("vakt_ingest_rejected_total{reason=\"rate_limited\"}").await, Some(3.0));
    // After the wait it asked for, the agent is admitted again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = s.post(Some(TOKEN_A), serde_json::to_vec(&batch("a", 6, 1)).unwrap(), false).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn gzip_batches_are_accepted_and_a_replay_is_stored_once() {
    let s = setup().await;
    let json = serde_json::to_vec(&batch("a", 42, 5)).unwrap();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).unwrap();
    let gz = gz.finish().unwrap();
    let (status, ack) = s.post(Some(TOKEN_A), gz.clone(), true).await;
    assert_eq!(status, 200, "{ack}");
    let generation = ack["config_generation"].as_str().expect("the configuration's generation").to_string();
    let expected = |accepted: u64, duplicate: bool| serde_json::json!({"sequence": 42, "accepted": accepted, "duplicate": duplicate, "config_generation": generation});
    assert_eq!(ack, expected(5, false));
    let (status, ack) = s.post(Some(TOKEN_A), gz, true).await;
    assert_eq!(status, 200);
    assert_eq!(ack, expected(0, true), "the same configuration, the replay recognised");
    assert_eq!(s.collector.metric("vakt_ingest_samples_total").await, Some(5.0));
    assert_eq!(s.collector.metric("vakt_ingest_batches_total{outcome=\"duplicate\"}").await, Some(1.0));
    assert_eq!(s.collector.metric("vakt_check_up{check=\"web\"}").await, Some(1.0));

    // Values the agent measured surface where they have a metric: certificate days left.
    let mut with_cert = batch("a", 43, 1);
    with_cert["samples"][0]["values"] = serde_json::json!({"cert_days_left": 42.5});
    let (status, _) = s.post(Some(TOKEN_A), serde_json::to_vec(&with_cert).unwrap(), false).await;
    assert_eq!(status, 200);
    assert_eq!(s.collector.metric("vakt_check_cert_days_left{check=\"web\"}").await, Some(42.5));
}

#[tokio::test]
async fn assignments_need_the_agents_own_token_and_follow_selectors() {
    let s = setup().await;
    let get = |agent: &str, token: &str| {
        s.http.get(s.collector.url(&format!("/api/v1/agents/{agent}/checks"))).bearer_auth(token).send()
    };
    let a: serde_json::Value = get("a", TOKEN_A).await.unwrap().json().await.unwrap();
    assert_eq!(a["checks"][0]["id"], "web", "selector role=web matches agent a");
    assert_eq!(a["checks"][0]["interval_ms"], 30_000);
    let b: serde_json::Value = get("b", TOKEN_B).await.unwrap().json().await.unwrap();
    assert!(b["checks"].as_array().unwrap().is_empty());
    assert_eq!(get("a", TOKEN_B).await.unwrap().status(), 401);
}

#[tokio::test]
async fn collector_exits_cleanly_on_sigterm_and_keeps_what_it_acknowledged() {
    let mut s = setup().await;
    let (status, _) = s.post(Some(TOKEN_A), serde_json::to_vec(&batch("a", 7, 3)).unwrap(), false).await;
    assert_eq!(status, 200);
    s.collector.proc.signal("TERM");
    let exit = s.collector.proc.wait_exit(std::time::Duration::from_secs(15));
    assert!(exit.success(), "{exit:?}");
    assert!(s.collector.proc.log_text().contains("collector stopped"));
    // Same data directory, new process: the acknowledged samples are there.
    let collector = Collector::start(&s.collector.config, s.collector.addr, &s._dir.path().join("again.log")).await;
    let samples = collector.get_json("/api/v1/samples?check=web").await;
    assert_eq!(samples.as_array().unwrap().len(), 3);
}
