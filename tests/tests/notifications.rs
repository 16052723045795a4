//! Notifications with the real collector: each receiver kind gets the payload its product
//! documents, webhooks are signed, failures are retried then marked failed, and messages
//! pending when the collector is killed go out after it restarts, once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vakt_tests::{free_port, token_hash, wait_for, Proc, Target};

const WAIT: Duration = Duration::from_secs(40);
const AGENT_TOKEN: &str = "notify-agent-token-0123456789";
const SIGNING_KEY: &str = "s3cret-signing-key";

#[derive(Clone, Debug)]
struct Received {
    path: String,
    signature: Option<String>,
    notification_id: Option<String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A receiver for every kind: records what arrives; /fail answers 500.
async fn receiver_on(listener: tokio::net::TcpListener) -> Arc<Mutex<Vec<Received>>> {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let sink = sink.clone();
        async move {
            if uri.path() == "/fail" {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
            let (signature, notification_id) = (header("x-vakt-signature"), header("x-vakt-notification-id"));
            sink.lock().unwrap().push(Received {
                path: uri.path().to_string(),
                signature,
                notification_id,
                body: body.to_vec(),
            });
            StatusCode::OK
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    got
}

fn of(got: &Arc<Mutex<Vec<Received>>>, path: &str) -> Vec<Received> {
    got.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receiver_gets_its_documented_payload_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rx = listener.local_addr().unwrap();
    let got = receiver_on(listener).await;
    let late_port = free_port(); // nothing listens here until later
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let key_file = dir.path().join("signing.key");
    std::fs::write(&key_file, format!("{SIGNING_KEY}\n")).unwrap();
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

[receivers.hook]
kind = "webhook"
url = {{ value = "http://{rx}/hook" }}
signing_secret = {{ file = "{key}" }}

[receivers.slack]
kind = "slack"
url = {{ env = "VAKT_TEST_SLACK_URL" }}

[receivers.teams]
kind = "teams"
url = {{ value = "http://{rx}/teams" }}
title = "{{{{ incident.priority }}}} {{{{ incident.subject }}}} {{{{ event }}}} for {{{{ customers | join(', ') }}}}"


[receivers.discord]
kind = "discord"
url = {{ value = "http://{rx}/discord" }}

[receivers.am]
kind = "alertmanager_webhook"
url = {{ value = "http://{rx}/am" }}

[receivers.broken]
kind = "webhook"
url = {{ value = "http://{rx}/fail" }}
max_attempts = 2

[receivers.late]
kind = "webhook"
url = {{ value = "http://127.0.0.1:{late_port}/late" }}

[[routes]]
services = ["shop"]
min_priority = "P2"
receivers = ["hook", "slack", "teams", "discord", "am", "broken", "late"]
"#,
            agent = token_hash(AGENT_TOKEN),
            target = target.addr,
            key = key_file.display(),
        ),
    )
    .unwrap();
    vakt_tests::grant_reader(&ctoml);
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, AGENT_TOKEN, "");

    // A secret from a missing environment variable stops the collector with its name.
    let (code, _, err) = vakt_tests::run_bin("vakt-collector", &["run", "--config", ctoml.to_str().unwrap()], None);
    assert_ne!(code, 0);
    assert!(err.contains("receiver \"slack\": url: environment variable VAKT_TEST_SLACK_URL is not set"), "{err}");

    let slack_url = format!("http://{rx}/slack");
    let mut collector = {
        let log = dir.path().join("c1.log");
        vakt_tests::Collector::start_with_env(&ctoml, addr, &log, &[("VAKT_TEST_SLACK_URL", &slack_url)]).await
    };
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("shop-home").await;

    target.set_status(500);
    wait_for("firing notifications", WAIT, || async {
        let n = ["/hook", "/slack", "/teams", "/discord", "/am"].iter().all(|p| !of(&got, p).is_empty());
        n.then_some(())
    })
    .await;

