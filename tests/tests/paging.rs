//! Pagers with the real collector and agent: PagerDuty (Events API v2) and Opsgenie (Alert
//! API), each played by a local server that checks every request against the vendor's
//! documentation field by field and answers as the vendor does, including a rate limit (429
//! with Retry-After) and an outage (503). An outage is one trigger and one alert, the
//! acknowledgement in Vakt reaches both, the resolution closes both, and a SIGKILL of the
//! collector in between sends nothing twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Proc, Target, READ_TOKEN};

const WAIT: Duration = Duration::from_secs(40);
const AGENT_TOKEN: &str = "paging-agent-token-0123456789";
const ROUTING_KEY: &str = "R0UT1NGKEY0123456789abcdef012345";
const GENIE_KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";

/// A request the vendor accepted (answered 202), and how many were refused before.
#[derive(Clone, Debug)]
struct Accepted {
    path: String,
    body: Value,
}

#[derive(Default)]
struct Vendor {
    accepted: Vec<Accepted>,
    /// Every request, accepted or not: (path, status answered).
    seen: Vec<(String, u16)>,
    /// Problems with a request, against the vendor's documentation.
    violations: Vec<String>,
}

type Shared = Arc<Mutex<Vendor>>;

/// PagerDuty's Events API v2 (`POST /v2/enqueue`), as documented: JSON with routing_key,
/// event_action (trigger, acknowledge, resolve), dedup_key (at most 255 characters); a trigger
/// needs payload.summary (at most 1024), payload.source and payload.severity (critical, error,
/// warning, info). Answers 202 with status, message and dedup_key; 400 for an invalid event;
/// the first trigger gets 429 (the rate limit), which Vakt must try again.
fn pagerduty(headers: &HeaderMap, body: &[u8], v: &mut Vendor) -> (StatusCode, HeaderMap, Value) {
    let mut problems = Vec::new();
    if headers.get("content-type").and_then(|h| h.to_str().ok()) != Some("application/json") {
        problems.push("Content-Type is not application/json".to_string());
    }
    let event: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if event["routing_key"] != ROUTING_KEY {
        problems.push(format!("routing_key {}", event["routing_key"]));
    }
    let action = event["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        problems.push(format!("event_action {action:?}"));
    }
    match event["dedup_key"].as_str() {
        Some(k) if !k.is_empty() && k.len() <= 255 => {}
        other => problems.push(format!("dedup_key {other:?}")),
    }
    if action == "trigger" {
        let p = &event["payload"];
        match p["summary"].as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= 1024 => {}
            other => problems.push(format!("payload.summary {other:?}")),
        }
        if p["source"].as_str().is_none_or(str::is_empty) {
            problems.push("payload.source missing".into());
        }
        if !["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap_or("")) {
            problems.push(format!("payload.severity {}", p["severity"]));
        }
    }
    if !problems.is_empty() {
        v.violations.extend(problems.iter().map(|p| format!("PagerDuty: {p}")));
        let errors: Vec<Value> = problems.into_iter().map(Value::from).collect();
        return (
            StatusCode::BAD_REQUEST,
            HeaderMap::new(),
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
        );
    }
    let first_trigger = action == "trigger" && !v.seen.iter().any(|(p, _)| p == "/v2/enqueue");
    if first_trigger {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "1".parse().unwrap());
        return (
            StatusCode::TOO_MANY_REQUESTS,
            h,
            json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly."}),
        );
    }
    (
        StatusCode::ACCEPTED,
        HeaderMap::new(),
        json!({"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}),
    )
}

/// Opsgenie's Alert API, as documented: `Authorization: GenieKey <key>`; create at
/// `POST /v2/alerts` with message (required, at most 130 characters), alias (at most 512),
/// description (at most 15000), priority P1..P5; acknowledge and close at
/// `POST /v2/alerts/{alias}/acknowledge|close?identifierType=alias`. Answers 202 with result,
/// took and requestId; 401 without the key; the first create gets 503.
fn opsgenie(uri: &Uri, headers: &HeaderMap, body: &[u8], v: &mut Vendor) -> (StatusCode, HeaderMap, Value) {
    let accepted = json!({"result": "Request will be processed", "took": 0.01, "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"});
    if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some(&format!("GenieKey {GENIE_KEY}")) {
        v.violations.push("Opsgenie: no GenieKey authorization".into());
        return (StatusCode::UNAUTHORIZED, HeaderMap::new(), json!({"message": "Could not authenticate", "took": 0.0}));
    }
    let alert: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut problems = Vec::new();
    let path = uri.path();
    if path == "/v2/alerts" {
        match alert["message"].as_str() {
            Some(m) if !m.is_empty() && m.chars().count() <= 130 => {}
            other => problems.push(format!("message {other:?}")),
        }
        match alert["alias"].as_str() {
            Some(a) if !a.is_empty() && a.chars().count() <= 512 => {}
            other => problems.push(format!("alias {other:?}")),
        }
        if alert["description"].as_str().is_some_and(|d| d.chars().count() > 15_000) {
            problems.push("description longer than 15000".into());
        }
        if !["P1", "P2", "P3", "P4", "P5"].contains(&alert["priority"].as_str().unwrap_or("")) {
            problems.push(format!("priority {}", alert["priority"]));
        }
        if alert["details"].as_object().is_some_and(|d| d.values().any(|x| !x.is_string())) {
            problems.push("details values must be strings".into());
        }
    } else if path.starts_with("/v2/alerts/") && (path.ends_with("/acknowledge") || path.ends_with("/close")) {
        if uri.query() != Some("identifierType=alias") {
            problems.push(format!("query {:?}", uri.query()));
        }
    } else {
        problems.push(format!("no such endpoint {path}"));
    }
    if !problems.is_empty() {
        v.violations.extend(problems.iter().map(|p| format!("Opsgenie: {p}")));
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            HeaderMap::new(),
            json!({"message": problems.join("; "), "took": 0.0}),
        );
    }
    if path == "/v2/alerts" && !v.seen.iter().any(|(p, _)| p == "/v2/alerts") {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            HeaderMap::new(),
            json!({"message": "Service unavailable", "took": 0.0}),
        );
    }
    (StatusCode::ACCEPTED, HeaderMap::new(), accepted)
}

