//! Email notifications through a real SMTP server on loopback (aiosmtpd): the server is down
//! when the incident opens and comes back later; the mail arrives once, with its recipients,
//! subject and bodies, and so does the resolution.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{
    aiosmtpd_available, free_port, mails, start_sink, start_sink_with, token_hash, wait_for, Collector, Proc, Target,
};

const WAIT: Duration = Duration::from_secs(40);
const AGENT_TOKEN: &str = "email-agent-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_arrives_once_after_the_smtp_server_comes_back() {
    if !aiosmtpd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let smtp_port = free_port();
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
group_wait = "100ms"

[agents.edge]
token_hash = "{agent}"

[checks.mail-web]
kind = "http"
target = "http://{target}/"
interval = "200ms"
fail_after = 2
agents = ["edge"]

[services.webmail]
customers = ["acme"]
checks = ["mail-web"]

[receivers.oncall-mail]
kind = "email"
smtp = "127.0.0.1:{smtp_port}"
smtp_tls = "none"
from = "Vakt <vakt@example.test>"
to = ["oncall@example.test", "manager@example.test"]

[[routes]]
receivers = ["oncall-mail"]
"#,
            agent = token_hash(AGENT_TOKEN),
            target = target.addr
        ),
    )
    .unwrap();
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, AGENT_TOKEN, "");
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("mail-web").await;

    // Down while the SMTP server is down: the mail waits in the outbox.
    target.set_status(503);
    let incident = wait_for("the incident", WAIT, || async {
        collector.get_json("/api/v1/incidents?check=mail-web").await.as_array().unwrap().first().cloned()
    })
    .await;
    let id = incident["id"].as_i64().unwrap();
    wait_for("a failed attempt", WAIT, || async {
        collector
            .metric("vakt_notifications_total{outcome=\"retried\",receiver=\"oncall-mail\"}")
            .await
            .filter(|n| *n >= 1.0)
    })
    .await;

    // The SMTP server comes back: the mail is delivered, once.
    let sink = start_sink(smtp_port, &dir.path().join("mails.jsonl"));
    wait_for("the firing mail", WAIT, || async { (!mails(&sink).is_empty()).then_some(()) }).await;
    let first = &mails(&sink)[0];
    assert_eq!(first["from"], "vakt@example.test");
    assert_eq!(first["to"], serde_json::json!(["oncall@example.test", "manager@example.test"]));
    let data = first["data"].as_str().unwrap();
    assert!(data.contains("Subject: [P2] mail-web is down: HTTP 503"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("text/plain") && data.contains("text/html"), "{data}");
    assert!(data.contains("Impact: services: webmail; customers: acme"), "{data}");
    // Threading: the announcement is the thread's root; a list per receiver; dated.
    let root = format!("<vakt.incident.{id}@example.test>");
    assert!(data.contains(&format!("Message-ID: {root}")), "{data}");
    assert!(data.contains("List-Id: Vakt oncall-mail <oncall-mail.vakt.example.test>"), "{data}");
    assert!(data.contains("\nDate: "), "{data}");
    assert!(!data.contains("In-Reply-To:"), "{data}");

    target.set_status(200);
    wait_for("the resolved mail", WAIT, || async { (mails(&sink).len() >= 2).then_some(()) }).await;
    let resolved = mails(&sink)[1]["data"].as_str().unwrap().to_string();
    assert!(resolved.contains("Subject: [RESOLVED] mail-web is down: HTTP 503 (after"), "{resolved}");
    // The resolution answers the announcement, so mail clients show one thread.
    assert!(resolved.contains(&format!("In-Reply-To: {root}")), "{resolved}");
    assert!(resolved.contains(&format!("References: {root}")), "{resolved}");
    let rows = collector.get_json(&format!("/api/v1/notifications?incident={id}")).await;
    // Named by its outbox entry: delivered again after a failover, it has the same Message-ID.
    let resolved_entry = rows.as_array().unwrap().iter().find(|n| n["event"] == "resolved").unwrap()["id"].clone();
    assert!(
        resolved.contains(&format!("Message-ID: <vakt.incident.{id}.resolved.vakt-{resolved_entry}@example.test>")),
        "{resolved}"
    );
    assert!(resolved.contains(&format!("X-Vakt-Notification-Id: vakt-{resolved_entry}")), "{resolved}");
    let delivered: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "delivered")
        .map(|n| n["event"].as_str().unwrap())
        .collect();
    assert_eq!(delivered.len(), 2, "{rows}");
    assert_eq!(mails(&sink).len(), 2, "each mail once");
}