    // Generic webhook: signed, with the incident.
    let hook = &of(&got, "/hook")[0];
    let sig = hook.signature.clone().expect("signature header");
    assert_eq!(sig, format!("sha256={}", vakt_collector_hmac(SIGNING_KEY.as_bytes(), &hook.body)));
    let h = hook.json();
    assert_eq!(h["version"], "1");
    assert_eq!(h["event"], "firing");
    assert_eq!(h["incident"]["kind"], "check_down");
    assert_eq!(h["incident"]["subject"], "shop-home");
    assert_eq!(h["incident"]["priority"], "P1");
    assert_eq!(h["incident"]["services"], serde_json::json!(["shop"]));
    assert_eq!(h["incident"]["customers"], serde_json::json!(["acme"]));
    let id = h["incident"]["id"].as_i64().unwrap();
    assert_eq!(h["incident"]["url"], format!("https://vakt.example.test/incidents/{id}"));
    assert!(h["incident"]["title"].as_str().unwrap().contains("is down: HTTP 500"), "the short cause: {h}");
    // A stable id to deduplicate on, in the header and the body, named after the outbox entry.
    let outbox = collector.get_json(&format!("/api/v1/notifications?incident={id}")).await;
    let entry = outbox.as_array().unwrap().iter().find(|n| n["receiver"] == "hook" && n["event"] == "firing").unwrap();
    let expected_id = format!("vakt-{}", entry["id"]);
    assert_eq!(h["notification_id"], expected_id.as_str());
    assert_eq!(hook.notification_id.as_deref(), Some(expected_id.as_str()));
    for path in ["/slack", "/teams", "/discord", "/am"] {
        let other = of(&got, path)[0].notification_id.clone().expect("every HTTP receiver gets the id header");
        assert!(other.starts_with("vakt-") && other != expected_id, "{path}: its own outbox entry: {other}");
    }

    // Slack: fallback text and Block Kit blocks.
    let s = of(&got, "/slack")[0].json();
    assert!(s["text"].as_str().unwrap().starts_with("[P1] shop-home is down"), "{s}");
    assert_eq!(s["blocks"][0]["type"], "header");
    assert_eq!(s["blocks"][0]["text"]["type"], "plain_text");
    assert_eq!(s["blocks"][1]["type"], "section");
    assert_eq!(s["blocks"][1]["text"]["type"], "mrkdwn");
    assert!(
        s["blocks"][1]["text"]["text"].as_str().unwrap().contains("Impact: services: shop; customers: acme"),
        "{s}"
    );
    assert_eq!(s["blocks"][2]["fields"][0]["type"], "mrkdwn");
    assert_eq!(s["blocks"][3]["elements"][0]["url"], format!("https://vakt.example.test/incidents/{id}"));

