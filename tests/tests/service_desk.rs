//! Service desks with the real collector and agent: ServiceNow (Table API, `incident` table)
//! and Jira (REST API v2), each played by a local server that keeps its tickets, checks every
//! request against the vendor's documentation (method, path, Basic authentication, body) and
//! answers as the vendor does — including a 502 after the ticket was created (the answer lost)
//! and a 429. An outage is one ticket in each, the acknowledgement and a note reach it, the
//! recovery resolves it, a SIGKILL in between creates nothing twice, and the ticket number is
//! on the Vakt incident.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Proc, Target, READ_TOKEN};

const WAIT: Duration = Duration::from_secs(40);
const AGENT_TOKEN: &str = "desk-agent-token-0123456789";

#[derive(Default)]
struct Desks {
    /// ServiceNow: sys_id → record.
    sn: Vec<Value>,
    sn_posts: u32,
    /// Jira: key → (fields, comments, transitions made).
    jira: Vec<(String, Value, Vec<String>, Vec<String>)>,
    jira_posts: u32,
    violations: Vec<String>,
}

type Shared = Arc<Mutex<Desks>>;

fn basic(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?.strip_prefix("Basic ")?;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v).ok()?).ok()
}

fn query(uri: &Uri) -> HashMap<String, String> {
    url_params(uri.query().unwrap_or(""))
}

fn url_params(q: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{q}")).unwrap().query_pairs().into_owned().collect()
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// ServiceNow's Table API for `incident`, as documented: Basic authentication, JSON in and
/// out (`Accept: application/json`), `sysparm_query` (`correlation_id=...`), `sysparm_limit`;
/// POST answers 201 with `result` (sys_id, number); PATCH `/incident/{sys_id}` updates,
/// `work_notes` appending to the journal.
fn servicenow(d: &mut Desks, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    if basic(headers).as_deref() != Some("vakt:sn-secret") {
        d.violations.push(format!("ServiceNow {method} {uri}: Basic authentication"));
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": "User Not Authenticated"}, "status": "failure"}),
        );
    }
    if headers.get("accept").and_then(|h| h.to_str().ok()) != Some("application/json") {
        d.violations.push(format!("ServiceNow {method} {uri}: Accept"));
    }
    let path = uri.path();
    let q = query(uri);
    match (method.as_str(), path) {
        ("GET", "/api/now/table/incident") => {
            let wanted = q.get("sysparm_query").and_then(|s| s.strip_prefix("correlation_id=")).unwrap_or("");
            if q.get("sysparm_limit").map(String::as_str) != Some("1") {
                d.violations.push("ServiceNow lookup without sysparm_limit=1".into());
            }
            let found: Vec<Value> =
                d.sn.iter()
                    .filter(|r| r["correlation_id"] == wanted)
                    .map(|r| json!({"sys_id": r["sys_id"], "number": r["number"]}))
                    .collect();
            reply(StatusCode::OK, json!({ "result": found }))
        }
        ("POST", "/api/now/table/incident") => {
            let mut rec: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let mut problems = Vec::new();
            if rec["short_description"].as_str().is_none_or(|s| s.is_empty() || s.chars().count() > 160) {
                problems.push("short_description");
            }
            for f in ["impact", "urgency"] {
                if !["1", "2", "3"].contains(&rec[f].as_str().unwrap_or("")) {
                    problems.push(f);
                }
            }
            if rec["correlation_id"].as_str().is_none() {
                problems.push("correlation_id");
            }
            if q.get("sysparm_input_display_value").map(String::as_str) != Some("true") {
                problems.push("sysparm_input_display_value (assignment_group and cmdb_ci are names)");
            }
            if !problems.is_empty() {
                d.violations.push(format!("ServiceNow create: {problems:?}"));
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"message": "Invalid fields"}, "status": "failure"}),
                );
            }
            d.sn_posts += 1;
            let n = d.sn.len() + 1;
            rec["sys_id"] = json!(format!("9d385017c611228701d22104cc95c{n:03}"));
            rec["number"] = json!(format!("INC00100{n:02}"));
            rec["state"] = json!("1");
            rec["work_notes_journal"] = json!([]);
            d.sn.push(rec.clone());
            if d.sn_posts == 1 {
                // Created, but the answer is lost on the way back (a proxy's 502).
                return reply(StatusCode::BAD_GATEWAY, json!({"error": "bad gateway"}));
            }
            reply(StatusCode::CREATED, json!({ "result": rec }))
        }
        ("PATCH", p) if p.starts_with("/api/now/table/incident/") => {
            let sys_id = p.rsplit('/').next().unwrap_or("");
            let update: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(rec) = d.sn.iter_mut().find(|r| r["sys_id"] == sys_id) else {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"error": {"message": "No Record found"}, "status": "failure"}),
                );
            };
            for (k, v) in update.as_object().cloned().unwrap_or_default() {
                if k == "work_notes" {
                    rec["work_notes_journal"].as_array_mut().unwrap().push(v);
                } else {
                    rec[k.as_str()] = v;
                }
            }
            let rec = rec.clone();
            reply(StatusCode::OK, json!({ "result": rec }))
        }
        _ => {
            d.violations.push(format!("ServiceNow: no such endpoint {method} {path}"));
            reply(StatusCode::BAD_REQUEST, json!({"error": {"message": "Invalid URI"}}))
        }
    }
}

