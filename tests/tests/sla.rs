//! The SLA path with real binaries: an outage of a service spends its error budget, burns fast
//! enough to open an SLO incident, is acknowledged and noted by a person with an API token,
//! and shows up in the month's SLA report as JSON, CSV and HTML.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Proc, Target};

const WAIT: Duration = Duration::from_secs(40);
const AGENT_TOKEN: &str = "sla-agent-token-0123456789";
const ALICE: &str = "alice-api-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_spends_budget_opens_a_burn_incident_and_lands_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
slo_evaluation_interval = "1s"
sloth_metrics = true

# The contract's response targets: acknowledged within an hour, resolved within a second (this
# outage lasts longer: a breach the report must list).
[response_targets.P1]
acknowledge = "1h"
resolve = "1s"
[response_targets.P2]
acknowledge = "1h"
resolve = "1s"
[response_targets.P3]
acknowledge = "1h"
resolve = "1s"

[api_tokens.alice]
token_hash = "{alice}"
scope = "admin"

[agents.edge]
token_hash = "{agent}"

[checks.shop-home]
kind = "http"
target = "http://{target}/"
interval = "200ms"
fail_after = 2
recover_after = 2
agents = ["edge"]

[services.shop]
owner = "team-shop"
customers = ["acme"]
vendor = "hosting-co"
checks = ["shop-home"]

[slos.shop-availability]
service = "shop"
objective = 99.9
window = "30d"
# A short window this test can observe in seconds (the defaults need 5 minutes of data).
burn_alerts = [{{ severity = "page", long = "1m", short = "5s", factor = 14.4 }}]

