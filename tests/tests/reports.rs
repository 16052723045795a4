//! Scheduled SLA reports with the real collector, a real SMTP server (aiosmtpd) and the
//! collector's clock set by libfaketime: the monthly report for customer acme, due on the 1st
//! at 08:00 Europe/Oslo (07:00 UTC in December), arrives at that time, once per recipient, as
//! HTML with its pictures and the CSV attached. The collector is then stopped across the due
//! time of a weekly report (Tuesdays 09:30 Oslo = 08:30 UTC) and started again at 09:00 UTC:
//! the missed weekly report is sent once when it comes back, the monthly one not again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use vakt_tests::{aiosmtpd_available, faketime_lib, free_port, mails, start_sink, wait_for, Collector};

const WAIT: Duration = Duration::from_secs(60);

fn subject(mail: &serde_json::Value) -> String {
    let data = mail["data"].as_str().unwrap();
    data.lines().find(|l| l.starts_with("Subject: ")).unwrap_or_default().trim_start_matches("Subject: ").to_string()
}

fn header_time(mail: &serde_json::Value) -> jiff::Timestamp {
    let data = mail["data"].as_str().unwrap();
    let date = data.lines().find(|l| l.starts_with("Date: ")).unwrap().trim_start_matches("Date: ");
    jiff::fmt::rfc2822::parse(date).unwrap().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_arrives_once_at_eight_local_and_a_missed_one_after_a_restart() {
    let (Some(faketime), true) = (faketime_lib(), aiosmtpd_available()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let sink = start_sink(smtp_port, &dir.path().join("mails.jsonl"));
    let addr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
public_url = "http://{addr}"
display_timezone = "Europe/Oslo"

[services.shop]
checks = []
customers = ["acme"]

[slos.shop-month]
service = "shop"
objective = 99.9
calendar = "month"
timezone = "Europe/Oslo"

[receivers.mail]
kind = "email"
smtp = "127.0.0.1:{smtp_port}"
smtp_tls = "none"
from = "Reports <reports@example.test>"
to = ["nobody@example.test"]

[[report_schedules]]
name = "acme-monthly"
every = "month"
day = 1
at = "08:00"
timezone = "Europe/Oslo"
customer = "acme"
receiver = "mail"
to = ["sla@acme.test", "cio@acme.test"]

[[report_schedules]]
name = "acme-weekly"
every = "week"
day = "tuesday"
at = "09:30"
timezone = "Europe/Oslo"
customer = "acme"
receiver = "mail"
to = ["sla@acme.test"]
"#
        ),
    )
    .unwrap();
    let clock = |at: &str| {
        vec![
            ("LD_PRELOAD", faketime.to_string()),
            ("FAKETIME", format!("@{at}")),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
            ("TZ", "UTC".to_string()),
        ]
    };
    // Ten seconds before 08:00 in Oslo on Tuesday 1 December 2026.
    let env = clock("2026-12-01 06:59:50");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut collector = Collector::start_with_env(&ctoml, addr, &dir.path().join("collector.log"), &env).await;
    let monthly = wait_for("the monthly report to both", WAIT, || async {
        let m: Vec<_> = mails(&sink).into_iter().filter(|m| subject(m).starts_with("SLA report 2026-11")).collect();
        (m.len() >= 2).then_some(m)
    })
    .await;
    let due = "2026-12-01T07:00:00Z".parse::<jiff::Timestamp>().unwrap();
    for m in &monthly {
        assert_eq!(subject(m), "SLA report 2026-11: customer acme");
        let sent = header_time(m);
        assert!(
            sent >= due && sent < due + jiff::SignedDuration::from_secs(30),
            "sent at 08:00 Oslo, not before: {sent}"
        );
        let data = m["data"].as_str().unwrap().replace("=\r\n", "").replace("=3D", "=");
        assert!(data.contains("filename=\"sla-acme-monthly-2026-11.csv\""), "the CSV attached: {data}");
        assert!(data.contains("period,service,slo,objective_percent"), "the CSV's header: {data}");
        assert!(data.contains("<svg id=\"budget-shop-month\""), "the budget picture: {data}");
        assert!(data.contains("<svg id=\"incidents\""), "the incident timeline: {data}");
        assert!(data.contains("@media print"), "a print stylesheet: {data}");
    }
    let to: std::collections::BTreeSet<String> =
        monthly.iter().map(|m| m["to"][0].as_str().unwrap().to_string()).collect();
    assert_eq!(to.into_iter().collect::<Vec<_>>(), ["cio@acme.test", "sla@acme.test"]);
    assert!(mails(&sink).iter().all(|m| !subject(m).contains("2026-W")), "the weekly run is not due yet");

    // Down across 09:30 Oslo (08:30 UTC); back at 09:00 UTC.
    collector.proc.kill();
    let env = clock("2026-12-01 09:00:00");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut collector = Collector::start_with_env(&ctoml, addr, &dir.path().join("collector2.log"), &env).await;
    let weekly = wait_for("the missed weekly report", WAIT, || async {
        mails(&sink).into_iter().find(|m| subject(m).starts_with("SLA report 2026-W48"))
    })
    .await;
    assert_eq!(weekly["to"][0], "sla@acme.test");
    let all = mails(&sink);
    assert_eq!(
        all.iter().filter(|m| subject(m).starts_with("SLA report 2026-11")).count(),
        2,
        "the monthly one not again"
    );
    assert_eq!(all.iter().filter(|m| subject(m).starts_with("SLA report 2026-W48")).count(), 1);
    collector.proc.kill();
}