/// Jira's REST API v2, as documented: Basic authentication with the account's email and an
/// API token; `GET /rest/api/2/search/jql` (jql, fields, maxResults) answers `issues`;
/// `POST /rest/api/2/issue` with `fields` (project.key, issuetype.name, summary) answers 201
/// with id, key, self; comments are `{"body": ...}`; a transition is `{"transition": {"id"}}`,
/// answered 204. The first create is refused with 429 and Retry-After.
fn jira(d: &mut Desks, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    if basic(headers).as_deref() != Some("vakt@example.com:jira-api-token") {
        d.violations.push(format!("Jira {method} {uri}: Basic authentication"));
        return reply(StatusCode::UNAUTHORIZED, json!({"errorMessages": ["You are not authenticated."]}));
    }
    let path = uri.path().trim_start_matches("/jira");
    let q = query(uri);
    let json_body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match (method.as_str(), path) {
        ("GET", "/rest/api/2/search/jql") => {
            let jql = q.get("jql").cloned().unwrap_or_default();
            let label = jql.strip_prefix("labels = \"").and_then(|s| s.strip_suffix('"')).unwrap_or("");
            let issues: Vec<Value> = d
                .jira
                .iter()
                .filter(|(_, f, _, _)| f["labels"].as_array().is_some_and(|l| l.contains(&json!(label))))
                .map(|(k, _, _, _)| json!({"id": "10000", "key": k}))
                .collect();
            reply(StatusCode::OK, json!({ "issues": issues, "isLast": true }))
        }
        ("POST", "/rest/api/2/issue") => {
            let f = &json_body["fields"];
            let ok = f["project"]["key"] == "OPS"
                && f["issuetype"]["name"] == "Incident"
                && f["summary"].as_str().is_some_and(|s| !s.is_empty() && s.chars().count() <= 255);
            if !ok {
                d.violations.push(format!("Jira create: {json_body}"));
                return reply(StatusCode::BAD_REQUEST, json!({"errorMessages": [], "errors": {"summary": "required"}}));
            }
            d.jira_posts += 1;
            if d.jira_posts == 1 {
                let mut r = reply(StatusCode::TOO_MANY_REQUESTS, json!({"errorMessages": ["Rate limit exceeded."]}));
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                return r;
            }
            let key = format!("OPS-{}", d.jira.len() + 1);
            d.jira.push((key.clone(), f.clone(), Vec::new(), Vec::new()));
            reply(
                StatusCode::CREATED,
                json!({"id": "10001", "key": key, "self": format!("http://jira/rest/api/2/issue/{key}")}),
            )
        }
        (m, p) if p.starts_with("/rest/api/2/issue/") => {
            let rest = p.trim_start_matches("/rest/api/2/issue/");
            let (key, what) = rest.split_once('/').unwrap_or((rest, ""));
            let Some(issue) = d.jira.iter_mut().find(|(k, _, _, _)| k == key) else {
                return reply(StatusCode::NOT_FOUND, json!({"errorMessages": ["Issue does not exist"]}));
            };
            match (m, what) {
                ("POST", "comment") => {
                    let Some(text) = json_body["body"].as_str() else {
                        return reply(StatusCode::BAD_REQUEST, json!({"errors": {"body": "required"}}));
                    };
                    issue.2.push(text.to_string());
                    reply(StatusCode::CREATED, json!({"id": "10100", "body": text}))
                }
                ("GET", "transitions") => reply(
                    StatusCode::OK,
                    json!({"transitions": [{"id": "11", "name": "In Progress"}, {"id": "31", "name": "Resolve"}]}),
                ),
                ("POST", "transitions") => {
                    let id = json_body["transition"]["id"].as_str().unwrap_or("").to_string();
                    issue.3.push(id);
                    StatusCode::NO_CONTENT.into_response()
                }
                _ => reply(StatusCode::NOT_FOUND, json!({"errorMessages": ["no such resource"]})),
            }
        }
        _ => {
            d.violations.push(format!("Jira: no such endpoint {method} {path}"));
            reply(StatusCode::NOT_FOUND, json!({"errorMessages": ["no such resource"]}))
        }
    }
}