async fn vendors(listener: tokio::net::TcpListener) -> (Shared, Shared) {
    let (pd, og): (Shared, Shared) = (Arc::default(), Arc::default());
    let (pd2, og2) = (pd.clone(), og.clone());
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let (pd, og) = (pd2.clone(), og2.clone());
        async move {
            let path = uri.path().to_string();
            let vendor = if path == "/v2/enqueue" { pd } else { og };
            let mut v = vendor.lock().unwrap();
            let (status, h, answer) = if path == "/v2/enqueue" {
                pagerduty(&headers, &body, &mut v)
            } else {
                opsgenie(&uri, &headers, &body, &mut v)
            };
            v.seen.push((path.clone(), status.as_u16()));
            if status == StatusCode::ACCEPTED {
                let full = match uri.query() {
                    Some(q) => format!("{path}?{q}"),
                    None => path,
                };
                v.accepted.push(Accepted { path: full, body: serde_json::from_slice(&body).unwrap() });
            }
            (status, h, axum::Json(answer)).into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (pd, og)
}

fn accepted(v: &Shared) -> Vec<Accepted> {
    v.lock().unwrap().accepted.clone()
}

async fn start_collector(
    dir: &std::path::Path,
    ctoml: &std::path::Path,
    addr: SocketAddr,
    n: u32,
) -> vakt_tests::Collector {
    let log = dir.join(format!("collector-{n}.log"));
    vakt_tests::Collector::start_with_env(ctoml, addr, &log, &[("VAKT_TEST_PD_KEY", ROUTING_KEY)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_pages_once_is_acknowledged_and_resolved_at_both_pagers() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let vendor_addr = listener.local_addr().unwrap();
    let (pd, og) = vendors(listener).await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let key_file = dir.path().join("opsgenie.key");
    std::fs::write(&key_file, format!("{GENIE_KEY}\n")).unwrap();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
public_url = "https://vakt.example.test"
group_wait = "100ms"

[agents.edge]
token_hash = "{agent}"

[checks.shop-home]
kind = "http"
target = "http://{target}/"
interval = "200ms"
fail_after = 2
agents = ["edge"]

[services.shop]
criticality = 1
customers = ["acme"]
checks = ["shop-home"]

[receivers.pagerduty]
kind = "pagerduty"
url = {{ value = "http://{vendor_addr}/v2/enqueue" }}
routing_key = {{ env = "VAKT_TEST_PD_KEY" }}

[receivers.opsgenie]
kind = "opsgenie"
url = {{ value = "http://{vendor_addr}" }}
api_key = {{ file = "{key}" }}

[[routes]]
services = ["shop"]
receivers = ["pagerduty", "opsgenie"]
"#,
            agent = token_hash(AGENT_TOKEN),
            target = target.addr,
            key = key_file.display(),
        ),
    )
    .unwrap();
    vakt_tests::grant_reader(&ctoml);

    // A key from a missing environment variable stops the collector, naming the field.
    let (code, _, err) = vakt_tests::run_bin("vakt-collector", &["run", "--config", ctoml.to_str().unwrap()], None);
    assert_ne!(code, 0);
    assert!(
        err.contains("receiver \"pagerduty\": routing_key: environment variable VAKT_TEST_PD_KEY is not set"),
        "{err}"
    );

    let mut collector = start_collector(dir.path(), &ctoml, addr, 1).await;
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, AGENT_TOKEN, "");
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("shop-home").await;

    // The outage: one trigger, one alert, each after the vendor's refusal (429, then 503).
    target.set_status(500);
    wait_for("the trigger and the alert", WAIT, || async {
        (accepted(&pd).len() == 1 && accepted(&og).len() == 1).then_some(())
    })
    .await;
    let id = collector.get_json("/api/v1/incidents?status=open").await[0]["id"].as_i64().unwrap();
    let key = format!("vakt-incident-{id}");
    let trigger = &accepted(&pd)[0].body;
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], key.as_str());
    assert_eq!(trigger["payload"]["severity"], "critical", "P1 pages as critical: {trigger}");
    assert_eq!(trigger["payload"]["source"], "shop-home");
    assert_eq!(trigger["payload"]["class"], "check_down");
    assert_eq!(trigger["payload"]["group"], "shop");
    assert!(trigger["payload"]["summary"].as_str().unwrap().starts_with("[P1] shop-home is down"), "{trigger}");
    assert_eq!(trigger["payload"]["custom_details"]["customers"], json!(["acme"]));
    assert_eq!(trigger["links"][0]["href"], format!("https://vakt.example.test/incidents/{id}"));
    assert_eq!(trigger["client"], "Vakt");
    let refused: Vec<u16> = pd.lock().unwrap().seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(refused, [429, 202], "the rate limit was honoured and the trigger sent again");
    let alert = &accepted(&og)[0];
    assert_eq!(alert.path, "/v2/alerts");
    assert_eq!(alert.body["alias"], key.as_str());
    assert_eq!(alert.body["priority"], "P1", "Vakt's priority is Opsgenie's, one to one");
    assert_eq!(alert.body["entity"], "shop-home");
    assert_eq!(alert.body["source"], "Vakt");
    assert_eq!(alert.body["details"]["customers"], "acme");
    assert!(alert.body["tags"].as_array().unwrap().contains(&json!("shop")));
    let seen: Vec<u16> = og.lock().unwrap().seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(seen, [503, 202], "a 503 is tried again");

    // Killed after paging, before the acknowledgement: nothing is sent again after the restart.
    collector.proc.kill();
    collector = start_collector(dir.path(), &ctoml, addr, 2).await;

    let http = reqwest::Client::new();
    let ack = http
        .post(collector.url(&format!("/api/v1/incidents/{id}/ack")))
        .bearer_auth(READ_TOKEN)
        .json(&json!({"by": "alice", "note": "on it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200, "{}", ack.text().await.unwrap());
    wait_for("the acknowledgements", WAIT, || async {
        (accepted(&pd).len() == 2 && accepted(&og).len() == 2).then_some(())
    })
    .await;
    assert_eq!(
        accepted(&pd)[1].body,
        json!({"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": key})
    );
    let og_ack = &accepted(&og)[1];
    assert_eq!(og_ack.path, format!("/v2/alerts/{key}/acknowledge?identifierType=alias"));
    assert_eq!(og_ack.body["source"], "Vakt");
    assert!(og_ack.body["user"].as_str().unwrap().contains("alice"), "{}", og_ack.body);
    assert!(og_ack.body["note"].as_str().unwrap().contains("on it"), "{}", og_ack.body);

    // Recovery closes both.
    target.set_status(200);
    wait_for("the resolutions", WAIT, || async {
        (accepted(&pd).len() == 3 && accepted(&og).len() == 3).then_some(())
    })
    .await;
    assert_eq!(accepted(&pd)[2].body, json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": key}));
    assert_eq!(accepted(&og)[2].path, format!("/v2/alerts/{key}/close?identifierType=alias"));

    // Everything in the outbox is settled: one delivery per event per pager, nothing pending.
    let outbox = collector.get_json(&format!("/api/v1/notifications?incident={id}")).await;
    let mut events: Vec<(String, String, String)> = outbox
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["receiver"].as_str().unwrap().into(),
                n["event"].as_str().unwrap().into(),
                n["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    events.sort();
    let expected: Vec<(String, String, String)> = ["opsgenie", "pagerduty"]
        .iter()
        .flat_map(|r| {
            ["acknowledged", "firing", "resolved"].map(|e| (r.to_string(), e.to_string(), "delivered".to_string()))
        })
        .collect();
    assert_eq!(events, expected);
    for v in [&pd, &og] {
        assert_eq!(v.lock().unwrap().violations, Vec::<String>::new());
    }
    let actions: Vec<String> =
        accepted(&pd).iter().map(|a| a.body["event_action"].as_str().unwrap().to_string()).collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"], "paged once, never twice");
}
