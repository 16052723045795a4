//! The systemd units in `config/systemd/` as an operator installs them: systemd itself accepts
//! them (`systemd-analyze verify`, with the binaries where the units expect them), and every
//! command they run is one the binaries understand, checked against the example configurations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";
const INSTALLED: &str = "/usr/local/bin/";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The commands of `Exec*=` lines, split into words.
fn commands(unit: &str) -> Vec<(String, Vec<String>)> {
    unit.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(key, _)| key.starts_with("Exec"))
        .map(|(key, command)| (key.to_string(), command.split_whitespace().map(String::from).collect()))
        .collect()
}

#[test]
fn systemd_accepts_the_units_and_the_binaries_accept_their_commands() {
    if !Path::new(SYSTEMD_ANALYZE).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is missing: .ci/run must install systemd"
        );
        eprintln!("skipping: systemd-analyze is not installed");
        return;
    }
    let bins = vakt_tests::bin("vakt-agent").parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    for (name, example) in [("vakt-agent.service", "agent.toml"), ("vakt-collector.service", "collector.toml")] {
        let unit = std::fs::read_to_string(repo().join("config/systemd").join(name)).unwrap();
        // Where the units expect the binaries, this build's binaries.
        let here = unit.replace(INSTALLED, &format!("{}/", bins.display()));
        let path = dir.path().join(name);
        std::fs::write(&path, &here).unwrap();
        let out = Command::new(SYSTEMD_ANALYZE).args(["verify", "--man=no"]).arg(&path).output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && said.trim().is_empty(), "systemd on {name}:\n{said}");

        let commands = commands(&here);
        assert!(commands.iter().any(|(key, _)| key == "ExecStart"), "{name} has an ExecStart");
        assert!(commands.iter().any(|(key, c)| key == "ExecReload" && c.contains(&"-HUP".to_string())), "{name}");
        let config = format!("/etc/vakt/{example}");
        for (key, words) in commands.iter().filter(|(_, w)| w[0].starts_with(&bins.display().to_string())) {
            let example = repo().join("config/examples").join(example).display().to_string();
            match words.get(1).map(String::as_str) {
                // Validation runs as written, on the example configuration.
                Some("check-config") => {
                    let args: Vec<String> = words[1..].iter().map(|w| w.replace(&config, &example)).collect();
                    let out = Command::new(&words[0]).args(&args).output().unwrap();
                    assert!(out.status.success(), "{name} {key}: {}", String::from_utf8_lossy(&out.stderr));
                }
                // The service itself: its arguments are understood (it stops at the missing file,
                // not at the command line).
                Some("run") => {
                    let args: Vec<String> =
                        words[1..].iter().map(|w| w.replace(&config, "/nonexistent/vakt.toml")).collect();
                    let out = Command::new(&words[0]).args(&args).output().unwrap();
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert_eq!(out.status.code(), Some(1), "{name} {key}: {err}");
                    assert!(err.contains("/nonexistent/vakt.toml"), "{name} {key}: {err}");
                }
                other => panic!("{name} {key}: an unexpected command {other:?}"),
            }
        }
    }
}
