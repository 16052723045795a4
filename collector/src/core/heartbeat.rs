//! Heartbeat checks: jobs that cannot be probed (backups, batch runs, cron jobs) tell the
//! collector themselves, by requesting their check's ping URL. Pure decisions: what a ping
//! says, and when a job that last pinged at some time is late.
//!
//! A ping is `/ping/{key}` (success), `/ping/{key}/start` (a run began: its duration is
//! measured to the next success), `/ping/{key}/fail` (the run failed) or `/ping/{key}/{code}`
//! (the run's exit status: 0 success, 1-255 failure). The check is down when the job reported
//! failure, or when no ping came by the time its next run was due plus `grace`: due `interval`
//! after the last ping, or at the next time its cron `schedule` names in its time zone. A check
//! that never pinged is not judged (nothing is known of it yet).

use jiff::tz::TimeZone;
use vakt_config::cron::Schedule;

/// The name heartbeat results are stored under, as their "agent" (no agent sends them: it is
/// left out of agent lists and metrics).
pub const HEARTBEAT_AGENT: &str = "vakt-heartbeat";

/// What a request to a ping URL says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Success,
    Start,
    Fail,
    ExitCode(u8),
}

impl Signal {
    /// The signal of the path after the key: "" success, "start", "fail", "0".."255".
    pub fn parse(rest: &str) -> Option<Signal> {
        match rest {
            "" => Some(Signal::Success),
            "start" => Some(Signal::Start),
            "fail" => Some(Signal::Fail),
            code => code.parse::<u8>().ok().filter(|_| !code.starts_with('+')).map(Signal::ExitCode),
        }
    }

    /// Whether the run succeeded (`None`: a start, which is no result).
    pub fn success(self) -> Option<bool> {
        match self {
            Signal::Success | Signal::ExitCode(0) => Some(true),
            Signal::Fail | Signal::ExitCode(_) => Some(false),
            Signal::Start => None,
        }
    }

    /// Why a failed run failed, with the body the job sent (its log's tail, say).
    pub fn failure_reason(self, body: &str) -> String {
        let said = match self {
            Signal::ExitCode(code) => format!("the job exited with code {code}"),
            _ => "the job reported failure".to_string(),
        };
        let body = body.trim();
        if body.is_empty() {
            said
        } else {
            format!("{said}\n{body}")
        }
    }
}

/// The most of a ping's body kept (the tail of a job's output, for the incident).
pub const MAX_BODY_BYTES: usize = 10 * 1024;

/// The body as text, at most [`MAX_BODY_BYTES`] (cut at a character boundary).
pub fn bounded_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_BODY_BYTES)]).into_owned();
    text.trim_end_matches('\u{fffd}').to_string()
}

/// When runs are due.
#[derive(Clone, Debug)]
pub enum Due {
    /// Every so often after the last ping.
    Every(i64),
    /// At the times a cron schedule names in a zone.
    Schedule(Schedule, TimeZone, String),
}

/// A heartbeat check's expectation: when runs are due and how late a ping may be.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub due: Due,
    pub grace_ms: i64,
}

/// A run that did not ping in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missed {
    /// When the run was due.
    pub due_ms: i64,
    /// When it became late: due plus grace. The failure is recorded at this time.
    pub late_ms: i64,
    pub reason: String,
}

impl Expectation {
    /// The next run after a ping (or a recorded miss) at `last_ms`, and when it will be late.
    pub fn next(&self, last_ms: i64) -> Option<(i64, i64)> {
        let due = match &self.due {
            Due::Every(every) => last_ms.checked_add(*every)?,
            Due::Schedule(s, tz, _) => s.next_after(last_ms, tz)?,
        };
        Some((due, due.checked_add(self.grace_ms)?))
    }

    /// The run missed as of `now_ms`, if the job last pinged (or last missed) at `last_ms`.
    pub fn missed(&self, last_ms: i64, now_ms: i64) -> Option<Missed> {
        let (due_ms, late_ms) = self.next(last_ms)?;
        if now_ms < late_ms {
            return None;
        }
        let grace = crate::core::time::human_span(self.grace_ms);
        let reason = match &self.due {
            Due::Every(every) => {
                format!("no ping within {} of the last ({} grace)", crate::core::time::human_span(*every), grace)
            }
            Due::Schedule(_, tz, text) => {
                let local = jiff::Timestamp::from_millisecond(due_ms)
                    .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string())
                    .unwrap_or_default();
                format!("the run due at {local} ({text}) did not ping ({grace} grace)")
            }
        };
        Some(Missed { due_ms, late_ms, reason })
    }
}

/// How long a run took: from its start to the success that ended it, when the start is known
/// and not older than a week (a start whose run never ended is forgotten).
pub fn run_seconds(started_ms: Option<i64>, ended_ms: i64) -> Option<f64> {
    const WEEK_MS: i64 = 7 * 24 * 3_600_000;
    let started = started_ms?;
    let took = ended_ms - started;
    (0..=WEEK_MS).contains(&took).then(|| took as f64 / 1000.0)
}

