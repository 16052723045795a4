//! The agent's command line. Hand-written rather than derived: the agent runs on every server,
//! and three subcommands do not justify an argument-parsing library's share of its memory.

use std::ffi::OsString;
use std::path::PathBuf;

pub const USAGE: &str = "\
Vakt agent: probes hosts and services, pushes samples to the collector

Usage:
  vakt-agent run --config <FILE>        Run the agent (-c <FILE> for short)
  vakt-agent check-config <FILE>        Validate a config file: exit 0, or print every problem
                                        as file:line:col and exit 1
  vakt-agent probe --kind <KIND> <TARGET> [--timeout <DURATION>] [--set <KEY=VALUE>]... [--json]
                                        Run one probe once and print what it found.
                                        Exit 0 up, 1 degraded, 2 down, 3 cannot probe.
                                        KIND: http, tcp, icmp, dns, host or exec.
                                        TARGET: what to probe, as the check's `target`.
                                        --timeout: default 10s.
                                        --set: a check option in TOML syntax (repeatable),
                                        e.g. --set 'expect_status=[200]' --set cert_min_days=14
                                        --json: print the result as JSON (a wire sample)
  vakt-agent status --config <FILE> [--behind-after <DURATION>]
                                        What waits in the spool and which checks are cached;
                                        safe beside the running agent. Exit 0, or 1 when a
                                        batch has waited longer than --behind-after (default 5m)
  vakt-agent --help | --version

Exit status 3 for a usage mistake.

Environment: VAKT_LOG sets the log filter (default info; e.g. info,vakt_agent::pusher=debug).";

#[derive(Debug, PartialEq)]
pub enum Command {
    Run { config: PathBuf },
    CheckConfig { file: PathBuf },
    Status { config: PathBuf, behind_after: String },
    Probe { kind: String, target: String, timeout: String, set: Vec<String>, json: bool },
}

/// Why parsing stopped without a command: text to print (help, version) or a usage error.
#[derive(Debug, PartialEq)]
pub enum Exit {
    Print(String),
    Usage(String),
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, Exit> {
    let mut args = Args { rest: args.into_iter().collect::<Vec<_>>().into_iter() };
    let Some(sub) = args.next_str("a subcommand: run, check-config or probe")? else {
        return Err(Exit::Usage("a subcommand is needed: run, check-config, probe or status".into()));
    };
    match sub.as_str() {
        "-h" | "--help" | "help" => Err(Exit::Print(USAGE.into())),
        "-V" | "--version" => Err(Exit::Print(format!("vakt-agent {}", env!("CARGO_PKG_VERSION")))),
        "run" => {
            let mut config = None;
            while let Some(arg) = args.next_str("an option")? {
                match flag(&arg) {
                    ("-c" | "--config", inline) => config = Some(PathBuf::from(args.value(&arg, inline)?)),
                    ("-h" | "--help", _) => return Err(Exit::Print(USAGE.into())),
                    _ => return Err(unexpected(&arg, "run")),
                }
            }
            let config = config.ok_or_else(|| Exit::Usage("run needs --config <FILE>".into()))?;
            Ok(Command::Run { config })
        }
        "status" => {
            let (mut config, mut behind_after) = (None, None);
            while let Some(arg) = args.next_str("an option")? {
                match flag(&arg) {
                    ("-c" | "--config", inline) => config = Some(PathBuf::from(args.value(&arg, inline)?)),
                    ("--behind-after", inline) => behind_after = Some(args.value(&arg, inline)?),
                    ("-h" | "--help", _) => return Err(Exit::Print(USAGE.into())),
                    _ => return Err(unexpected(&arg, "status")),
                }
            }
            let config = config.ok_or_else(|| Exit::Usage("status needs --config <FILE>".into()))?;
            Ok(Command::Status { config, behind_after: behind_after.unwrap_or_else(|| "5m".into()) })
        }
        "check-config" => {
            let mut file = None;
            while let Some(arg) = args.next_os() {
                match arg.to_str() {
                    Some("-h" | "--help") => return Err(Exit::Print(USAGE.into())),
                    Some(a) if a.starts_with('-') => return Err(unexpected(a, "check-config")),
                    _ if file.is_none() => file = Some(PathBuf::from(arg)),
                    _ => return Err(Exit::Usage("check-config takes one file".into())),
                }
            }
            let file = file.ok_or_else(|| Exit::Usage("check-config needs the config file to check".into()))?;
            Ok(Command::CheckConfig { file })
        }
        "probe" => {
            let (mut kind, mut target, mut timeout, mut set, mut json) = (None, None, None, Vec::new(), false);
            while let Some(arg) = args.next_str("an option or the target")? {
                match flag(&arg) {
                    ("--kind", inline) => kind = Some(args.value(&arg, inline)?),
                    ("--timeout", inline) => timeout = Some(args.value(&arg, inline)?),
                    ("--set", inline) => set.push(args.value(&arg, inline)?),
                    ("--json", None) => json = true,
                    ("-h" | "--help", _) => return Err(Exit::Print(USAGE.into())),
                    (f, _) if f.starts_with('-') && f.len() > 1 => return Err(unexpected(&arg, "probe")),
                    _ if target.is_none() => target = Some(arg),
                    _ => return Err(Exit::Usage(format!("probe takes one target; {arg:?} is a second one"))),
                }
            }
            Ok(Command::Probe {
                kind: kind.ok_or_else(|| {
                    Exit::Usage("probe needs --kind <KIND> (http, tcp, icmp, dns, host or exec)".into())
                })?,
                target: target.ok_or_else(|| Exit::Usage("probe needs the target to probe".into()))?,
                timeout: timeout.unwrap_or_else(|| "10s".into()),
                set,
                json,
            })
        }
        other => Err(Exit::Usage(format!("unknown subcommand {other:?}; use run, check-config, probe or status"))),
    }
}

struct Args {
    rest: std::vec::IntoIter<OsString>,
}

impl Args {
    fn next_os(&mut self) -> Option<OsString> {
        self.rest.next()
    }

