//! The `vakt-agent` command line as an operator uses it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn agent(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vakt-agent")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_config_accepts_the_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/agent.toml");
    let (code, out, err) = agent(&["check-config", example]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok (1 local checks)"), "{out}");
}

#[test]
fn check_config_fails_on_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, "name = \"a\"\ncollector = \"127.0.0.1:8427\"\ntoken = \"t\"\npush_interval = \"fast\"\n")
        .unwrap();
    let (code, _, err) = agent(&["check-config", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    let f = file.display();
    assert!(err.contains(&format!("{f}:2:13: collector \"127.0.0.1:8427\" is not an http(s) URL")), "{err}");
    assert!(err.contains(&format!("{f}:4:17: invalid duration \"fast\"")), "{err}");
}

#[test]
fn run_refuses_an_invalid_config_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, "name = \"a\"\ncollector = \"http://127.0.0.1:1\"\n").unwrap();
    let (code, _, err) = agent(&["run", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("neither `token` nor `token_file` is set"), "{err}");
}

#[test]
fn a_usage_mistake_is_named_with_the_usage_and_exit_3() {
    let (code, out, err) = agent(&["probe", "--kind", "http"]);
    assert_eq!(code, 3, "3, not 2: for probe, 2 means down");
    assert!(out.is_empty(), "{out}");
    assert!(err.starts_with("vakt-agent: probe needs the target to probe"), "{err}");
    assert!(err.contains("vakt-agent probe --kind <KIND> <TARGET>"), "{err}");

    let (code, out, _) = agent(&["--version"]);
    assert_eq!((code, out.trim()), (0, concat!("vakt-agent ", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn status_reports_what_waits_and_says_when_delivery_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "name = \"edge\"\ncollector = \"http://127.0.0.1:9\"\ntoken = \"t\"\nspool_dir = \"state\"\n\
         [checks.disk]\nkind = \"host\"\ntarget = \"disk:/\"\n",
    )
    .unwrap();
    let status = |extra: &[&str]| {
        let mut args = vec!["status", "--config", config.to_str().unwrap()];
        args.extend_from_slice(extra);
        agent(&args)
    };
    let (code, out, err) = status(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("vakt-agent edge -> http://127.0.0.1:9"), "{out}");
    assert!(out.contains("nothing waiting"), "{out}");
    assert!(out.contains("0 assigned by the collector (cached), 1 local"), "{out}");
    assert!(!dir.path().join("state").exists(), "status creates nothing");

    // Two batches waiting, and the collector's assignments cached.
    let state = dir.path().join("state");
    let mut spool = vakt_agent::spool::Spool::open(&state.join("spool"), 1 << 20).unwrap();
    spool.append(1, 5, b"first batch").unwrap();
    spool.append(2, 7, b"second batch").unwrap();
    let spec = |id: &str| {
        std::sync::Arc::new(vakt_config::wire::CheckSpec::new(id, vakt_config::CheckKind::Tcp, "db:5432", 1000))
    };
    vakt_agent::state_dir::StateDir::open(&state)
        .unwrap()
        .save_assignments(&vakt_config::wire::Assignments {
            agent: "edge".into(),
            checks: vec![spec("a"), spec("b")],
            refused_local: vec![],
            accepts: vec![],
        })
        .unwrap();
    let (code, out, _) = status(&[]);
    assert_eq!(code, 0, "just written: not behind yet\n{out}");
    assert!(out.contains("2 batches, 12 samples, "), "{out}");
    assert!(out.contains("2 assigned by the collector (cached), 1 local"), "{out}");

    // The oldest has waited ten minutes: behind, exit 1 (a Nagios WARNING).
    let oldest = std::fs::read_dir(state.join("spool")).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    assert!(Command::new("touch").args(["-d", "10 minutes ago"]).arg(&oldest).status().unwrap().success());
    let (code, out, _) = status(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the oldest for 10m") && out.contains("behind"), "{out}");
    let (code, _, _) = status(&["--behind-after", "1h"]);
    assert_eq!(code, 0);
    let (code, _, err) = status(&["--behind-after", "soon"]);
    assert_eq!(code, 3, "{err}");
}
