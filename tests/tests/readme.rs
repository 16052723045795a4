//! The README's first configuration runs as written: its `hash-token` output is the real
//! output, and its collector and agent snippets, taken from README.md as they stand, work
//! together with the real binaries — only what must differ on a test machine is replaced
//! (addresses to loopback, paths to a temp dir, the token and certificate to real ones, the
//! commented-out `collector_ca_file` to this test's private CA, and the shop's `cert_min_days`
//! goes, the test's shop being plain HTTP). Both files pass
//! `check-config`; the agent pushes over HTTPS, every check is up, and no incident opens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use vakt_tests::{metric, wait_for, Proc, TestPki, READ_TOKEN};

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

/// The first fenced block of `lang` after the heading that starts with `heading`.
fn block_after(text: &str, heading: &str, lang: &str) -> String {
    let at = text.find(heading).unwrap_or_else(|| panic!("README has no heading {heading:?}"));
    let open = format!("```{lang}\n");
    let start = at + text[at..].find(&open).unwrap() + open.len();
    let end = start + text[start..].find("```").unwrap();
    text[start..end].to_string()
}

/// Replaces `from` (which must be in `text` exactly once) with `to`.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "the README snippet should hold {from:?} once:\n{text}");
    text.replace(from, to)
}

#[test]
fn the_readmes_hash_token_output_is_the_real_one() {
    let shown = block_after(&readme(), "### 1. A token per agent", "console");
    let (code, out, err) = vakt_tests::run_bin("vakt-collector", &["hash-token"], None);
    assert_eq!(code, 0);
    let real: Vec<String> = format!("{out}{err}").lines().map(String::from).collect();
    let documented: Vec<&str> = shown.lines().skip(1).collect(); // after "$ vakt-collector hash-token"
    assert_eq!(documented.len(), real.len(), "README:\n{shown}\nreal:\n{out}{err}");
    for (doc, real) in documented.iter().zip(&real) {
        // "vakt_3f9c...": the fixed part, then random hex the README abbreviates.
        let fixed = match doc.split_once("...") {
            Some((head, _)) => head.trim_end_matches(|c: char| c.is_ascii_hexdigit()),
            None => doc,
        };
        assert!(real.starts_with(fixed), "README shows {doc:?}, the command prints {real:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_collector_and_agent_snippets_work_together() {
    let text = readme();
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::issue(dir.path(), "readme");
    // The shop the snippet's check looks at: a page with "Add to cart".
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "<h1>Shop</h1><button>Add to cart</button>" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (code, out, _) = vakt_tests::run_bin("vakt-collector", &["hash-token"], None);
    assert_eq!(code, 0);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start().trim_start_matches('=').trim().to_string()))
    };
    let (token, hash) = (field("token ").unwrap(), field("token_hash").unwrap());
    let token_file = dir.path().join("agent.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();

    let addr: SocketAddr = vakt_tests::loopback_addr();
    let port = addr.port();
    let mut collector = block_after(&text, "### 2. The collector", "toml");
    for (from, to) in [
        ("listen = \"0.0.0.0:8427\"".to_string(), format!("listen = \"127.0.0.1:{port}\"")),
        ("data_dir = \"/var/lib/vakt\"".into(), format!("data_dir = \"{}\"", dir.path().join("data").display())),
        ("cert_file = \"/etc/vakt/collector.pem\"".into(), format!("cert_file = \"{}\"", pki.cert.display())),
        ("key_file = \"/etc/vakt/collector.key\"".into(), format!("key_file = \"{}\"", pki.key.display())),
        ("token_hash = \"sha256:9a1e...\"".into(), format!("token_hash = \"{hash}\"")),
        ("target = \"https://shop.example.com/\"".into(), format!("target = \"http://{shop}/\"")),
    ] {
        collector = replace_once(&collector, &from, &to);
    }
    // The shop here is plain HTTP on loopback: its certificate check has nothing to look at.
    let cert_line = collector.lines().find(|l| l.starts_with("cert_min_days = 14")).unwrap().to_string();
    collector = replace_once(&collector, &format!("{cert_line}\n"), "");
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(&ctoml, collector).unwrap();
    vakt_tests::grant_reader(&ctoml);

    let agent_metrics = vakt_tests::loopback_addr();
    let mut agent = block_after(&text, "### 3. The agent", "toml");
    for (from, to) in [
        (
            "collector = \"https://vakt.example.com:8427\"".to_string(),
            format!("collector = \"https://localhost:{port}\""),
        ),
        ("token_file = \"/etc/vakt/agent.token\"".into(), format!("token_file = \"{}\"", token_file.display())),
        (
            "spool_dir = \"/var/lib/vakt-agent\"".into(),
            format!("spool_dir = \"{}\"", dir.path().join("agent").display()),
        ),
        ("metrics_listen = \"127.0.0.1:9427\"".into(), format!("metrics_listen = \"{agent_metrics}\"")),
        ("# collector_ca_file = \"/etc/vakt/ca.pem\"".into(), format!("collector_ca_file = \"{}\"", pki.ca.display())),
    ] {
        agent = replace_once(&agent, &from, &to);
    }
    let atoml = dir.path().join("agent.toml");
    std::fs::write(&atoml, agent).unwrap();

    for (bin, file) in [("vakt-collector", &ctoml), ("vakt-agent", &atoml)] {
        let (code, out, err) = vakt_tests::run_bin(bin, &["check-config", file.to_str().unwrap()], None);
        assert_eq!(code, 0, "{bin} check-config:\n{out}{err}");
    }
    let _collector =
        Proc::spawn("vakt-collector", &["run", "--config", ctoml.to_str().unwrap()], &dir.path().join("c.log"));
    let _agent = Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("a.log"));

    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let get = |path: &str| {
        let req = http.get(format!("{base}{path}")).bearer_auth(READ_TOKEN);
        async move { req.send().await.ok()?.text().await.ok() }
    };
    for check in ["shop-home", "local-disk"] {
        wait_for(&format!("{check} up"), Duration::from_secs(60), || async {
            let text = get("/metrics").await?;
            (metric(&text, &format!("vakt_check_up{{check=\"{check}\"}}")) == Some(1.0)).then_some(())
        })
        .await;
    }
    let open: serde_json::Value = serde_json::from_str(&get("/api/v1/incidents?status=open").await.unwrap()).unwrap();
    assert_eq!(open, serde_json::json!([]), "a newcomer's first configuration opens no incident");
}
