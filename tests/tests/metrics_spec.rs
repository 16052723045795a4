//! `docs/metrics.md` and the real `/metrics` output of both binaries list the same metrics,
//! with the same types and labels, and follow Prometheus naming conventions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;
use vakt_tests::{free_port, token_hash, wait_for, Collector, Proc, Target};

type Spec = BTreeMap<String, (String, Vec<String>)>;

/// Documented metrics that appear only once something has happened ("Present once ...").
fn conditional(section: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md")).unwrap();
    let body = doc.split(&format!("## {section}\n")).nth(1).unwrap().split("\n## ").next().unwrap().to_string();
    body.lines()
        .filter(|l| l.contains("Present once"))
        .filter_map(|l| l.split('|').nth(1).map(|c| c.trim().trim_matches('`').to_string()))
        .collect()
}

/// name -> (type, labels) from one `## section` of docs/metrics.md.
fn documented(section: &str) -> Spec {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md")).unwrap();
    let body = doc.split(&format!("## {section}\n")).nth(1).unwrap_or_else(|| panic!("no section {section}"));
    let body = body.split("\n## ").next().unwrap();
    body.lines()
        .filter(|l| l.starts_with("| `vakt_") || l.starts_with("| `slo:"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let labels = cells[4].split(',').filter_map(|c| c.split('`').nth(1)).map(String::from).collect();
            (cells[1].trim_matches('`').to_string(), (cells[2].to_string(), labels))
        })
        .collect()
}

/// name -> (type, labels) from an exposition.
fn exposed(text: &str) -> Spec {
    let mut out = Spec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.insert(name.to_string(), (kind.to_string(), Vec::new()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let series = line.split(' ').next().unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| out.get(*b).is_some_and(|(k, _)| k == "histogram")))
                .unwrap_or(name);
            let entry = out.get_mut(base).unwrap_or_else(|| panic!("sample {name} without # TYPE"));
            for pair in labels.trim_end_matches('}').split(',').filter(|p| !p.is_empty()) {
                let label = pair.split('=').next().unwrap().to_string();
                if label != "le" && !entry.1.contains(&label) {
                    entry.1.push(label);
                }
            }
        }
    }
    out
}

fn assert_agree(section: &str, text: &str) {
    let mut doc = documented(section);
    let real = exposed(text);
    for name in conditional(section) {
        if !real.contains_key(&name) {
            doc.remove(&name);
        }
    }
    assert_eq!(doc.keys().collect::<Vec<_>>(), real.keys().collect::<Vec<_>>(), "{section}: docs and /metrics differ");
    for (name, (kind, labels)) in &real {
        let (doc_kind, doc_labels) = &doc[name];
        assert_eq!(kind, doc_kind, "{name}: type");
        let sorted = |l: &Vec<String>| {
            let mut l = l.clone();
            l.sort();
            l
        };
        assert_eq!(sorted(labels), sorted(doc_labels), "{name}: labels");
        assert!(name.starts_with("vakt_") || name.starts_with("slo:"), "{name}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{name}: only counters end in _total");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_and_both_expositions_agree() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let agent_metrics = format!("127.0.0.1:{}", free_port());
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\nslo_evaluation_interval = \"1s\"\n[agents.m]\ntoken_hash = \"{}\"\n[checks.web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"100ms\"\nagents = [\"m\"]\n[receivers.hook]\nkind = \"webhook\"\nurl = {{ value = \"http://127.0.0.1:9/\" }}\n[services.site]\nchecks = [\"web\"]\n[slos.site-up]\nservice = \"site\"\nobjective = 99.5\nwindow = \"7d\"\n",
            token_hash("metrics-token-0123456789"),
            target.addr
        ),
    )
    .unwrap();
    let agent_cfg = dir.path().join("agent.toml");
    std::fs::write(
        &agent_cfg,
        format!("name = \"m\"\ncollector = \"http://{addr}\"\ntoken = \"metrics-token-0123456789\"\nspool_dir = \"agent\"\npush_interval = \"100ms\"\nmetrics_listen = \"{agent_metrics}\"\n"),
    )
    .unwrap();
    let collector = Collector::start(&cfg, addr, &dir.path().join("collector.log")).await;
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_cfg.to_str().unwrap()], &dir.path().join("agent.log"));
    wait_for("a sample at the collector and an SLO evaluation", Duration::from_secs(20), || async {
        let up = collector.metric("vakt_check_up{check=\"web\"}").await == Some(1.0);
        let slo = collector.metric("vakt_slo_sli_ratio{service=\"site\",slo=\"site-up\"}").await.is_some();
        (up && slo).then_some(())
    })
    .await;
    assert_agree("Collector", &collector.get_text("/metrics").await);
    let agent_text = reqwest::get(format!("http://{agent_metrics}/metrics")).await.unwrap().text().await.unwrap();
    assert_agree("Agent", &agent_text);
    assert!(vakt_tests::metric(&agent_text, "vakt_agent_samples_sent_total").unwrap() >= 1.0);
}