[slos.shop-latency]
service = "shop"
kind = "latency"
objective = 99
latency_threshold = "2s"
window = "7d"
"#,
            alice = token_hash(ALICE),
            agent = token_hash(AGENT_TOKEN),
            target = target.addr
        ),
    )
    .unwrap();
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, AGENT_TOKEN, "");
    let mut collector = Collector::start(&ctoml, addr, &dir.path().join("c1.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("shop-home").await;

    // Outage.
    target.set_status(503);
    let check_incident = wait_for("the check incident", WAIT, || async {
        collector.get_json("/api/v1/incidents?check=shop-home&status=open").await.as_array().unwrap().first().cloned()
    })
    .await;
    let burn = wait_for("an SLO burn incident", WAIT, || async {
        let list = collector.get_json("/api/v1/incidents?kind=slo_burn&status=open").await;
        list.as_array().unwrap().iter().find(|i| i["subject"] == "shop-availability").cloned()
    })
    .await;
    assert_eq!(burn["subject"], "shop-availability");
    assert_eq!(burn["severity"], "page", "a fast burn: {burn}");
    assert_eq!(burn["services"], serde_json::json!(["shop"]));
    // One problem, one page: the budget burns because the shop's own check is down, so the
    // burn is shown under the check's incident, not paged again.
    let burn = wait_for("the burn linked under the check's incident", WAIT, || async {
        let b = collector.get_json(&format!("/api/v1/incidents/{}", burn["id"])).await;
        (b["parent_id"] == check_incident["id"]).then_some(b)
    })
    .await;
    let timeline = burn["timeline"].to_string();
    assert!(timeline.contains("one problem, one page"), "{timeline}");
    let slos = collector.get_json("/api/v1/slos").await;
    let slo = slos.as_array().unwrap().iter().find(|s| s["name"] == "shop-availability").unwrap();
    let latency = slos.as_array().unwrap().iter().find(|s| s["name"] == "shop-latency").unwrap();
    let p99 = latency["latency_quantile_seconds"].as_f64().expect("a p99 from the merged histograms");
    assert!(p99 > 0.0 && p99 < 2.0, "loopback answers are fast: {latency}");
    assert_eq!(latency["unit"], "events");
    assert_eq!(slo["name"], "shop-availability");
    assert!(slo["downtime_minutes"].as_f64().unwrap() > 0.0, "{slo}");
    assert!(slo["error_budget_remaining_ratio"].as_f64().unwrap() < 1.0, "{slo}");
    assert!(slo["error_budget_spent_minutes"].as_f64().unwrap() > 0.0, "{slo}");
    assert!(slo["error_budget_allowed_minutes"].as_f64().unwrap() >= 0.0, "{slo}");
    assert!(
        collector.metric("vakt_slo_burn_rate{service=\"shop\",slo=\"shop-availability\",window=\"5s\"}").await.unwrap()
            >= 14.4
    );
    assert!(collector.metric("slo:sli_error:ratio_rate5m{sloth_id=\"shop-shop-availability\",sloth_service=\"shop\",sloth_slo=\"shop-availability\"}").await.unwrap() > 0.0);

    // A person acknowledges and notes; without a token nothing changes.
    let http = reqwest::Client::new();
    let id = check_incident["id"].as_i64().unwrap();
    let ack_url = collector.url(&format!("/api/v1/incidents/{id}/ack"));
    assert_eq!(http.post(&ack_url).send().await.unwrap().status(), 401);
    assert_eq!(
        http.post(&ack_url).bearer_auth(AGENT_TOKEN).send().await.unwrap().status(),
        401,
        "an agent token is not an API token"
    );
    let acked: serde_json::Value = http
        .post(&ack_url)
        .bearer_auth(ALICE)
        .json(&serde_json::json!({"note": "looking"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], "alice");
    let noted = http
        .post(collector.url(&format!("/api/v1/incidents/{id}/notes")))
        .bearer_auth(ALICE)
        .json(&serde_json::json!({"text": "load balancer restarted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(noted.status(), 200);
    let missing = http.post(collector.url("/api/v1/incidents/99999/ack")).bearer_auth(ALICE).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // Recovery resolves both incidents.
    target.set_status(200);
    wait_for("the check incident to resolve", WAIT, || async {
        (collector.get_json(&format!("/api/v1/incidents/{id}")).await["status"] == "resolved").then_some(())
    })
    .await;

    // The outage was planned after all: a maintenance window over it takes it out of the SLA.
    let availability =
        |v: serde_json::Value| v.as_array().unwrap().iter().find(|s| s["name"] == "shop-availability").unwrap().clone();
    let slo_before = availability(collector.get_json("/api/v1/slos").await);
    let outage_start = jiff::Timestamp::from_millisecond(
        check_incident["opened_at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap().as_millisecond() - 60_000,
    )
    .unwrap();
    let window = serde_json::json!({
        "name": "failover test",
        "start": outage_start.to_string(),
        "end": jiff::Timestamp::now().to_string(),
        "services": ["shop"],
        "change_id": "CHG-42"
    });
    let created = http.post(collector.url("/api/v1/maintenance")).json(&window).send().await.unwrap();
    assert_eq!(created.status(), 401, "creating a window needs an API token");
    // Made after the fact, it would erase recorded downtime: refused unless said on purpose.
    let refused =
        http.post(collector.url("/api/v1/maintenance")).bearer_auth(ALICE).json(&window).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("retroactive = true"));
    let mut window = window;
    window["retroactive"] = true.into();
    let created =
        http.post(collector.url("/api/v1/maintenance")).bearer_auth(ALICE).json(&window).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let listed = collector.get_json("/api/v1/maintenance").await;
    let made = listed.as_array().unwrap().iter().find(|m| m["change_id"] == "CHG-42" && m["source"] == "api");
    let made = made.unwrap_or_else(|| panic!("{listed}"));
    assert_eq!((made["created"]["by"].as_str(), made["created"]["retroactive"].as_bool()), (Some("alice"), Some(true)));
    let slo_after = availability(collector.get_json("/api/v1/slos").await);
    assert!(slo_after["excluded_minutes"].as_f64().unwrap() > 0.0, "{slo_after}");
    assert!(
        slo_after["downtime_minutes"].as_f64().unwrap() < slo_before["downtime_minutes"].as_f64().unwrap(),
        "{slo_before} vs {slo_after}"
    );

    // A restart loses nothing of the timeline.
    let before = collector.get_json(&format!("/api/v1/incidents/{id}")).await;
    let kinds: Vec<&str> = before["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["opened", "acknowledged", "note", "resolved"]);
    collector.proc.kill();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c2.log")).await;
    assert_eq!(collector.get_json(&format!("/api/v1/incidents/{id}")).await, before);

    // The month's report, by service, customer and vendor.
    let period = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    let report = collector.get_json(&format!("/api/v1/reports/sla?customer=acme&period={period}")).await;
    assert_eq!(report["services"], serde_json::json!(["shop"]));
    let row = report["slos"].as_array().unwrap().iter().find(|r| r["slo"] == "shop-availability").unwrap();
    assert_eq!(row["slo"], "shop-availability");
    assert_eq!(row["downtime_minutes"].as_f64().unwrap(), 0.0, "the outage was all inside the planned window: {row}");
    assert!(report["incidents"].as_array().unwrap().iter().any(|i| i["id"] == id && i["acknowledged_by"] == "alice"));
    let row_of = report["incidents"].as_array().unwrap().iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(row_of["targets"]["acknowledge"]["met"], true, "acknowledged within the hour: {row_of}");
    assert_eq!(row_of["targets"]["resolve"]["met"], false, "not resolved within a second: {row_of}");
    assert!(report["target_breaches"].as_u64().unwrap() >= 1, "{report}");
    // The customer's breach list names the missed resolution target (not the met acknowledgement).
    let breaches: Vec<&serde_json::Value> =
        report["breaches"].as_array().unwrap().iter().filter(|b| b["incident"] == id).collect();
    assert_eq!(breaches.len(), 1, "{report}");
    assert_eq!(
        (breaches[0]["kind"].as_str(), &breaches[0]["customers"]),
        (Some("resolve"), &serde_json::json!(["acme"]))
    );
    assert!(breaches[0]["took_minutes"].as_f64().unwrap() > breaches[0]["allowed_minutes"].as_f64().unwrap());
    assert!(report["mtta_minutes"].as_f64().is_some() && report["mttr_minutes"].as_f64().is_some(), "{report}");
    assert_eq!(report["maintenance"][0]["change_id"], "CHG-42");
    assert!(row["excluded_maintenance_minutes"].as_f64().unwrap() > 0.0);
    let csv = collector.get_text(&format!("/api/v1/reports/sla?vendor=hosting-co&period={period}&format=csv")).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("period,service,slo,objective_percent,achieved_percent,status,"), "{csv}");
    // This month is still running: judged against the whole month, its status says how it goes.
    assert!(["on track", "at risk"].contains(&row["status"].as_str().unwrap()), "{row}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("{period},shop,shop-availability,99.9,"))), "{csv}");
    let html = collector.get_text(&format!("/api/v1/reports/sla?service=shop&period={period}&format=html")).await;
    assert!(html.contains("<h1>SLA report") && html.contains("shop-availability"), "{html}");
    assert!(html.contains("<table id=\"breaches\">") && html.contains("<td>resolve</td>"), "{html}");
    let bad = vakt_tests::get_authorized(&collector.url("/api/v1/reports/sla?service=nope&period=2026-10")).await;
    assert_eq!(bad.status(), 400);

    // The CLI prints the same report from the database.
    let (code, out, err) = vakt_tests::run_bin(
        "vakt-collector",
        &["report", "--config", ctoml.to_str().unwrap(), "--service", "shop", "--period", &period, "--format", "csv"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "a header and one row per SLO: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_outage_is_one_root_incident_with_linked_children_and_itil_priorities() {
    let dir = tempfile::tempdir().unwrap();
    let db = Target::start().await;
    let shop = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    // A webhook receiver on loopback: who gets paged.
    let hook = vakt_tests::Hook::start().await;
    let hook_addr = hook.addr;
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
# Almost no grouping: only the dependency wait holds the dependant's page back.
group_wait = "10ms"

[receivers.pager]
kind = "webhook"
url = {{ value = "http://{hook_addr}/" }}

[[routes]]
receivers = ["pager"]

[agents.edge]
token_hash = "{agent}"

# The database is probed every second, the shop five times as often: the shop notices the
# outage first. Its page waits for the database's next result (1 s + 1 s to arrive).
[checks.db-http]
kind = "http"
target = "http://{db}/"
interval = "1s"
fail_after = 1
agents = ["edge"]

[checks.shop-http]
kind = "http"
target = "http://{shop}/"
interval = "200ms"
fail_after = 1
agents = ["edge"]

[services.database]
criticality = 2
checks = ["db-http"]

[services.shop]
criticality = 1
customers = ["acme"]
depends_on = ["database"]
checks = ["shop-http"]
"#,
            agent = token_hash(AGENT_TOKEN),
            db = db.addr,
            shop = shop.addr
        ),
    )
    .unwrap();
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, AGENT_TOKEN, "");
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    wait_for("both checks up", WAIT, || async {
        let up = |c: &'static str| collector.metric_owned(format!("vakt_check_up{{check=\"{c}\"}}"));
        (up("db-http").await == Some(1.0) && up("shop-http").await == Some(1.0)).then_some(())
    })
    .await;

    // The shop fails first (it notices the database outage), then the database check.
    shop.set_status(502);
    db.set_status(503);
    let (root, child) = wait_for("two linked incidents", WAIT, || async {
        let list = collector.get_json("/api/v1/incidents?status=open").await;
        let list = list.as_array().unwrap();
        let root = list.iter().find(|i| i["check"] == "db-http")?.clone();
        let child = list.iter().find(|i| i["check"] == "shop-http")?.clone();
        child["parent_id"].as_i64().is_some().then_some((root, child))
    })
    .await;
    assert_eq!(child["parent_id"], root["id"], "the shop's incident is linked under the database's");
    assert_eq!(root["parent_id"], serde_json::Value::Null);
    assert!(child["timeline"].as_array().unwrap().iter().any(|e| e["kind"] == "linked"), "{child}");
    assert_eq!(child["priority"], "P1", "criticality 1, critical: {child}");
    assert_eq!(root["priority"], "P2", "criticality 2, critical: {root}");
    assert_eq!(child["customers"], serde_json::json!(["acme"]));
    // Only the root cause pages: the shop's page, held for the database's next result, is held
    // back for good once it is linked under the database's incident.
    let root_id = root["id"].as_i64().unwrap();
    let paged = wait_for("the database's page", WAIT, || async {
        let p = hook.received();
        (!p.is_empty()).then_some(p)
    })
    .await;
    let child_id = child["id"].as_i64().unwrap();
    wait_for("the shop's page held back", WAIT, || async {
        let outbox = collector.get_json(&format!("/api/v1/notifications?incident={child_id}")).await;
        outbox.as_array()?.iter().all(|n| n["status"] == "suppressed").then_some(())
    })
    .await;
    let paged = serde_json::to_string(&paged).unwrap();
    assert!(paged.contains(&format!("\"id\":{root_id}")), "{paged}");
    assert!(!paged.contains(&format!("\"id\":{child_id}")), "the dependant was not paged: {paged}");

    // Both recover; both resolutions are kept.
    db.set_status(200);
    shop.set_status(200);
    for i in [&root, &child] {
        let id = i["id"].as_i64().unwrap();
        wait_for("resolution", WAIT, || async {
            (collector.get_json(&format!("/api/v1/incidents/{id}")).await["status"] == "resolved").then_some(())
        })
        .await;
    }
}
