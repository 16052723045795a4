//! Vakt's own pages in a real browser (headless Chromium): the status page shows the states a
//! scripted outage leaves, loads without console errors, and is saved as a screenshot
//! (`target/test-artifacts/status-page.png`). The SVG badges say the same.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Proc, Target};

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "pages-agent-token-0123456789";

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
            "listen = \"{addr}\"\ndata_dir = \"data\"\n[agents.edge]\ntoken_hash = \"{}\"\n\
             [checks.shop-web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"200ms\"\nfail_after = 2\nagents = [\"edge\"]\n\
             [checks.docs-web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"200ms\"\nagents = [\"edge\"]\n\
             [services.shop]\ndescription = \"The web shop\"\nchecks = [\"shop-web\"]\n\
             [services.docs]\ndescription = \"Documentation\"\nchecks = [\"docs-web\"]\n",
            token_hash(TOKEN),
            shop.addr,
            docs.addr
        ),
    )
    .unwrap();
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, "");
    let collector = Collector::start(&ctoml, addr, &dir.path().join("c.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
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

    let profile = dir.path().join("chromium");
    let url = collector.url("/");
    let (dom, log) = chromium(&profile, &["--dump-dom", &url]);
    assert!(dom.contains("<h1>Service status</h1>"), "{dom}\n{log}");
    assert!(dom.contains("data-service=\"shop\" data-state=\"down\""), "{dom}");
    assert!(dom.contains("data-service=\"docs\" data-state=\"operational\""), "{dom}");
    assert!(dom.contains("Some services are down"), "{dom}");
    assert!(dom.contains("shop-web is down: status 503"), "the active incident is listed: {dom}");
    assert_eq!(dom.matches("class=\"bar ").count(), 2 * 90, "90 daily bars per service");
    let console_errors: Vec<&str> =
        log.lines().filter(|l| l.contains("CONSOLE") && (l.contains(":ERROR:") || l.contains("Uncaught"))).collect();
    assert!(console_errors.is_empty(), "console errors: {console_errors:?}");

    let shot = artifacts().join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let (_, log) = chromium(
        &profile,
        &["--window-size=1280,1800", "--hide-scrollbars", &format!("--screenshot={}", shot.display()), &url],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{log}"));
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(png.len() > 10_000, "a real picture, not an empty page: {} bytes", png.len());

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
    assert!(dom.contains("resolved"), "the incident moves to the history: {dom}");
}