async fn desks_on(listener: tokio::net::TcpListener) -> Shared {
    let desks: Shared = Arc::default();
    let app = axum::Router::new()
        .fallback(|State(d): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
            let mut d = d.lock().unwrap();
            if uri.path().starts_with("/jira/") {
                jira(&mut d, &method, &uri, &headers, &body)
            } else {
                servicenow(&mut d, &method, &uri, &headers, &body)
            }
        })
        .with_state(desks.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    desks
}

async fn start_collector(
    dir: &std::path::Path,
    ctoml: &std::path::Path,
    addr: SocketAddr,
    n: u32,
) -> vakt_tests::Collector {
    let log = dir.join(format!("collector-{n}.log"));
    vakt_tests::Collector::start_with_env(ctoml, addr, &log, &[("VAKT_TEST_SN_PASSWORD", "sn-secret")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_one_ticket_in_each_desk_from_opening_to_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let desk_addr = listener.local_addr().unwrap();
    let desks = desks_on(listener).await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let token_file = dir.path().join("jira.token");
    std::fs::write(&token_file, "jira-api-token\n").unwrap();
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
owner = "Web Operations"
checks = ["shop-home"]

[receivers.servicenow]
kind = "servicenow"
url = {{ value = "http://{desk_addr}" }}
username = "vakt"
password = {{ env = "VAKT_TEST_SN_PASSWORD" }}
fields = {{ category = "{{{{ 'network' if services else 'inquiry' }}}}" }}

[receivers.jira]
kind = "jira"
url = {{ value = "http://{desk_addr}/jira" }}
username = "vakt@example.com"
password = {{ file = "{token}" }}
project = "OPS"

[[routes]]
services = ["shop"]
receivers = ["servicenow", "jira"]
"#,
            agent = token_hash(AGENT_TOKEN),
            target = target.addr,
            token = token_file.display(),
        ),
    )
    .unwrap();
    vakt_tests::grant_reader(&ctoml);
    let mut collector = start_collector(dir.path(), &ctoml, addr, 1).await;
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, AGENT_TOKEN, "");
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("shop-home").await;

    // The outage: a ticket in each, although ServiceNow's answer was lost once and Jira
    // refused once.
    target.set_status(500);
    let id = wait_for("both tickets recorded on the incident", WAIT, || async {
        let open = collector.get_json("/api/v1/incidents?status=open").await;
        let id = open.as_array()?.first()?["id"].as_i64()?;
        let full = collector.get_json(&format!("/api/v1/incidents/{id}")).await;
        let text = full["timeline"].to_string();
        (text.contains("servicenow notified (firing): ticket INC0010001")
            && text.contains("jira notified (firing): ticket OPS-1"))
        .then_some(id)
    })
    .await;
    {
        let d = desks.lock().unwrap();
        assert_eq!(d.sn.len(), 1, "one ServiceNow ticket, although its creation was answered 502");
        assert_eq!(d.jira.len(), 1, "one Jira issue");
        let rec = &d.sn[0];
        assert_eq!(rec["correlation_id"], format!("vakt-incident-{id}"));
        assert_eq!(rec["assignment_group"], "Web Operations", "the service's owner");
        assert_eq!(rec["cmdb_ci"], "shop", "the service is the configuration item");
        assert_eq!(
            (rec["impact"].as_str(), rec["urgency"].as_str()),
            (Some("1"), Some("1")),
            "P1 is impact 1, urgency 1"
        );
        assert_eq!(rec["category"], "network", "a field from the receiver's template");
        assert!(rec["short_description"].as_str().unwrap().starts_with("[P1] shop-home is down"), "{rec}");
        let (_, fields, _, _) = &d.jira[0];
        assert_eq!(fields["priority"]["name"], "Highest");
        assert_eq!(fields["labels"], json!(["vakt", format!("vakt-incident-{id}")]));
    }

    // Acknowledged with a note: ServiceNow In Progress with a work note, a Jira comment.
    let post = |url: String, body: Value| async move {
        reqwest::Client::new().post(url).bearer_auth(READ_TOKEN).json(&body).send().await.unwrap().status()
    };
    let ack = collector.url(&format!("/api/v1/incidents/{id}/ack"));
    assert_eq!(post(ack, json!({"by": "alice", "note": "on it"})).await, 200);
    wait_for("the acknowledgement in both", WAIT, || async {
        let d = desks.lock().unwrap();
        (d.sn[0]["state"] == "2" && d.jira[0].2.len() == 1).then_some(())
    })
    .await;

    // Killed, started again; a note reaches both, and nothing is created twice.
    collector.proc.kill();
    let collector = start_collector(dir.path(), &ctoml, addr, 2).await;
    let notes = collector.url(&format!("/api/v1/incidents/{id}/notes"));
    assert_eq!(post(notes, json!({"text": "pool restarted"})).await, 200);
    wait_for("the note in both", WAIT, || async {
        let d = desks.lock().unwrap();
        (d.sn[0]["work_notes_journal"].as_array().unwrap().len() == 2 && d.jira[0].2.len() == 2).then_some(())
    })
    .await;

    // Recovery resolves both.
    target.set_status(200);
    wait_for("the resolution in both", WAIT, || async {
        let d = desks.lock().unwrap();
        (d.sn[0]["state"] == "6" && d.jira[0].3 == ["31"]).then_some(())
    })
    .await;
    let d = desks.lock().unwrap();
    assert_eq!(d.violations, Vec::<String>::new());
    assert_eq!((d.sn.len(), d.jira.len()), (1, 1), "one ticket each, from opening to resolution");
    let rec = &d.sn[0];
    assert_eq!(rec["close_code"], "Solution provided");
    assert!(rec["close_notes"].as_str().unwrap().contains("recovered"), "{rec}");
    let notes: Vec<&str> = rec["work_notes_journal"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert!(
        notes[0].contains("acknowledged by") && notes[0].contains("alice") && notes[0].contains("on it"),
        "{notes:?}"
    );
    assert!(notes[1].contains("pool restarted"), "{notes:?}");
    let (_, _, comments, _) = &d.jira[0];
    assert!(comments[1].contains("pool restarted"), "{comments:?}");
    assert_eq!(comments.len(), 3, "acknowledgement, note, resolution: {comments:?}");
    drop(d);
    drop(collector);
}
