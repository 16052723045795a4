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
