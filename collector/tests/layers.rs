//! The collector's house keeps its layers: every `crate::` path in `collector/src` points to
//! its own layer or one below it (see ARCHITECTURE.md), so imports never form a loop.
//! Ranks: core 0; store, auth, check_series 1; metrics 2; app 3; evaluate, notify, cluster, remote_write 4; http 5; server 6;
//! quickstart 7. A module may use its own top-level module freely; evaluate, notify, cluster and
//! remote_write, side by side, do not use each other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn layer(top: &str) -> Option<u8> {
    Some(match top {
        "core" => 0,
        "store" | "auth" | "check_series" => 1,
        "metrics" => 2,
        "app" => 3,
        "evaluate" | "notify" | "cluster" | "remote_write" => 4,
        "http" => 5,
        "server" => 6,
        "quickstart" => 7,
        _ => return None,
    })
}

/// The top-level module of a file under `src/` ("core" for `src/core/slo.rs`).
fn top_of(rel: &Path) -> String {
    let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn imports_run_downwards_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &all {
        let rel = file.strip_prefix(&src).unwrap();
        let top = top_of(rel);
        if top == "main" || top == "cli" || top == "lib" {
            continue; // the binary (main, cli) and the root may use anything
        }
        let Some(own) = layer(&top) else {
            wrong.push(format!(
                "{}: module {top:?} has no layer (add it to this test and ARCHITECTURE.md)",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let target: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if target == top || target.is_empty() {
                    continue;
                }
                checked += 1;
                match layer(&target) {
                    Some(t) if t < own => {}
                    _ => wrong.push(format!("{}:{}: {top} uses crate::{target}", rel.display(), n + 1)),
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} paths found: is the scan still reading the sources?");
    assert!(wrong.is_empty(), "imports that climb up or sideways:\n{}", wrong.join("\n"));
}
