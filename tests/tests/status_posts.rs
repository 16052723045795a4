//! Talking to customers, with the real collector, a real SMTP server (aiosmtpd) and a real feed
//! parser (Python's feedparser): a customer subscribes on the status page and confirms by the
//! link in the mail (opening the link alone confirms nothing); an on-call engineer posts an
//! incident and its updates; the subscriber of that service gets each update once, the
//! subscriber of another service nothing; the posts show on the status page and in the Atom
//! feed, their HTML escaped; an update written while the SMTP server is down and the collector
//! is killed arrives once after both come back; one click unsubscribes (RFC 8058) and nothing
//! more arrives. Attacks: an address with header-injection characters is refused, a flood of
//! subscribe requests is answered 429, subscriber addresses are never shown, and posting needs
//! an on-call token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{aiosmtpd_available, free_port, mails, start_sink, token_hash, wait_for, Collector, Hook, PYTHON};

const WAIT: Duration = Duration::from_secs(40);
const ONCALL_TOKEN: &str = "status-oncall-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "status-admin-token-0123456789abcdef";
const READER_TOKEN: &str = "status-reader-token-0123456789abcdef";

fn config(addr: SocketAddr, smtp_port: u16) -> String {
    format!(
        r#"listen = "{addr}"
data_dir = "data"
public_url = "http://{addr}"
display_timezone = "Europe/Oslo"

[access]
public_status_page = true

[api_tokens.oncall]
token_hash = "{oncall}"
scope = "oncall"

[api_tokens.admin]
token_hash = "{admin}"
scope = "admin"

[api_tokens.reader]
token_hash = "{reader}"
scope = "read"

[services.shop]
checks = []

[services.billing]
checks = []

[receivers.mail]
kind = "email"
smtp = "127.0.0.1:{smtp_port}"
smtp_tls = "none"
from = "Status <status@example.test>"
to = ["nobody@example.test"]

[subscriptions]
email_receiver = "mail"
per_address_per_hour = 6

[status_templates.investigating]
status = "investigating"
title = "Reduced performance of {{service}}"
message = "We are investigating reduced performance of {{service}}."
"#,
        oncall = token_hash(ONCALL_TOKEN),
        admin = token_hash(ADMIN_TOKEN),
        reader = token_hash(READER_TOKEN),
    )
}

/// The first line of a mail's text part that starts with `prefix` (quoted-printable undone
/// where it matters here: soft line breaks and "=3D").
fn line_with(mail: &str, prefix: &str) -> Option<String> {
    let plain = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    plain.lines().map(str::trim).find(|l| l.starts_with(prefix)).map(String::from)
}

fn to_of(mail: &serde_json::Value) -> String {
    mail["to"][0].as_str().unwrap_or_default().to_string()
}