    // Teams Workflows: a message with an Adaptive Card attachment.
    let t = of(&got, "/teams")[0].json();
    assert_eq!(t["type"], "message");
    assert_eq!(t["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &t["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
    assert_eq!(card["body"][0]["type"], "TextBlock");
    assert_eq!(card["body"][0]["text"], "P1 shop-home firing for acme", "the receiver's title template");
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");

    // Discord: content and an embed.
    let d = of(&got, "/discord")[0].json();
    assert!(d["content"].as_str().unwrap().starts_with("[P1] shop-home is down"), "{d}");
    assert_eq!(d["embeds"][0]["fields"][0]["name"], "Priority");
    assert_eq!(d["embeds"][0]["url"], format!("https://vakt.example.test/incidents/{id}"));
    assert!(d["embeds"][0]["description"].as_str().unwrap().contains("Impact"), "{d}");

    // Alertmanager webhook, version 4, field by field.
    let a = of(&got, "/am")[0].json();
    for field in [
        "version",
        "groupKey",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    ] {
        assert!(a.get(field).is_some(), "alertmanager payload lacks {field}: {a}");
    }
    assert_eq!(a["version"], "4");
    assert_eq!(a["status"], "firing");
    assert_eq!(a["receiver"], "am");
    assert_eq!(a["externalURL"], "https://vakt.example.test");
    let alert = &a["alerts"][0];
    for field in ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"] {
        assert!(alert.get(field).is_some(), "alert lacks {field}: {alert}");
    }
    assert_eq!(alert["labels"]["alertname"], "vakt_check_down");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");

    // The incident's timeline says who was told.
    let timeline = wait_for("notified entries in the timeline", WAIT, || async {
        let i = collector.get_json(&format!("/api/v1/incidents/{id}")).await;
        let t = i["timeline"].as_array().unwrap().clone();
        (t.iter().filter(|e| e["kind"] == "notified").count() >= 5).then_some(t)
    })
    .await;
    assert!(timeline.iter().any(|e| e["message"] == "slack notified (firing)"), "{timeline:?}");

    // The broken receiver: retried, then failed, visible in the API and the metrics.
    wait_for("the broken receiver to fail", WAIT, || async {
        let list = collector.get_json(&format!("/api/v1/notifications?incident={id}")).await;
        list.as_array().unwrap().iter().find(|n| n["receiver"] == "broken" && n["status"] == "failed").cloned()
    })
    .await;
    assert_eq!(collector.metric("vakt_notifications_total{outcome=\"failed\",receiver=\"broken\"}").await, Some(1.0));
    assert!(
        collector.metric("vakt_notifications_total{outcome=\"retried\",receiver=\"broken\"}").await.unwrap() >= 1.0
    );

    // The late receiver is still unreachable; kill the collector with its message pending.
    let late = collector.get_json(&format!("/api/v1/notifications?incident={id}")).await;
    assert!(late.as_array().unwrap().iter().any(|n| n["receiver"] == "late" && n["status"] == "pending"), "{late}");
    collector.proc.kill();
    let late_listener = tokio::net::TcpListener::bind(("127.0.0.1", late_port)).await.unwrap();
    let late_got = receiver_on(late_listener).await;
    let collector = {
        let log = dir.path().join("c2.log");
        let proc = std::process::Command::new(vakt_tests::bin("vakt-collector"))
            .args(["run", "--config", ctoml.to_str().unwrap()])
            .env("VAKT_TEST_SLACK_URL", &slack_url)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        vakt_tests::Collector::adopt(Proc { child: proc, log }, &ctoml, addr).await
    };
    wait_for("the pending message after the restart", WAIT, || async {
        (!of(&late_got, "/late").is_empty()).then_some(())
    })
    .await;

    // Recovery: resolved messages, once per receiver that got the firing one.
    target.set_status(200);
    wait_for("resolved notifications", WAIT, || async {
        let hooks = of(&got, "/hook");
        (hooks.len() >= 2).then_some(())
    })
    .await;
    let resolved = of(&got, "/hook")[1].json();
    assert_eq!(resolved["event"], "resolved");
    assert!(resolved["incident"]["duration_seconds"].as_f64().unwrap() > 0.0);
    wait_for("alertmanager resolved", WAIT, || async { (of(&got, "/am").len() >= 2).then_some(()) }).await;
    let am = of(&got, "/am")[1].json();
    assert_eq!(am["status"], "resolved");
    assert_ne!(am["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    wait_for("late resolved", WAIT, || async { (of(&late_got, "/late").len() >= 2).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // a window for any duplicate to show up
    let late_events: Vec<String> =
        of(&late_got, "/late").iter().map(|r| r.json()["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(late_events, ["firing", "resolved"], "each message once");
    assert_eq!(of(&got, "/hook").len(), 2, "each message once");
    drop(collector);
}

/// HMAC-SHA256 computed independently of the collector (RFC 2104 over sha2).
fn vakt_collector_hmac(key: &[u8], body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = key.to_vec();
    k.resize(64, 0);
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).chain(body.iter().copied()).collect();
    let inner = Sha256::digest(&inner);
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner.iter().copied()).collect();
    hex_encode(&Sha256::digest(&outer))
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_incidents_repeat_and_escalate_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rx = listener.local_addr().unwrap();
    let got = receiver_on(listener).await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let alice = "alice-token-0123456789abcdef";
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
group_wait = "100ms"
repeat_interval = "1s"

[api_tokens.alice]
token_hash = "{alice_hash}"

[agents.edge]
token_hash = "{agent}"

[checks.web]
kind = "http"
target = "http://{target}/"
interval = "200ms"
fail_after = 2
agents = ["edge"]

[receivers.oncall]
kind = "webhook"
url = {{ value = "http://{rx}/oncall" }}

[receivers.manager]
kind = "webhook"
url = {{ value = "http://{rx}/manager" }}

[[routes]]
receivers = ["oncall"]
escalate_after = "2s"
escalate_to = ["manager"]
"#,
            alice_hash = token_hash(alice),
            agent = token_hash(AGENT_TOKEN),
            target = target.addr
        ),
    )
    .unwrap();
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, AGENT_TOKEN, "");
    let collector = vakt_tests::Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("web").await;

    target.set_status(500);
    wait_for("a repeat to on-call", WAIT, || async { (of(&got, "/oncall").len() >= 2).then_some(()) }).await;
    wait_for("the escalation to the manager", WAIT, || async { (!of(&got, "/manager").is_empty()).then_some(()) })
        .await;
    let id = of(&got, "/oncall")[0].json()["incident"]["id"].as_i64().unwrap();
    assert!(of(&got, "/oncall").iter().all(|r| r.json()["event"] == "firing"), "a repeat says the same");

