//! The Grafana dashboards against a real Prometheus (Debian's package, on loopback) scraping a
//! real collector and agent: every panel's query, with its variables filled in, parses and
//! returns data; every metric they name is documented; the alerting rules pass promtool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use vakt_tests::{free_port, token_hash, wait_for, Collector, Proc, Target};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const TOKEN: &str = "dash-agent-token-0123456789";

fn tool(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{path} is missing: .ci/run must install prometheus");
    eprintln!("skipping: {path} is not installed");
    false
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards");
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 3, "overview, slo, agents");
    out
}

/// Every PromQL expression of a dashboard: panel targets and annotations.
fn queries(d: &serde_json::Value) -> Vec<String> {
    let mut q: Vec<String> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_string()))
        .collect();
    q.extend(d["annotations"]["list"].as_array().unwrap().iter().filter_map(|a| a["expr"].as_str().map(String::from)));
    q
}

#[test]
fn dashboards_are_portable_and_name_only_documented_metrics() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md")).unwrap();
    for (name, d) in dashboards() {
        assert!(d["schemaVersion"].as_i64().unwrap() >= 39, "{name}: schema version");
        let vars = d["templating"]["list"].as_array().unwrap();
        assert!(
            vars.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
            "{name}"
        );
        let text = serde_json::to_string(&d).unwrap();
        for uid in text.split("\"uid\":\"").skip(1).map(|r| r.split('"').next().unwrap()) {
            assert!(uid == "${datasource}" || uid.starts_with("vakt-"), "{name}: hard-coded uid {uid}");
        }
        for q in queries(&d) {
            for token in q.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
                let metric = ["_bucket", "_sum", "_count"].iter().fold(token, |t, s| t.strip_suffix(s).unwrap_or(t));
                if metric.starts_with("vakt_") || metric.starts_with("slo:") {
                    assert!(doc.contains(&format!("`{metric}`")), "{name}: {metric} is not in docs/metrics.md");
                }
            }
        }
    }
}

