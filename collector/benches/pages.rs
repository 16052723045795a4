//! How fast and how light the check and service pages are, on the embedded store.
//!
//!     cargo bench -p vakt-collector --bench pages
//!
//! A service with 20 checks, each probed once a minute for 30 days (864,000 results, a failed
//! hour now and then), an SLO on the service. Printed per page: its size (HTML with inline SVG)
//! and the time to gather and render it (median and worst of 20), against the bounds the pages
//! are held to: under 100 KiB and under 50 ms. The SLO figures come from the last SLO round, as
//! in a running collector (that round itself is `--bench slo_eval`'s subject).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;
use vakt_collector::app::App;
use vakt_config::wire::{Batch, Sample, PROTOCOL_VERSION};
use vakt_config::CollectorConfig;

const MINUTE: i64 = 60_000;
const DAY: i64 = 1_440 * MINUTE;
const CHECKS: usize = 20;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("data_dir = {:?}\n[agents.edge]\ntoken_hash = \"sha256:{}\"\n", dir.path(), "0".repeat(64));
    for c in 0..CHECKS {
        text.push_str(&format!(
            "[checks.web-{c:02}]\nkind = \"http\"\ntarget = \"https://web-{c:02}.example.com/\"\ninterval = \"1m\"\nagents = [\"edge\"]\n"
        ));
    }
    let checks: Vec<String> = (0..CHECKS).map(|c| format!("\"web-{c:02}\"")).collect();
    text.push_str(&format!(
        "[services.shop]\nowner = \"Web Operations\"\ncustomers = [\"acme\"]\nchecks = [{}]\n\
         [slos.shop-availability]\nservice = \"shop\"\nobjective = 99.9\nwindow = \"30d\"\n",
        checks.join(", ")
    ));
    let app = App::open(CollectorConfig::parse(&text, Path::new("collector.toml")).unwrap()).unwrap();
    let now = vakt_collector::core::time::now_ms();
    let start = now - 30 * DAY;
    let t = Instant::now();
    let mut sequence = 0;
    // A day's results at a time: every check once a minute; one failed hour every 5 days.
    for day in 0..30 {
        let day_start = start + day * DAY;
        let samples: Vec<Sample> = (0..1_440)
            .flat_map(|m| {
                let ts = day_start + m * MINUTE;
                (0..CHECKS).map(move |c| {
                    let failed = day % 5 == 2 && (600..660).contains(&m) && c == day as usize % CHECKS;
                    Sample {
                        check: format!("web-{c:02}"),
                        timestamp_ms: ts,
                        success: !failed,
                        degraded: false,
                        latency_seconds: Some(0.05 + (m % 7) as f64 * 0.01),
                        values: [("status_code".to_string(), if failed { 503.0 } else { 200.0 })].into(),
                        error: failed.then(|| "status 503".to_string()),
                        perfdata: Vec::new(),
                    }
                })
            })
            .collect();
        for chunk in samples.chunks(5_000) {
            sequence += 1;
            let batch = Batch {
                version: PROTOCOL_VERSION,
                agent: "edge".into(),
                agent_version: None,
                instance: None,
                sequence,
                samples: chunk.to_vec(),
            };
            app.store.commit_batch(&batch, now, &app.policies).unwrap();
        }
    }
    println!(
        "pages: 1 service, {CHECKS} checks, 30 days of results once a minute ({} results, loaded in {:.1} s)",
        30 * 1_440 * CHECKS,
        t.elapsed().as_secs_f64()
    );
    let who = "bench";
    let measure = |name: &str, render: &mut dyn FnMut() -> String| {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..20 {
            let t = Instant::now();
            size = render().len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let (median, worst) = (times[times.len() / 2], times[times.len() - 1]);
        let ok = |b: bool| if b { "ok" } else { "OVER" };
        println!(
            "  {name:<16} {:>6.1} KiB ({} <= 100 KiB) · render median {median:>6.1} ms, worst {worst:>6.1} ms ({} <= 50 ms)",
            size as f64 / 1024.0,
            ok(size <= 100 * 1024),
            ok(median <= 50.0)
        );
    };
    // As a running collector has it: the SLO round evaluated a moment ago.
    vakt_collector::evaluate::evaluate_slos(&app, now).unwrap();
    let shown = app.shown(now);
    measure("/checks/web-02", &mut || {
        let page = vakt_collector::http::check_page::gather(&app, "web-02", now).unwrap().unwrap();
        vakt_collector::http::check_page::render(&page, &shown, who)
    });
    measure("/services/shop", &mut || {
        let page = vakt_collector::http::service_page::gather(&app, "shop", now).unwrap().unwrap();
        vakt_collector::http::service_page::render(&page, &shown, who)
    });
}
