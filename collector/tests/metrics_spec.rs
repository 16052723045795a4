//! `docs/metrics.md` and the collector's real `/metrics` output list the same metrics, with
//! the same types and labels.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use vakt_collector::metrics::Metrics;
use vakt_collector::state::{CheckState, Status};

/// name -> (type, labels) from the table in docs/metrics.md.
fn documented() -> BTreeMap<String, (String, Vec<String>)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .unwrap();
    doc.lines()
        .filter(|l| l.starts_with("| `vakt_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_string();
            let kind = cells[2].to_string();
            let labels = cells[4]
                .split(',')
                .filter_map(|c| c.split('`').nth(1))
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            (name, (kind, labels))
        })
        .collect()
}

/// name -> (type, labels) from the exposition of a collector that has seen one of everything.
fn exposed() -> BTreeMap<String, (String, Vec<String>)> {
    let m = Metrics::new();
    let state = CheckState {
        status: Status::Up,
        ..CheckState::default()
    };
    m.set_check_state("web", &state);
    m.observe_latency("web", 0.1);
    m.agent_seen("edge-1", 1_700_000_000_000);
    let text = m.render();
    let mut out: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.insert(name.to_string(), (kind.to_string(), Vec::new()));
        } else if !line.starts_with('#') {
            let series = line.split(' ').next().unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|b| out.get(*b).is_some_and(|(k, _)| k == "histogram"))
                })
                .unwrap_or(name);
            let entry = out
                .get_mut(base)
                .unwrap_or_else(|| panic!("sample {name} without # TYPE"));
            for pair in labels
                .trim_end_matches('}')
                .split(',')
                .filter(|p| !p.is_empty())
            {
                let label = pair.split('=').next().unwrap().to_string();
                if label != "le" && !entry.1.contains(&label) {
                    entry.1.push(label);
                }
            }
        }
    }
    out
}

#[test]
fn docs_and_exposition_agree() {
    let doc = documented();
    let real = exposed();
    let doc_names: Vec<&String> = doc.keys().collect();
    let real_names: Vec<&String> = real.keys().collect();
    assert_eq!(
        doc_names, real_names,
        "docs/metrics.md and /metrics list different metrics"
    );
    for (name, (kind, labels)) in &real {
        let (doc_kind, doc_labels) = &doc[name];
        assert_eq!(kind, doc_kind, "{name}: type");
        assert_eq!(labels, doc_labels, "{name}: labels");
    }
}

#[test]
fn names_follow_prometheus_conventions() {
    for (name, (kind, _)) in exposed() {
        assert!(name.starts_with("vakt_"), "{name}");
        if kind == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} must end in _total"
            );
        } else {
            assert!(!name.ends_with("_total"), "{name} is not a counter");
        }
    }
}
