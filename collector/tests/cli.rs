//! The `vakt-collector` command line as an operator uses it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn collector(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vakt-collector")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_config_accepts_the_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/collector.toml");
    let (code, out, err) = collector(&["check-config", example]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok (2 agents, 2 checks, 2 services)"), "{out}");
}

#[test]
fn check_config_reports_every_problem_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("collector.toml");
    std::fs::write(
        &file,
        "lisen = \"127.0.0.1:8427\"\n\n[agents.a]\ntoken_hash = \"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"\n\n[checks.x]\nkind = \"tcp\"\ntarget = \"127.0.0.1:22\"\ninterval = \"10 seconds\"\nagents = [\"a\"]\n",
    )
    .unwrap();
    let (code, out, err) = collector(&["check-config", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    let lines: Vec<&str> = err.lines().collect();
    let f = file.display();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with(&format!("{f}:1:1: unknown field `lisen`")), "{err}");
    assert!(lines[0].ends_with("(did you mean `listen`?)"), "{err}");
    assert!(lines[1].starts_with(&format!("{f}:9:12: invalid duration \"10 seconds\"")), "{err}");
}

#[test]
fn a_missing_config_file_is_named() {
    let (code, _, err) = collector(&["check-config", "/nonexistent/collector.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read /nonexistent/collector.toml"), "{err}");
}

#[test]
fn hash_token_makes_a_token_and_hashes_stdin() {
    let (code, out, _) = collector(&["hash-token"]);
    assert_eq!(code, 0);
    let token = out.lines().find_map(|l| l.strip_prefix("token      = ")).unwrap();
    let hash = out.lines().find_map(|l| l.strip_prefix("token_hash = ")).unwrap();
    assert!(vakt_config::collector::valid_token_hash(hash), "{hash}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vakt-collector"))
        .args(["hash-token", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(format!("{token}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hash, "the printed hash belongs to the printed token");
}

#[test]
fn notify_test_sends_a_test_message_and_reports_the_outcome() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read the head and the body (Content-Length).
        loop {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(head_end) = text.find("\r\n\r\n") {
                let len: usize = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= head_end + 4 + len {
                    break;
                }
            }
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
        String::from_utf8_lossy(&buf).to_string()
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &cfg,
        format!(
            "[receivers.hook]\nkind = \"webhook\"\nurl = {{ value = \"http://127.0.0.1:{port}/hook\" }}\n\
             [receivers.dead]\nkind = \"slack\"\nurl = {{ value = \"http://127.0.0.1:{closed}/x\" }}\n"
        ),
    )
    .unwrap();
    let (code, out, err) = collector(&["notify-test", "--config", cfg.to_str().unwrap(), "--receiver", "hook"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "hook: delivered");
    let request = server.join().unwrap();
    assert!(request.starts_with("POST /hook "), "{request}");
    assert!(request.contains("Test notification from Vakt"), "{request}");
    let (code, _, err) = collector(&["notify-test", "--config", cfg.to_str().unwrap(), "--receiver", "dead"]);
    assert_eq!(code, 1);
    assert!(err.contains("dead: not delivered: dead: connection failed"), "{err}");
    assert!(!err.contains(&closed.to_string()), "the URL (a secret for Slack) is not printed: {err}");
    let (code, _, err) = collector(&["notify-test", "--config", cfg.to_str().unwrap(), "--receiver", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no receiver \"nope\" (known: dead, hook)"), "{err}");
}

#[test]
fn maintenance_can_be_planned_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, "data_dir = \"data\"\n[services.shop]\nchecks = []\n").unwrap();
    let c = cfg.to_str().unwrap();
    let (code, out, err) = collector(&[
        "maintenance",
        "--config",
        c,
        "--name",
        "db upgrade",
        "--start",
        "2036-12-01T22:00:00+01:00",
        "--end",
        "2036-12-02T01:00:00+01:00",
        "--service",
        "shop",
        "--change-id",
        "CHG-9",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "maintenance window 1 planned: 2036-12-01T21:00:00Z to 2036-12-02T00:00:00Z");
    let (code, _, err) =
        collector(&["maintenance", "--config", c, "--name", "x", "--start", "tomorrow", "--end", "later"]);
    assert_eq!(code, 1);
    assert!(err.contains("--start \"tomorrow\" is not RFC 3339"), "{err}");
    let (code, _, err) = collector(&[
        "maintenance",
        "--config",
        c,
        "--name",
        "x",
        "--start",
        "2036-12-01T22:00:00Z",
        "--end",
        "2036-12-01T23:00:00Z",
        "--service",
        "nope",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown service \"nope\""), "{err}");
    // A window that already began would take recorded downtime out of the SLA: only on purpose.
    let past = [
        "maintenance",
        "--config",
        c,
        "--name",
        "late",
        "--start",
        "2020-01-01T00:00:00Z",
        "--end",
        "2020-01-01T01:00:00Z",
    ];
    let (code, _, err) = collector(&past);
    assert_eq!(code, 1);
    assert!(err.contains("say so with --retroactive"), "{err}");
    let (code, out, err) = collector(&[&past[..], &["--retroactive"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("maintenance window 2 planned"), "{out}");
}