    fn next_str(&mut self, what: &str) -> Result<Option<String>, Exit> {
        self.rest
            .next()
            .map(|a| a.into_string().map_err(|a| Exit::Usage(format!("{a:?} is not valid UTF-8 (expected {what})"))))
            .transpose()
    }

    /// The value of `--flag=value` or of `--flag value`.
    fn value(&mut self, arg: &str, inline: Option<&str>) -> Result<String, Exit> {
        match inline {
            Some(v) => Ok(v.to_string()),
            None => self.next_str("a value")?.ok_or_else(|| Exit::Usage(format!("{arg} needs a value"))),
        }
    }
}

/// `--name=value` split into name and inline value; anything else as it is.
fn flag(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((name, value)) if name.starts_with("--") => (name, Some(value)),
        _ => (arg, None),
    }
}

fn unexpected(arg: &str, sub: &str) -> Exit {
    Exit::Usage(format!("unexpected argument {arg:?} for {sub}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, Exit> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn run_takes_its_config_in_every_spelling() {
        for args in [&["run", "--config", "a.toml"][..], &["run", "-c", "a.toml"], &["run", "--config=a.toml"]] {
            assert_eq!(parse_strs(args), Ok(Command::Run { config: "a.toml".into() }), "{args:?}");
        }
        assert_eq!(parse_strs(&["run"]), Err(Exit::Usage("run needs --config <FILE>".into())));
        assert_eq!(parse_strs(&["run", "--config"]), Err(Exit::Usage("--config needs a value".into())));
    }

    #[test]
    fn probe_collects_options_and_the_target() {
        let got = parse_strs(&[
            "probe",
            "--kind",
            "http",
            "https://example.test/",
            "--set",
            "expect_status=[200]",
            "--set=cert_min_days=14",
            "--timeout=3s",
            "--json",
        ]);
        assert_eq!(
            got,
            Ok(Command::Probe {
                kind: "http".into(),
                target: "https://example.test/".into(),
                timeout: "3s".into(),
                set: vec!["expect_status=[200]".into(), "cert_min_days=14".into()],
                json: true,
            })
        );
        let defaults = parse_strs(&["probe", "--kind", "tcp", "db:5432"]);
        assert!(matches!(defaults, Ok(Command::Probe { ref timeout, json: false, .. }) if timeout == "10s"));
    }

    #[test]
    fn mistakes_are_named() {
        let usage = |args: &[&str]| match parse_strs(args) {
            Err(Exit::Usage(m)) => m,
            other => panic!("{args:?}: {other:?}"),
        };
        assert!(usage(&[]).contains("subcommand"));
        assert!(usage(&["start"]).contains("unknown subcommand \"start\""));
        assert!(usage(&["probe", "x"]).contains("--kind"));
        assert!(usage(&["probe", "--kind", "http"]).contains("target"));
        assert!(usage(&["probe", "--kind", "http", "a", "b"]).contains("second"));
        assert!(usage(&["probe", "--kid", "http", "a"]).contains("\"--kid\""));
        assert!(usage(&["check-config"]).contains("config file"));
        assert_eq!(parse_strs(&["check-config", "a.toml"]), Ok(Command::CheckConfig { file: "a.toml".into() }));
        assert_eq!(
            parse_strs(&["status", "-c", "a.toml"]),
            Ok(Command::Status { config: "a.toml".into(), behind_after: "5m".into() })
        );
        assert!(usage(&["status"]).contains("--config"));
    }

    #[test]
    fn help_and_version_print() {
        assert!(matches!(parse_strs(&["--help"]), Err(Exit::Print(t)) if t.contains("vakt-agent probe --kind")));
        assert!(matches!(parse_strs(&["run", "-h"]), Err(Exit::Print(_))));
        assert!(matches!(parse_strs(&["--version"]), Err(Exit::Print(t)) if t.starts_with("vakt-agent 0.")));
    }
}