/// STARTTLS and implicit TLS against real TLS SMTP servers with a private CA, with login: the
/// mail arrives encrypted and authenticated; without the CA the certificate is refused, with a
/// clear error that does not show the password.
#[test]
fn mail_goes_over_starttls_and_implicit_tls_with_login() {
    if !aiosmtpd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = vakt_tests::TestPki::issue(dir.path(), "smtp");
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let (starttls_port, implicit_port) = (free_port(), free_port());
    let starttls = start_sink_with(
        starttls_port,
        &dir.path().join("starttls.jsonl"),
        &["--starttls", cert, key, "--auth", "vakt:pa55"],
    );
    let implicit = start_sink_with(
        implicit_port,
        &dir.path().join("implicit.jsonl"),
        &["--implicit", cert, key, "--auth", "vakt:pa55"],
    );
    let pw = dir.path().join("smtp-password");
    std::fs::write(&pw, "pa55\n").unwrap();
    let ctoml = dir.path().join("collector.toml");
    let receiver = |name: &str, port: u16, tls: &str, ca: bool| {
        format!(
            "[receivers.{name}]\nkind = \"email\"\nsmtp = \"127.0.0.1:{port}\"\nsmtp_tls = \"{tls}\"\n{ca}\
             username = \"vakt\"\npassword = {{ file = \"{pw}\" }}\nfrom = \"vakt@example.test\"\nto = [\"oncall@example.test\"]\n",
            ca = if ca { format!("smtp_ca_file = \"{}\"\n", pki.ca.display()) } else { String::new() },
            pw = pw.display()
        )
    };
    std::fs::write(
        &ctoml,
        format!(
            "data_dir = \"data\"\n{}{}{}",
            receiver("starttls", starttls_port, "starttls", true),
            receiver("implicit", implicit_port, "implicit", true),
            receiver("untrusted", starttls_port, "starttls", false),
        ),
    )
    .unwrap();
    let config = ctoml.to_str().unwrap();

    for (name, sink) in [("starttls", &starttls), ("implicit", &implicit)] {
        let (code, out, err) =
            vakt_tests::run_bin("vakt-collector", &["notify-test", "--config", config, "--receiver", name], None);
        assert_eq!(code, 0, "{name}: {out}{err}");
        let got = mails(sink);
        assert_eq!(got.len(), 1, "{name}: one mail");
        assert_eq!(got[0]["tls"], true, "{name}: over TLS");
        assert_eq!(got[0]["login"], "vakt", "{name}: authenticated");
        assert_eq!(got[0]["to"], serde_json::json!(["oncall@example.test"]));
        assert!(got[0]["data"].as_str().unwrap().contains("Subject: [P5] Test notification from Vakt"), "{got:?}");
    }

    // The server's certificate is not from a trusted root: refused, and said so.
    let (code, out, err) =
        vakt_tests::run_bin("vakt-collector", &["notify-test", "--config", config, "--receiver", "untrusted"], None);
    assert_ne!(code, 0, "{out}");
    let all = format!("{out}{err}");
    assert!(all.contains("untrusted") && all.to_lowercase().contains("certificate"), "{all}");
    assert!(!all.contains("pa55"), "the password never shows: {all}");
    assert_eq!(mails(&starttls).len(), 1, "nothing sent without trust");
}