/// The heartbeat checks of a configuration: each one's ping key (as a SHA-256, so a lookup
/// compares no secret), its expectation, and the runs started and not yet ended.
#[derive(Default)]
pub struct Heartbeats {
    by_key: std::collections::HashMap<[u8; 32], String>,
    pub expectations: std::collections::BTreeMap<String, Expectation>,
    starts: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

fn key_digest(key: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}

impl Heartbeats {
    /// From each heartbeat check's id, ping key (read already) and expectation.
    pub fn new(checks: Vec<(String, String, Expectation)>) -> Heartbeats {
        let mut h = Heartbeats::default();
        for (id, key, e) in checks {
            h.by_key.insert(key_digest(&key), id.clone());
            h.expectations.insert(id, e);
        }
        h
    }

    /// The check a ping key belongs to.
    pub fn check_of(&self, key: &str) -> Option<&str> {
        self.by_key.get(&key_digest(key)).map(String::as_str)
    }

    /// A run of `check` started at `at_ms`.
    pub fn started(&self, check: &str, at_ms: i64) {
        self.starts.lock().unwrap_or_else(|p| p.into_inner()).insert(check.to_string(), at_ms);
    }

    /// A run of `check` ended: when it started, if that is known (and forgotten now).
    pub fn ended(&self, check: &str) -> Option<i64> {
        self.starts.lock().unwrap_or_else(|p| p.into_inner()).remove(check)
    }
}

/// The expectation a heartbeat check's configuration states.
pub fn expectation_of(c: &vakt_config::CheckConfig) -> Result<Expectation, String> {
    let ms = |d: vakt_config::HumanDuration| i64::try_from(d.get().as_millis()).unwrap_or(i64::MAX / 4);
    let due = match &c.schedule {
        Some(s) => {
            let zone = c.tz.as_ref().map_or("UTC", |t| t.get_ref().as_str());
            let tz = TimeZone::get(zone).map_err(|e| format!("time zone {zone:?}: {e}"))?;
            Due::Schedule(Schedule::parse(s.get_ref())?, tz, format!("{} {zone}", s.get_ref()))
        }
        None => Due::Every(ms(*c.interval.get_ref())),
    };
    Ok(Expectation { due, grace_ms: ms(c.grace()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn paths_say_success_start_failure_or_an_exit_code() {
        assert_eq!(Signal::parse(""), Some(Signal::Success));
        assert_eq!(Signal::parse("start"), Some(Signal::Start));
        assert_eq!(Signal::parse("fail"), Some(Signal::Fail));
        assert_eq!(Signal::parse("0").and_then(Signal::success), Some(true));
        assert_eq!(Signal::parse("2").and_then(Signal::success), Some(false));
        assert_eq!(Signal::parse("255"), Some(Signal::ExitCode(255)));
        assert_eq!(Signal::parse("256"), None);
        assert_eq!(Signal::parse("+1"), None);
        assert_eq!(Signal::parse("other"), None);
        assert_eq!(Signal::ExitCode(3).failure_reason(" disk full \n"), "the job exited with code 3\ndisk full");
    }

    /// Every hour with 5 minutes' grace, last ping 10:00: late from 11:05, not a millisecond
    /// before.
    #[test]
    fn an_interval_job_is_late_at_interval_plus_grace() {
        let e = Expectation { due: Due::Every(60 * MIN), grace_ms: 5 * MIN };
        let last = ms("2026-11-29T10:00:00Z");
        assert_eq!(e.missed(last, ms("2026-11-29T11:04:59.999Z")), None);
        let m = e.missed(last, ms("2026-11-29T11:05:00Z")).unwrap();
        assert_eq!((m.due_ms, m.late_ms), (ms("2026-11-29T11:00:00Z"), ms("2026-11-29T11:05:00Z")));
        assert_eq!(m.reason, "no ping within 1 h of the last (5 min grace)");
    }

    /// "0 2 * * *" in Oslo with 30 minutes' grace, last ping 02:03 local on the 29th (01:03
    /// UTC): the next run is due 02:00 local on the 30th (01:00 UTC), late at 01:30 UTC.
    #[test]
    fn a_cron_job_is_late_at_its_next_due_time_plus_grace() {
        let tz = TimeZone::get("Europe/Oslo").unwrap();
        let s = Schedule::parse("0 2 * * *").unwrap();
        let e = Expectation { due: Due::Schedule(s, tz, "0 2 * * * Europe/Oslo".into()), grace_ms: 30 * MIN };
        let last = ms("2026-11-29T01:03:00Z");
        assert_eq!(e.missed(last, ms("2026-11-30T01:29:59Z")), None);
        let m = e.missed(last, ms("2026-11-30T01:30:00Z")).unwrap();
        assert_eq!(m.late_ms, ms("2026-11-30T01:30:00Z"));
        assert_eq!(m.reason, "the run due at 2026-11-30 02:00 CET (0 2 * * * Europe/Oslo) did not ping (30 min grace)");
    }

    #[test]
    fn run_durations_need_a_recent_start() {
        assert_eq!(run_seconds(Some(1_000), 91_000), Some(90.0));
        assert_eq!(run_seconds(None, 91_000), None);
        assert_eq!(run_seconds(Some(0), 8 * 24 * 3_600_000), None);
    }

    #[test]
    fn bodies_are_bounded() {
        let big = vec![b'x'; MAX_BODY_BYTES * 2];
        assert_eq!(bounded_body(&big).len(), MAX_BODY_BYTES);
        let mut split = vec![b'a'; MAX_BODY_BYTES - 1];
        split.extend("ø".as_bytes());
        assert_eq!(bounded_body(&split).len(), MAX_BODY_BYTES - 1, "a cut character is dropped");
    }
}