    // Acknowledged: no more repeats (observed over several repeat intervals).
    let http = reqwest::Client::new();
    let ack = http.post(collector.url(&format!("/api/v1/incidents/{id}/ack"))).bearer_auth(alice).send().await.unwrap();
    assert_eq!(ack.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await; // let anything already due go out
    let (oncall_after_ack, manager_after_ack) = (of(&got, "/oncall").len(), of(&got, "/manager").len());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(of(&got, "/oncall").len(), oncall_after_ack, "no repeats after the acknowledgement");
    assert_eq!(of(&got, "/manager").len(), manager_after_ack, "no repeats to the escalation either");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_holds_notifications_back_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rx = listener.local_addr().unwrap();
    let got = receiver_on(listener).await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let alice = "alice-token-0123456789abcdef";
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\ngroup_wait = \"100ms\"\n[api_tokens.alice]\ntoken_hash = \"{}\"\n\
             [agents.edge]\ntoken_hash = \"{}\"\n[checks.web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"200ms\"\nfail_after = 2\nagents = [\"edge\"]\n\
             [receivers.oncall]\nkind = \"webhook\"\nurl = {{ value = \"http://{rx}/oncall\" }}\n[[routes]]\nreceivers = [\"oncall\"]\n",
            token_hash(alice),
            token_hash(AGENT_TOKEN),
            target.addr
        ),
    )
    .unwrap();
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, AGENT_TOKEN, "");
    let collector = vakt_tests::Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));

    let http = reqwest::Client::new();
    let until = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(1)).unwrap().to_string();
    let body = serde_json::json!({"matchers": {"check": "web"}, "ends_at": until, "comment": "planned restart"});
    let refused = http.post(collector.url("/api/v1/silences")).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let created = http.post(collector.url("/api/v1/silences")).bearer_auth(alice).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let silences = collector.get_json("/api/v1/silences").await;
    assert_eq!(silences[0]["author"], "alice");
    assert_eq!(silences[0]["kind"], "check_down");

    collector.wait_up("web").await;
    target.set_status(500);
    let n = wait_for("a suppressed notification", WAIT, || async {
        let list = collector.get_json("/api/v1/notifications").await;
        list.as_array().unwrap().iter().find(|n| n["status"] == "suppressed").cloned()
    })
    .await;
    assert!(n["last_error"].as_str().unwrap().starts_with("silenced by alice"), "{n}");
    target.set_status(200);
    wait_for("the resolution, recorded", WAIT, || async {
        let list = collector.get_json("/api/v1/notifications").await;
        list.as_array().unwrap().iter().find(|n| n["event"] == "resolved" && n["status"] == "suppressed").cloned()
    })
    .await;
    assert!(of(&got, "/oncall").is_empty(), "nothing went out during the silence");
}

/// A mass outage: two checks fail together and each receiver gets one message telling of both,
/// then one message for both resolutions; every notification is still recorded one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_due_together_go_out_as_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rx = listener.local_addr().unwrap();
    let got = receiver_on(listener).await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
group_wait = "1s"

[agents.edge]
token_hash = "{agent}"

[checks.shop-web]
kind = "http"
target = "http://{target}/"
interval = "200ms"
fail_after = 2
agents = ["edge"]

[checks.shop-api]
kind = "http"
target = "http://{target}/api"
interval = "200ms"
fail_after = 2
agents = ["edge"]

[services.shop]
checks = ["shop-web", "shop-api"]

[receivers.hook]
kind = "webhook"
url = {{ value = "http://{rx}/hook" }}

[receivers.am]
kind = "alertmanager_webhook"
url = {{ value = "http://{rx}/am" }}

[[routes]]
receivers = ["hook", "am"]
"#,
            agent = token_hash(AGENT_TOKEN),
            target = target.addr
        ),
    )
    .unwrap();
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, AGENT_TOKEN, "");
    let collector = vakt_tests::Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("shop-web").await;
    collector.wait_up("shop-api").await;

    target.set_status(503);
    wait_for("the grouped message", WAIT, || async { (!of(&got, "/hook").is_empty()).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // room for a second message, if any
    let hooks = of(&got, "/hook");
    assert_eq!(hooks.len(), 1, "one message for both incidents");
    let h = hooks[0].json();
    let mut subjects: Vec<String> =
        h["incidents"].as_array().unwrap().iter().map(|i| i["subject"].as_str().unwrap().to_string()).collect();
    subjects.sort();
    assert_eq!(subjects, ["shop-api", "shop-web"], "{h}");
    assert!(h["title"].as_str().unwrap().contains("2 incidents"), "{h}");
    let am = of(&got, "/am");
    assert_eq!(am.len(), 1);
    let a = am[0].json();
    assert_eq!(a["alerts"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["commonLabels"]["service"], "shop");
    assert_eq!(a["status"], "firing");

    // Each incident's timeline still says it was notified.
    let incidents = collector.get_json("/api/v1/incidents").await;
    for i in incidents.as_array().unwrap() {
        let id = i["id"].as_i64().unwrap();
        let rows = collector.get_json(&format!("/api/v1/notifications?incident={id}")).await;
        assert_eq!(rows.as_array().unwrap().iter().filter(|n| n["status"] == "delivered").count(), 2, "{rows}");
    }

    target.set_status(200);
    wait_for("the grouped resolution", WAIT, || async { (of(&got, "/hook").len() >= 2).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hooks = of(&got, "/hook");
    assert_eq!(hooks.len(), 2, "one resolution message for both");
    let r = hooks[1].json();
    assert_eq!(r["event"], "resolved");
    assert_eq!(r["incidents"].as_array().unwrap().len(), 2, "{r}");
    let am = of(&got, "/am");
    assert_eq!(am.len(), 2);
    assert_eq!(am[1].json()["status"], "resolved");
}
