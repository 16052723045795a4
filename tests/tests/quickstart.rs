//! `vakt-collector quickstart`, the README's first command: it watches itself, prints its
//! URLs, and stops cleanly on Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;
use vakt_tests::{bin, free_port, metric, wait_for, Proc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_watches_itself_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let stdout = dir.path().join("stdout.txt");
    let child = Command::new(bin("vakt-collector"))
        .args(["quickstart", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", "vakt-data"])
        .current_dir(dir.path())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr.txt")).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut proc = Proc { child, log: dir.path().join("stderr.txt") };
    let base = format!("http://127.0.0.1:{port}");

    let printed = wait_for("the URLs on stdout", Duration::from_secs(20), || async {
        let s = std::fs::read_to_string(&stdout).unwrap_or_default();
        s.contains("Press Ctrl-C").then_some(s)
    })
    .await;
    for path in ["/", "/incidents", "/sla", "/agents", "/api/v1/checks", "/api/v1/incidents", "/metrics", "/healthz"] {
        assert!(printed.contains(&format!("{base}{path}\n")), "{path} missing from:\n{printed}");
    }
    assert!(printed.contains(&dir.path().join("vakt-data").display().to_string()), "{printed}");

    // The printed API token opens what is not public; without it, a 401 that says why.
    let token = printed.lines().find_map(|l| l.trim().strip_prefix("API token")).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    let denied = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    assert!(denied.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(http.get(format!("{base}/")).send().await.unwrap().status(), 200, "the status page is public");
    let page = http.get(format!("{base}/incidents")).basic_auth("admin", Some(&token)).send().await.unwrap();
    assert_eq!(page.status(), 200, "a browser logs in as admin with the token");

    // Both built-in checks come up (interval 10s with jitter: allow two rounds).
    wait_for("both quickstart checks up", Duration::from_secs(30), || async {
        let resp = http.get(format!("{base}/metrics")).bearer_auth(&token).send().await.ok()?;
        let text = resp.text().await.ok()?;
        let up = |c: &str| metric(&text, &format!("vakt_check_up{{check=\"{c}\"}}")) == Some(1.0);
        (up("collector-http") && up("collector-tcp")).then_some(())
    })
    .await;
    assert!(dir.path().join("vakt-data/vakt.db").exists());
    // The quickstart's own agent is on the agents page, reporting.
    let agents = http.get(format!("{base}/agents")).basic_auth("admin", Some(&token)).send().await.unwrap();
    assert!(agents.text().await.unwrap().contains("class=\"reporting\">reporting<"));

    proc.signal("INT");
    let status = proc.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", proc.log_text());
    assert!(std::fs::read_to_string(&stdout).unwrap().contains("Vakt quickstart stopped."));
}
