//! Vakt's own pages in a real browser (headless Chromium): the public status page shows the
//! states a scripted outage leaves; the on-call pages (incident list, incident with its forms
//! and timeline, SLA view, agents) need a login and show the same outage, the acknowledgement made
//! through the form, and the SLO. Each loads without console errors and is saved as a screenshot
//! in `target/test-artifacts/`. The SVG badges say the same.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Proc, Target};

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "pages-agent-token-0123456789";
const ADMIN: &str = "pages-admin-token-0123456789";

fn chromium(profile: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .output()
        .unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Loads `url`, returns its DOM, and fails on any console error.
fn browse(profile: &Path, url: &str) -> String {
    let (dom, log) = chromium(profile, &["--dump-dom", url]);
    let console_errors: Vec<&str> =
        log.lines().filter(|l| l.contains("CONSOLE") && (l.contains(":ERROR:") || l.contains("Uncaught"))).collect();
    assert!(console_errors.is_empty(), "console errors on {url}: {console_errors:?}");
    assert!(!dom.is_empty(), "{url} did not load:\n{log}");
    dom
}

/// Saves a screenshot of `url` as `target/test-artifacts/NAME`.
fn screenshot(profile: &Path, url: &str, name: &str) {
    let shot = artifacts().join(name);
    let _ = std::fs::remove_file(&shot);
    let (_, log) = chromium(
        profile,
        &["--window-size=1280,1800", "--hide-scrollbars", &format!("--screenshot={}", shot.display()), url],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot of {url} ({e}):\n{log}"));
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(png.len() > 10_000, "a real picture of {url}, not an empty page: {} bytes", png.len());
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_an_outage_in_a_real_browser() {
    if !Path::new(CHROMIUM).exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "chromium is missing: .ci/run must install it");
        eprintln!("skipping: chromium is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shop = Target::start().await;
    let docs = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\nslo_evaluation_interval = \"1s\"\n[agents.edge]\ntoken_hash = \"{}\"\n\
             [checks.shop-web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"200ms\"\nfail_after = 2\nagents = [\"edge\"]\n\
             [checks.docs-web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"200ms\"\nagents = [\"edge\"]\n\
             [services.shop]\ndescription = \"The web shop\"\nchecks = [\"shop-web\"]\n\
             [services.docs]\ndescription = \"Documentation\"\nchecks = [\"docs-web\"]\n\
             [slos.shop-availability]\nservice = \"shop\"\nobjective = 99.9\nwindow = \"30d\"\nburn_alerts = []\n\
             [slos.shop-speed]\nservice = \"shop\"\nkind = \"latency\"\nlatency_threshold = \"500ms\"\nobjective = 99\nwindow = \"30d\"\nburn_alerts = []\n",
            token_hash(TOKEN),
            shop.addr,
            docs.addr
        ),
    )
    .unwrap();
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, "");
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let agent = Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    wait_for("both checks up", Duration::from_secs(30), || async {
        let m = collector.get_text("/metrics").await;
        (vakt_tests::metric(&m, "vakt_check_up{check=\"shop-web\"}") == Some(1.0)
            && vakt_tests::metric(&m, "vakt_check_up{check=\"docs-web\"}") == Some(1.0))
        .then_some(())
    })
    .await;

    // The scripted outage.
    shop.set_status(503);
    wait_for("the shop incident", Duration::from_secs(30), || async {
        (collector.metric("vakt_incidents_open").await == Some(1.0)).then_some(())
    })
    .await;

    // The same outage in the metrics: the service's state, and the agent's version.
    wait_for("shop down in vakt_service_state", Duration::from_secs(30), || async {
        (collector.metric("vakt_service_state{service=\"shop\",state=\"down\"}").await == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(collector.metric("vakt_service_state{service=\"shop\",state=\"operational\"}").await, Some(0.0));
    assert_eq!(collector.metric("vakt_service_state{service=\"docs\",state=\"operational\"}").await, Some(1.0));
    let version = format!("vakt_agent_info{{agent=\"edge\",version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(collector.metric(&version).await, Some(1.0));
    assert_eq!(collector.metric("vakt_incidents_mtta_seconds").await, None, "nothing acknowledged yet");

    let profile = dir.path().join("chromium");
    let url = collector.url("/");
    let dom = browse(&profile, &url);
    assert!(dom.contains("<h1>Service status</h1>"), "{dom}");
    assert!(dom.contains("data-service=\"shop\" data-state=\"down\""), "{dom}");
    assert!(dom.contains("data-service=\"docs\" data-state=\"operational\""), "{dom}");
    assert!(dom.contains("Some services are down"), "{dom}");
    assert!(dom.contains("<strong>shop-web is down</strong>"), "the active incident is listed: {dom}");
    assert!(!dom.contains("status 503"), "the probe's own words stay on the on-call pages: {dom}");
    assert_eq!(dom.matches("class=\"bar ").count(), 2 * 90, "90 daily bars per service");

    screenshot(&profile, &url, "status-page.png");

    // The on-call pages need a login: none, a 401 that asks for Basic credentials.
    let http = reqwest::Client::new();
    for path in ["/incidents", "/sla", "/api/v1/incidents"] {
        let r = http.get(collector.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a login");
        assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic realm=\"Vakt\""));
    }
    // In the browser: the token's name as user, the token as password.
    let login = |path: &str| format!("http://{}:{}@{addr}{path}", vakt_tests::READ_TOKEN_NAME, vakt_tests::READ_TOKEN);
    let list = browse(&profile, &login("/incidents"));
    assert!(list.contains("<h2>Open (1)</h2>"), "{list}");
    assert!(list.contains("data-status=\"open\""), "{list}");
    assert!(list.contains("shop-web is down: HTTP 503"), "{list}");
    assert!(list.contains(&format!("<span class=\"who\">{}</span>", vakt_tests::READ_TOKEN_NAME)), "{list}");
    screenshot(&profile, &login("/incidents"), "incidents.png");
    let id = collector.get_json("/api/v1/incidents").await[0]["id"].as_i64().unwrap();
    let detail = browse(&profile, &login(&format!("/incidents/{id}")));
    assert!(detail.contains(&format!("action=\"/incidents/{id}/ack\"")), "the acknowledge form: {detail}");
    assert!(detail.contains("<dd><a href=\"/services/shop\">shop</a></dd>"), "affected service, linked: {detail}");
    assert!(detail.contains("<a href=\"/checks/shop-web\">shop-web</a>"), "the check, linked: {detail}");
    assert!(detail.contains("<span class=\"ago\">("), "times say how long ago: {detail}");
    assert!(detail.contains("<svg id=\"around\""), "the check's results around the incident: {detail}");
    assert!(detail.contains("<label for=\"ack-note\">"), "form fields have labels: {detail}");

    // The acknowledge form, posted as the browser posts it; from another site it is refused.
    let form = [("note", "Looking at the shop's load balancer")];
    let ack_url = collector.url(&format!("/incidents/{id}/ack"));
    let forged = http
        .post(&ack_url)
        .basic_auth(vakt_tests::READ_TOKEN_NAME, Some(vakt_tests::READ_TOKEN))
        .header("Origin", "https://elsewhere.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a form post from another site");
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let posted = no_redirect
        .post(&ack_url)
        .basic_auth(vakt_tests::READ_TOKEN_NAME, Some(vakt_tests::READ_TOKEN))
        .header("Origin", format!("http://{addr}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303, "back to the incident");
    assert_eq!(posted.headers()["location"], format!("/incidents/{id}"));
    let detail = browse(&profile, &login(&format!("/incidents/{id}")));
    assert!(detail.contains("id=\"status\">acknowledged</dd>"), "{detail}");
    assert!(detail.contains(&format!("by {}", vakt_tests::READ_TOKEN_NAME)), "who acknowledged: {detail}");
    assert!(detail.contains("Looking at the shop's load balancer"), "the note in the timeline: {detail}");
    assert!(!detail.contains("/ack\""), "no second acknowledgement offered: {detail}");
    screenshot(&profile, &login(&format!("/incidents/{id}")), "incident.png");

    // The SLA view: the SLO with target and achieved, and its report for download.
    let sla = browse(&profile, &login("/sla"));
    assert!(sla.contains("data-slo=\"shop-availability\""), "{sla}");
    assert!(sla.contains("99.900%"), "the target: {sla}");
    assert!(sla.contains("<svg id=\"budget-shop-availability\""), "the budget over the window, drawn: {sla}");
    assert!(sla.contains("Error budget left from"), "the chart says it in words too: {sla}");
    assert!(sla.contains("<svg id=\"days-shop-availability\""), "the daily availability strip: {sla}");
    assert!(sla.contains("<svg id=\"latency-shop-speed\""), "a latency SLO's percentile per day: {sla}");
    assert!(sla.contains("p99 latency per day against the 500 ms threshold: 0 of "), "fast, so no day over: {sla}");
    let month = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    let csv_link = format!("/api/v1/reports/sla?service=shop&amp;period={month}&amp;format=csv");
    assert!(sla.contains(&csv_link), "{sla}");
    let csv = vakt_tests::get_authorized(&collector.url(&csv_link.replace("&amp;", "&"))).await;
    assert_eq!(csv.status(), 200);
    assert!(csv.text().await.unwrap().contains("shop"), "the report names the service");
    screenshot(&profile, &login("/sla"), "sla.png");

    // The agents: the one agent reporting, with its version and its clock in step.
    let agents = browse(&profile, &login("/agents"));
    assert!(agents.contains("<tr class=\"agent\" id=\"agent-edge\" data-agent=\"edge\">"), "{agents}");
    assert!(agents.contains("class=\"reporting\">reporting<"), "{agents}");
    assert!(agents.contains(&format!("<td>{}</td>", env!("CARGO_PKG_VERSION"))), "its version: {agents}");
    assert!(agents.contains("in step with the collector's"), "{agents}");
    screenshot(&profile, &login("/agents"), "agents.png");

    // The check's page: what it is, who probes it, the last hour drawn — and the picture's
    // figures are the API's for the same window. The agent is paused first and the store left
    // to settle (no sample committed between two looks), so that no result lands between the
    // page and the API call.
    agent.signal("STOP");
    let last = std::cell::Cell::new(-1.0);
    wait_for("the pushes in flight to land", Duration::from_secs(30), || async {
        let now = collector.metric("vakt_ingest_samples_total").await.unwrap_or(0.0);
        (now == last.replace(now)).then_some(())
    })
    .await;
    let check = browse(&profile, &login("/checks/shop-web"));
    assert!(check.contains("data-state=\"down\""), "{check}");
    assert!(check.contains("<dt>Kind</dt><dd>http</dd>"), "{check}");
    assert!(check.contains("HTTP 503"), "the short cause: {check}");
    assert!(check.contains("<tr data-agent=\"edge\">"), "the agent that probes it: {check}");
    assert!(check.contains("<svg id=\"results\""), "the last hour, drawn: {check}");
    let attr = |name: &str| -> i64 {
        let at = check.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        check[at..].split('"').next().unwrap().parse().unwrap()
    };
    let (from, to) = (attr("data-from-ms"), attr("data-to-ms"));
    let samples = collector
        .get_json(&format!("/api/v1/samples?check=shop-web&from={from}&to={to}&order=oldest&limit=100000"))
        .await;
    let samples = samples.as_array().unwrap();
    let failed = samples.iter().filter(|s| s["success"] == false).count();
    let ok = samples.len() - failed;
    assert!(failed > 0 && ok > 0, "an outage after good results: {ok} ok, {failed} failed");
    assert!(
        check.contains(&format!("{ok} successful and {failed} failed results")),
        "the chart says what the API has for its window ({ok} ok, {failed} failed): {check}"
    );
    screenshot(&profile, &login("/checks/shop-web"), "check.png");
    agent.signal("CONT");

    // The service's page: its state, its check, its SLO and the days drawn.
    let service = browse(&profile, &login("/services/shop"));
    assert!(service.contains("id=\"state\" class=\"state down\""), "{service}");
    assert!(service.contains("<a href=\"/checks/shop-web\">shop-web</a> · down: HTTP 503"), "{service}");
    assert!(service.contains("data-slo=\"shop-availability\""), "{service}");
    assert!(service.contains("<svg id=\"dependencies\"") && service.contains("<svg id=\"days\""), "{service}");
    assert!(service.contains("<svg id=\"budget-shop-availability\""), "its SLO's budget line: {service}");
    assert!(service.contains(&format!("href=\"/incidents/{id}\"")), "its incident: {service}");
    screenshot(&profile, &login("/services/shop"), "service.png");
    let missing = vakt_tests::get_authorized(&collector.url("/services/nope")).await;
    assert_eq!(missing.status(), 404);

    // Badges.
    let status = collector.get_text("/badge/shop/status.svg").await;
    assert!(status.contains("aria-label=\"shop: down\""), "{status}");
    let uptime = collector.get_text("/badge/docs/uptime.svg?window=1d").await;
    assert!(uptime.contains("aria-label=\"uptime 1d: 100.00%\""), "{uptime}");
    let missing = reqwest::get(collector.url("/badge/nope/status.svg")).await.unwrap();
    assert_eq!(missing.status(), 404);

    // Recovery shows too.
    shop.set_status(200);
    wait_for("the incident to resolve", Duration::from_secs(30), || async {
        (collector.metric("vakt_incidents_open").await == Some(0.0)).then_some(())
    })
    .await;
    let (dom, _) = chromium(&profile, &["--dump-dom", &url]);
    assert!(dom.contains("All services are operational"), "{dom}");

    // MTTA and MTTR follow: acknowledged after the form post, resolved after the recovery.
    let (mtta, mttr) = wait_for("MTTA and MTTR", Duration::from_secs(30), || async {
        let a = collector.metric("vakt_service_mtta_seconds{service=\"shop\"}").await?;
        let r = collector.metric("vakt_service_mttr_seconds{service=\"shop\"}").await?;
        Some((a, r))
    })
    .await;
    assert!(mtta > 0.0 && mtta < mttr, "acknowledged before resolved: mtta {mtta}, mttr {mttr}");
    assert_eq!(collector.metric("vakt_incidents_mttr_seconds").await, Some(mttr), "one incident: overall = shop's");
    assert!(dom.contains("resolved"), "the incident moves to the history: {dom}");
}

/// What customers read, in a real browser: the status page with a post written by people and
/// planned maintenance, the post's own page, the history, the subscribe form, a customer's own
/// page, the on-call page that writes posts, and the SLA report with its pictures. Each loads
/// without console errors and is saved as a screenshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_pages_and_the_report_in_a_real_browser() {
    if !Path::new(CHROMIUM).exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "chromium is missing: .ci/run must install it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
public_url = "http://{addr}"

[api_tokens.admin]
token_hash = "{admin}"
scope = "admin"

[services.shop]
description = "Web shop and checkout"
checks = []
customers = ["acme"]

[services.billing]
checks = []

[slos.shop-month]
service = "shop"
objective = 99.9
calendar = "month"

[receivers.mail]
kind = "email"
smtp = "127.0.0.1:9"
smtp_tls = "none"
from = "status@example.test"
to = ["nobody@example.test"]

[subscriptions]
email_receiver = "mail"

[status_templates.identified]
status = "identified"
message = "We have found the cause of the problems with {{service}} and are fixing it."

[status_pages.acme]
title = "Acme services"
customer = "acme"
footer_links = [{{ text = "Acme service desk", url = "https://desk.acme.test/" }}]
"#,
            admin = token_hash(ADMIN)
        ),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let http = reqwest::Client::new();
    let post =
        |path: &str, body: serde_json::Value| http.post(collector.url(path)).bearer_auth(ADMIN).json(&body).send();
    let r = post(
        "/api/v1/status/incidents",
        serde_json::json!({"title": "Checkout <b>slow</b>", "services": ["shop"], "impact": "partial_outage", "message": "We are looking into slow checkouts."}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let r = post(
        "/api/v1/status/incidents/1/updates",
        serde_json::json!({"status": "identified", "template": "identified"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(26);
    let window = serde_json::json!({"name": "Payment provider upgrade", "start": start.to_string(), "end": (start + jiff::SignedDuration::from_hours(2)).to_string(), "services": ["shop"]});
    assert!(post("/api/v1/maintenance", window).await.unwrap().status().is_success());

    let profile = dir.path().join("chromium");
    let status = browse(&profile, &collector.url("/"));
    assert!(status.contains("data-post=\"1\"") && status.contains("Checkout &lt;b&gt;slow&lt;/b&gt;"), "{status}");
    assert!(status.contains("We have found the cause of the problems with shop"), "the latest update: {status}");
    assert!(status.contains("data-phase=\"scheduled\""), "{status}");
    screenshot(&profile, &collector.url("/"), "status-with-post.png");
    let one = browse(&profile, &collector.url("/status/incidents/1"));
    assert!(one.contains("Identified") && one.contains("Investigating"), "{one}");
    screenshot(&profile, &collector.url("/status/incidents/1"), "status-post.png");
    let history = browse(&profile, &collector.url("/status/history"));
    assert!(history.contains("href=\"/status/incidents/1\""), "{history}");
    let subscribe = browse(&profile, &collector.url("/status/subscribe"));
    assert!(subscribe.contains("<label for=\"email\">") && subscribe.contains("value=\"billing\""), "{subscribe}");
    screenshot(&profile, &collector.url("/status/subscribe"), "subscribe.png");
    let acme = browse(&profile, &collector.url("/p/acme"));
    assert!(acme.contains("Acme services") && !acme.contains("data-service=\"billing\""), "{acme}");
    screenshot(&profile, &collector.url("/p/acme"), "customer-page.png");

    let login = |path: &str| format!("http://{}:{}@{addr}{path}", vakt_tests::READ_TOKEN_NAME, vakt_tests::READ_TOKEN);
    let writer = browse(&profile, &login("/status-posts/1"));
    assert!(
        writer.contains("action=\"/status-posts/1/updates\"") && writer.contains("<label for=\"update-message\">"),
        "{writer}"
    );
    screenshot(&profile, &login("/status-posts/1"), "status-post-writer.png");
    let month = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    let report_url = login(&format!("/api/v1/reports/sla?customer=acme&period={month}&format=html"));
    let report = browse(&profile, &report_url);
    assert!(
        report.contains("<svg id=\"budget-shop-month\"") && report.contains("<svg id=\"days-shop-month\""),
        "{report}"
    );
    assert!(report.contains("<svg id=\"incidents\""), "the incident timeline: {report}");
    screenshot(&profile, &report_url, "sla-report.png");
}