#[test]
fn alerting_rules_pass_promtool() {
    if !tool(PROMTOOL) {
        return;
    }
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/vakt-alerts.yml");
    let out = std::process::Command::new(PROMTOOL).args(["check", "rules", rules.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_from_a_real_prometheus() {
    if !tool(PROMETHEUS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let agent_metrics = format!("127.0.0.1:{}", free_port());
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\nslo_evaluation_interval = \"1s\"\n\
             [agents.edge]\ntoken_hash = \"{}\"\n\
             [checks.web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"200ms\"\nagents = [\"edge\"]\n\
             [services.site]\nchecks = [\"web\"]\n\
             [slos.site-up]\nservice = \"site\"\nobjective = 99.5\nwindow = \"7d\"\n\
             [receivers.hook]\nkind = \"webhook\"\nurl = {{ value = \"http://127.0.0.1:9/\" }}\n",
            token_hash(TOKEN),
            target.addr
        ),
    )
    .unwrap();
    let atoml = dir.path().join("agent.toml");
    std::fs::write(
        &atoml,
        format!("name = \"edge\"\ncollector = \"http://{addr}\"\ntoken = \"{TOKEN}\"\nspool_dir = \"agent\"\npush_interval = \"100ms\"\nmetrics_listen = \"{agent_metrics}\"\n"),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));
    wait_for("SLO metrics", Duration::from_secs(30), || async {
        collector.metric("vakt_slo_sli_ratio{service=\"site\",slo=\"site-up\"}").await.map(|_| ())
    })
    .await;

    let prom_port = free_port();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: vakt-collector\n    authorization:\n      credentials: {token}\n    static_configs:\n      - targets: ['{addr}']\n  - job_name: vakt-agent\n    static_configs:\n      - targets: ['{agent_metrics}']\n",
            token = vakt_tests::READ_TOKEN
        ),
    )
    .unwrap();
    let prom = std::process::Command::new(PROMETHEUS)
        .args([
            &format!("--config.file={}", prom_yml.display()),
            &format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let _prom = Proc { child: prom, log: dir.path().join("prometheus.log") };
    let http = reqwest::Client::new();
    let query = |q: String| {
        let http = http.clone();
        async move {
            let resp: serde_json::Value = http
                .get(format!("http://127.0.0.1:{prom_port}/api/v1/query"))
                .query(&[("query", q.as_str())])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            Some(resp)
        }
    };

    // A scripted outage while Prometheus watches, so incident annotations have something to show.
    wait_for("Prometheus scraping the collector", Duration::from_secs(30), || {
        let q = query("up{job=\"vakt-collector\"} == 1".into());
        async move { q.await.filter(|r| r["data"]["result"].as_array().is_some_and(|a| !a.is_empty())).map(|_| ()) }
    })
    .await;
    target.set_status(500);
    wait_for("the outage incident", Duration::from_secs(30), || async {
        (collector.metric("vakt_incidents_open").await.unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;
    wait_for("Prometheus to see the incident", Duration::from_secs(30), || {
        let q = query("vakt_incidents_open >= 1".into());
        async move { q.await.filter(|r| r["data"]["result"].as_array().is_some_and(|a| !a.is_empty())).map(|_| ()) }
    })
    .await;
    // Acknowledged, then resolved: MTTA and MTTR have something to show.
    let id = collector.get_json("/api/v1/incidents").await[0]["id"].as_i64().unwrap();
    let ack = http
        .post(collector.url(&format!("/api/v1/incidents/{id}/ack")))
        .bearer_auth(vakt_tests::READ_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);
    target.set_status(200);
    wait_for("Prometheus to see MTTR", Duration::from_secs(30), || {
        let q = query("vakt_incidents_mttr_seconds".into());
        async move { q.await.filter(|r| r["data"]["result"].as_array().is_some_and(|a| !a.is_empty())).map(|_| ()) }
    })
    .await;

    // Both expositions pass promtool's lint.
    if tool(PROMTOOL) {
        for (what, url) in
            [("collector", collector.url("/metrics")), ("agent", format!("http://{agent_metrics}/metrics"))]
        {
            let text = vakt_tests::get_authorized(&url).await.text().await.unwrap();
            let mut child = std::process::Command::new(PROMTOOL)
                .args(["check", "metrics"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            let complaints =
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "promtool check metrics ({what}):\n{complaints}");
            assert!(complaints.trim().is_empty(), "promtool check metrics ({what}):\n{complaints}");
        }
    }

    let fill = |q: &str| {
        q.replace("$__rate_interval", "30s")
            .replace("$service", "site")
            .replace("$slo", "site-up")
            .replace("$check", "web")
    };
    let all: Vec<(String, String)> =
        dashboards().into_iter().flat_map(|(n, d)| queries(&d).into_iter().map(move |q| (n.clone(), q))).collect();
    assert!(all.len() >= 20, "{} queries", all.len());
    // Rates need a few scrapes: retry each query until it has data, within a bound.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (dashboard, q) in &all {
        let filled = fill(q);
        loop {
            let resp = query(filled.clone()).await;
            if let Some(r) = &resp {
                assert_ne!(r["status"], "error", "{dashboard}: {filled} does not parse: {r}");
                if r["data"]["result"].as_array().is_some_and(|a| !a.is_empty()) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{dashboard}: {filled} returned no data: {resp:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // The template variables resolve too.
    for (series, label, want) in [
        ("vakt_slo_objective_ratio", "service", "site"),
        ("vakt_slo_objective_ratio", "slo", "site-up"),
        ("vakt_check_up", "check", "web"),
    ] {
        let r: serde_json::Value = http
            .get(format!("http://127.0.0.1:{prom_port}/api/v1/label/{label}/values"))
            .query(&[("match[]", series)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(r["data"].as_array().unwrap().iter().any(|v| v == want), "{label}: {r}");
    }
}
