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
                return ProbeResult::failed(
                    Some(start.elapsed()),
                    format!(
                        "{} timed out after {} and was killed",
                        self.program,
                        vakt_config::duration::format_duration(self.timeout)
                    ),
                );
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
        let mut result = match code {
            Some(0) => ProbeResult::ok(latency),
            Some(1) => ProbeResult::ok(latency).degrade(message.clone()),
            Some(2) => ProbeResult::failed(Some(latency), message.clone()),
            Some(3) => ProbeResult::failed(Some(latency), format!("UNKNOWN: {message}")),
            Some(other) => ProbeResult::failed(Some(latency), format!("exit code {other}: {message}")),
            None => ProbeResult::failed(Some(latency), format!("{} was killed by a signal", self.program)),
        };
        if let Some(c) = code {
            result = result.with_value("exit_code", f64::from(c));
        }
        for p in super::perfdata::parse(&out) {
            let name = if p.unit.is_empty() { p.label } else { format!("{}_{}", p.label, p.unit) };
            result = result.with_value(&name, p.value);
        }
        result
    }
}

impl Probe for ExecProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(self.probe())
    }
}