async fn subscribe(http: &reqwest::Client, c: &Collector, form: &str) -> reqwest::StatusCode {
    http.post(c.url("/status/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_each_update_once_and_one_click_stops_them() {
    if !aiosmtpd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let sink_out = dir.path().join("mails.jsonl");
    let mut sink = start_sink(smtp_port, &sink_out);
    let hook = Hook::start().await;
    let addr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, config(addr, smtp_port)).unwrap();
    let mut collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let http = reqwest::Client::new();

    // Ann subscribes to the shop, Bob to billing; both confirm by their links.
    assert_eq!(subscribe(&http, &collector, "email=ann%40example.test&service=shop").await, 202);
    assert_eq!(subscribe(&http, &collector, "email=bob%40example.test&service=billing").await, 202);
    // Header injection: refused, and no mail goes anywhere for it.
    let injected = "email=eve%40example.test%0d%0aBcc%3a%20all%40example.test&service=shop";
    assert_eq!(subscribe(&http, &collector, injected).await, 400);
    let confirmations = wait_for("two confirmation requests", WAIT, || async {
        let m = mails(&sink);
        (m.len() >= 2).then_some(m)
    })
    .await;
    assert_eq!(confirmations.len(), 2, "eve's address got nothing: {confirmations:?}");
    let mut tokens = std::collections::HashMap::new();
    for m in &confirmations {
        let data = m["data"].as_str().unwrap();
        assert!(data.contains("Subject: Confirm your subscription"), "{data}");
        let link = line_with(data, "http://").expect("the confirmation link");
        let page = http.get(&link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("<button type=\"submit\">Confirm</button>"));
        tokens.insert(to_of(m), link.split("token=").nth(1).unwrap().to_string());
    }
    // Opening the link confirmed nothing (mail scanners open links): nobody is confirmed yet.
    let subs = collector.get_json("/api/v1/status/subscribers").await;
    assert!(subs.as_array().unwrap().iter().all(|s| s["confirmed_ms"].is_null()), "{subs}");
    assert!(!subs.to_string().contains("example.test"), "addresses are never shown: {subs}");
    for token in tokens.values() {
        let r = http.post(collector.url(&format!("/status/subscriptions/confirm?token={token}"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // A webhook subscriber to everything (added by an admin: the on-call token may not).
    let refused = http
        .post(collector.url("/api/v1/status/subscribers"))
        .bearer_auth(ONCALL_TOKEN)
        .json(&serde_json::json!({"url": format!("http://{}/hook", hook.addr)}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "webhooks are an admin's to add");

    // Posting needs an on-call token: the reader's is refused.
    let post_body = serde_json::json!({
        "services": ["shop"],
        "impact": "partial_outage",
        "template": "investigating",
    });
    let as_reader = http
        .post(collector.url("/api/v1/status/incidents"))
        .bearer_auth(READER_TOKEN)
        .json(&post_body)
        .send()
        .await
        .unwrap();
    assert_eq!(as_reader.status(), 403);
    let created = http
        .post(collector.url("/api/v1/status/incidents"))
        .bearer_auth(ONCALL_TOKEN)
        .json(&post_body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let post: serde_json::Value = created.json().await.unwrap();
    let id = post["id"].as_i64().unwrap();
    assert_eq!(post["title"], "Reduced performance of shop", "the template's title, filled");
    assert_eq!(post["updates"][0]["message"], "We are investigating reduced performance of shop.");

    let first = wait_for("ann's first update", WAIT, || async {
        mails(&sink).into_iter().find(|m| m["data"].as_str().unwrap().contains("Subject: [Investigating]"))
    })
    .await;
    assert_eq!(to_of(&first), "ann@example.test");
    let data = first["data"].as_str().unwrap();
    assert!(data.contains("Subject: [Investigating] Reduced performance of shop"), "{data}");
    let unsubscribe = line_with(data, "List-Unsubscribe: <").expect("List-Unsubscribe");
    assert!(data.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "RFC 8058: {data}");
    assert!(data.contains("CET"), "times in the display time zone: {data}");

    // An update with markup in it: escaped on every page and in the feed.
    let update = http
        .post(collector.url(&format!("/api/v1/status/incidents/{id}/updates")))
        .bearer_auth(ONCALL_TOKEN)
        .json(&serde_json::json!({"status": "identified", "message": "A full disk <script>alert(1)</script> on db-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), 201);
    let status_page = reqwest::get(collector.url("/")).await.unwrap().text().await.unwrap();
    assert!(status_page.contains(&format!("data-post=\"{id}\"")), "the open post on top: {status_page}");
    assert!(status_page.contains("A full disk &lt;script&gt;alert(1)&lt;/script&gt; on db-2"), "{status_page}");
    assert!(!status_page.contains("<script>"), "{status_page}");
    let post_page =
        reqwest::get(collector.url(&format!("/status/incidents/{id}"))).await.unwrap().text().await.unwrap();
    assert!(post_page.contains("Identified") && post_page.contains("Investigating"), "both updates: {post_page}");
    assert!(!post_page.contains("<script>"), "{post_page}");

    // Down go the SMTP server and the collector, with an update written in between: after both
    // come back it arrives, once.
    let identified = wait_for("the identified update mailed", WAIT, || async {
        mails(&sink).into_iter().find(|m| m["data"].as_str().unwrap().contains("Subject: [Identified]"))
    })
    .await;
    let html = identified["data"].as_str().unwrap().replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let html = &html[html.find("Content-Type: text/html").expect("an HTML part")..];
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>"),
        "escaped in the mail's HTML: {html}"
    );
    drop(sink);
    let monitoring = http
        .post(collector.url(&format!("/api/v1/status/incidents/{id}/updates")))
        .bearer_auth(ONCALL_TOKEN)
        .json(&serde_json::json!({"status": "monitoring", "message": "Space freed; watching."}))
        .send()
        .await
        .unwrap();
    assert_eq!(monitoring.status(), 201);
    wait_for("a failed attempt at the monitoring mail", WAIT, || async {
        let rows = collector.get_json("/api/v1/status/messages").await;
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["attempts"].as_u64() >= Some(1) && r["status"] == "pending")
            .then_some(())
    })
    .await;
    collector.proc.kill();
    sink = start_sink(smtp_port, &sink_out);
    let mut collector = Collector::start(&ctoml, addr, &dir.path().join("collector2.log")).await;
    wait_for("the monitoring update after the restart", Duration::from_secs(90), || async {
        mails(&sink).iter().any(|m| m["data"].as_str().unwrap().contains("Subject: [Monitoring]")).then_some(())
    })
    .await;

    // The Atom feed, read by a real feed parser.
    let feed = reqwest::get(collector.url("/status/feed.atom")).await.unwrap();
    assert_eq!(feed.headers()["content-type"], "application/atom+xml; charset=utf-8");
    let feed_file = dir.path().join("feed.xml");
    std::fs::write(&feed_file, feed.bytes().await.unwrap()).unwrap();
    let parsed = std::process::Command::new(PYTHON)
        .args([
            "-c",
            "import feedparser, json, sys; f = feedparser.parse(sys.argv[1]); \
             print(json.dumps({'bozo': f.bozo, 'title': f.feed.get('title'), 'entries': [\
             {'title': e.title, 'link': e.link, 'content': e.content[0].value if 'content' in e else ''} for e in f.entries]}))",
            feed_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(parsed["bozo"], false, "well-formed: {parsed}");
    let entry = &parsed["entries"][0];
    assert_eq!(entry["title"], "Reduced performance of shop (Monitoring)", "{parsed}");
    assert_eq!(entry["link"], format!("http://{addr}/status/incidents/{id}"));
    let content = entry["content"].as_str().unwrap();
    assert!(content.contains("Space freed; watching.") && content.contains("A full disk"), "{content}");
    assert!(!content.contains("<script>"), "the parser's sanitised view has no script: {content}");

    // Planned maintenance for the shop, two hours ahead: Ann is told it is scheduled, and it
    // is in the feed.
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    let end = start + jiff::SignedDuration::from_hours(1);
    let window = http
        .post(collector.url("/api/v1/maintenance"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"name": "Database upgrade", "start": start.to_string(), "end": end.to_string(), "services": ["shop"]}))
        .send()
        .await
        .unwrap();
    assert!(window.status().is_success(), "{}", window.text().await.unwrap());
    let notice = wait_for("the maintenance notice", WAIT, || async {
        mails(&sink).into_iter().find(|m| m["data"].as_str().unwrap().contains("Subject: [Scheduled maintenance]"))
    })
    .await;
    assert_eq!(to_of(&notice), "ann@example.test");
    let feed = reqwest::get(collector.url("/status/feed.atom")).await.unwrap().text().await.unwrap();
    assert!(feed.contains("<title>Maintenance: Database upgrade (scheduled)</title>"), "{feed}");
    let status_page = reqwest::get(collector.url("/")).await.unwrap().text().await.unwrap();
    assert!(status_page.contains("data-phase=\"scheduled\""), "{status_page}");

    // One click, as a mail client does it (RFC 8058): a POST to the List-Unsubscribe address.
    let url = unsubscribe.trim_start_matches("List-Unsubscribe: <").trim_end_matches('>').to_string();
    let r = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An admin's webhook subscribes to everything: when it has the resolution, Ann would have
    // had hers too.
    let webhook = http
        .post(collector.url("/api/v1/status/subscribers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"url": format!("http://{}/hook", hook.addr)}))
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 201);
    let secret = webhook.json::<serde_json::Value>().await.unwrap()["signing_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64, "a 256-bit signing secret, given once");
    let resolved = http
        .post(collector.url(&format!("/api/v1/status/incidents/{id}/updates")))
        .bearer_auth(ONCALL_TOKEN)
        .json(&serde_json::json!({"status": "resolved", "message": "Fixed."}))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 201);
    let got = wait_for("the webhook's resolution", WAIT, || async {
        hook.received().into_iter().find(|b| b["update"]["status"] == "resolved")
    })
    .await;
    assert_eq!(got["post"]["id"], id);
    let mut all = mails(&sink);
    all.retain(|m| m["data"].as_str().unwrap().contains("Subject: [Resolved]"));
    assert!(all.is_empty(), "unsubscribed: no resolution mail: {all:?}");

    // Every update reached Ann exactly once; Bob (billing) heard nothing of the shop.
    let to_ann: Vec<String> = mails(&sink)
        .iter()
        .filter(|m| to_of(m) == "ann@example.test")
        .filter_map(|m| line_with(m["data"].as_str().unwrap(), "Subject: ["))
        .collect();
    assert_eq!(to_ann.iter().filter(|s| s.contains("[Monitoring]")).count(), 1, "{to_ann:?}");
    let to_bob: Vec<String> = mails(&sink)
        .iter()
        .filter(|m| to_of(m) == "bob@example.test")
        .filter_map(|m| line_with(m["data"].as_str().unwrap(), "Subject: "))
        .collect();
    assert!(to_bob.iter().all(|s| s.starts_with("Subject: Confirm")), "bob subscribed to billing only: {to_bob:?}");

    // A flood of subscribe requests from one address: refused once the hour's share is used.
    let mut codes = Vec::new();
    for i in 0..8 {
        codes.push(subscribe(&http, &collector, &format!("email=flood{i}%40example.test")).await.as_u16());
    }
    assert!(codes.contains(&429), "{codes:?}");
    assert!(codes.iter().filter(|c| **c == 202).count() <= 6, "{codes:?}");
    collector.proc.kill();
}

/// A page per customer: only the services in that customer's contract, its own title, logo and
/// footer, behind its token when it has one, by path and by its own host name — while the
/// collector's own status page stays private.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_page_shows_only_that_customers_services() {
    let dir = tempfile::tempdir().unwrap();
    let addr = vakt_tests::loopback_addr();
    let logo = dir.path().join("acme.svg");
    std::fs::write(&logo, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>").unwrap();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"

[access]
public_status_page = false

[api_tokens.oncall]
token_hash = "{oncall}"
scope = "oncall"

[services.shop]
checks = []
customers = ["acme"]

[services.billing]
checks = []
customers = ["globex"]

[status_pages.acme]
title = "Acme services"
customer = "acme"
hosts = ["status.acme.test"]
token = {{ value = "acme-page-token-0123456789" }}
logo_file = {logo:?}
footer_links = [{{ text = "Acme service desk", url = "https://desk.acme.test/" }}]

[status_pages.globex]
customer = "globex"
"#,
            oncall = token_hash(ONCALL_TOKEN),
        ),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let http = reqwest::Client::new();
    // One post through the API, one from the command line (beside the running collector).
    let r = http
        .post(collector.url("/api/v1/status/incidents"))
        .bearer_auth(ONCALL_TOKEN)
        .json(
            &serde_json::json!({"title": "Shop checkout failing", "services": ["shop"], "message": "Looking into it."}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let config = ctoml.to_str().unwrap();
    let cli = ["status-post", "new", "--config", config, "--service", "billing", "--title", "Invoices delayed"];
    let (code, out, err) =
        vakt_tests::run_bin("vakt-collector", &[&cli[..], &["--message", "Looking into it."]].concat(), None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("status post 2: Invoices delayed (investigating)"), "{out}");
    let (code, out, _) = vakt_tests::run_bin(
        "vakt-collector",
        &["status-post", "update", "--config", config, "--id", "2", "--status", "fixed"],
        None,
    );
    assert_ne!(code, 0, "a status that is not one is refused");
    assert!(out.is_empty());
    let get = |path: &str, host: Option<&str>, token: Option<&str>| {
        let mut req = http.get(collector.url(path));
        if let Some(h) = host {
            req = req.header("host", h);
        }
        if let Some(t) = token {
            req = req.basic_auth("customer", Some(t));
        }
        req.send()
    };
    assert_eq!(get("/", None, None).await.unwrap().status(), 401, "the collector's own page is private");
    assert_eq!(get("/p/acme", None, None).await.unwrap().status(), 401, "acme's page needs its token");
    assert_eq!(get("/p/acme", None, Some("wrong-token-0123456789")).await.unwrap().status(), 401);
    let acme = get("/p/acme", None, Some("acme-page-token-0123456789")).await.unwrap();
    assert_eq!(acme.status(), 200);
    assert_eq!(acme.headers()["cache-control"], "private, no-store");
    let acme = acme.text().await.unwrap();
    assert!(acme.contains("<h1>Acme services</h1>"), "{acme}");
    assert!(acme.contains("data-service=\"shop\"") && !acme.contains("data-service=\"billing\""), "{acme}");
    assert!(acme.contains("Shop checkout failing") && !acme.contains("Invoices delayed"), "{acme}");
    assert!(acme.contains("src=\"data:image/svg+xml;base64,"), "the logo, embedded: {acme}");
    assert!(acme.contains("<a href=\"https://desk.acme.test/\">Acme service desk</a>"), "{acme}");
    assert!(!acme.contains("/status/history"), "no links to the collector-wide pages: {acme}");
    let by_token_query = get("/p/acme?token=acme-page-token-0123456789", None, None).await.unwrap();
    assert_eq!(by_token_query.status(), 200);
    // The customer's own domain, pointed at the collector: the same page at `/`.
    let by_host = get("/", Some("status.acme.test"), Some("acme-page-token-0123456789")).await.unwrap();
    assert_eq!(by_host.status(), 200);
    assert!(by_host.text().await.unwrap().contains("<h1>Acme services</h1>"));
    // Globex's page is public and shows billing only.
    let globex = get("/p/globex", None, None).await.unwrap().text().await.unwrap();
    assert!(globex.contains("data-service=\"billing\"") && !globex.contains("data-service=\"shop\""), "{globex}");
    assert!(globex.contains("Invoices delayed") && !globex.contains("Shop checkout"), "{globex}");
    assert_eq!(get("/p/initech", None, None).await.unwrap().status(), 401, "no page says nothing about which exist");
}
