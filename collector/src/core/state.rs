//! The check state machine: pure, no I/O, time comes in with the samples.
//!
//! A check is `Unknown` until its first result. It goes `Down` after `fail_after` consecutive
//! failures and back `Up` after `recover_after` consecutive successes (flap protection). A
//! sample older than the last one seen, from another agent or an unknown one, is stored but does
//! not move the state: it arrived late and the check has since moved on. From the same agent it
//! does count, at the last time seen: one agent's results arrive in the order it made them (its
//! spool replays in order), so an older one there means its clock was stepped back, and the
//! check must not go blind until that clock catches up.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Unknown,
    Up,
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Up => "up",
            Status::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unknown" => Some(Status::Unknown),
            "up" => Some(Status::Up),
            "down" => Some(Status::Down),
            _ => None,
        }
    }
}

/// How many results in a row change a check's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub fail_after: u32,
    pub recover_after: u32,
}

impl Default for Policy {
    /// Used for checks the collector does not know (an agent's local checks).
    fn default() -> Self {
        Policy { fail_after: 3, recover_after: 2 }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckState {
    pub status: Status,
    /// When the current status began (Unix ms).
    pub since_ms: i64,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// Start of the current run of failures (Unix ms): "down since".
    pub first_failure_ms: Option<i64>,
    pub last_sample_ms: Option<i64>,
    pub last_error: Option<String>,
    /// Up, but the last result was degraded (slow, a plugin WARNING ...).
    pub degraded: bool,
    /// The open incident of this check, if any.
    pub open_incident: Option<i64>,
    /// The agent the last result came from, when known.
    pub last_agent: Option<String>,
    /// When the collector last received a result of this check (its own clock): staleness is
    /// judged from this, so an agent whose clock stands behind is not taken for a silent one.
    pub last_received_ms: Option<i64>,
}

/// Until when a check's last result vouches for it: one probe interval after it, when the
/// interval is known (the time until the next result was due); beyond that the time is
/// unknown. Without a known interval (a local check), until `stale_ms` after it.
pub fn vouched_until(last_sample_ms: i64, interval_ms: Option<i64>, stale_ms: i64) -> i64 {
    last_sample_ms.saturating_add(interval_ms.unwrap_or(stale_ms))
}

/// A silence before a result at `at_ms`: where the unknown time began, when the previous result
/// stopped vouching before `at_ms` by more than a scheduler's jitter (a tenth of the interval,
/// at least a second). `None`: no gap, or no known interval.
pub fn gap_before(last_sample_ms: Option<i64>, at_ms: i64, interval_ms: Option<i64>) -> Option<i64> {
    let (last, interval) = (last_sample_ms?, interval_ms?);
    let until = last.saturating_add(interval);
    let jitter = (interval / 10).max(1000);
    (at_ms > until.saturating_add(jitter)).then_some(until)
}

impl Default for CheckState {
    fn default() -> Self {
        CheckState {
            status: Status::Unknown,
            since_ms: 0,
            consecutive_failures: 0,
            consecutive_successes: 0,
            first_failure_ms: None,
            last_sample_ms: None,
            last_error: None,
            degraded: false,
            open_incident: None,
            last_agent: None,
            last_received_ms: None,
        }
    }
}

/// A change of state worth acting on.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// The check became up (from unknown, or recovered from down).
    Up { at_ms: i64, was: Status },
    /// The check went down; `since_ms` is the first failure of the run.
    Down { at_ms: i64, since_ms: i64, error: Option<String> },
}

impl CheckState {
    /// Feeds one result in; returns the transition it caused, if any.
    pub fn observe(&mut self, success: bool, at_ms: i64, error: Option<&str>, policy: Policy) -> Option<Transition> {
        self.observe_result(success, false, at_ms, error, policy)
    }

    /// [`CheckState::observe_result`] for a result from `agent`: one older than the last result
    /// of the same agent counts at the time of that last result (its clock was stepped back).
    pub fn observe_from(
        &mut self,
        agent: &str,
        success: bool,
        degraded: bool,
        at_ms: i64,
        error: Option<&str>,
        policy: Policy,
    ) -> Option<Transition> {
        let at_ms = match self.last_sample_ms {
            Some(last) if at_ms < last && self.last_agent.as_deref() == Some(agent) => last,
            _ => at_ms,
        };
        let transition = self.observe_result(success, degraded, at_ms, error, policy);
        if self.last_sample_ms == Some(at_ms) && self.last_agent.as_deref() != Some(agent) {
            self.last_agent = Some(agent.to_string());
        }
        transition
    }

    /// Like [`CheckState::observe`], for a result that may be degraded: a degraded success
    /// counts as up and is flagged, with its reason as the last error.
    pub fn observe_result(
        &mut self,
        success: bool,
        degraded: bool,
        at_ms: i64,
        error: Option<&str>,
        policy: Policy,
    ) -> Option<Transition> {
        if self.last_sample_ms.is_some_and(|last| at_ms < last) {
            return None;
        }
        self.last_sample_ms = Some(at_ms);
        self.degraded = success && degraded;
        if success {
            if self.degraded {
                self.last_error = error.map(str::to_string);
            } else if self.status == Status::Up {
                self.last_error = None;
            }
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
            self.first_failure_ms = None;
            let enough = match self.status {
                Status::Unknown => true,
                Status::Down => self.consecutive_successes >= policy.recover_after.max(1),
                Status::Up => false,
            };
            if enough {
                let was = self.status;
                self.status = Status::Up;
                self.since_ms = at_ms;
                self.last_error = if self.degraded { error.map(str::to_string) } else { None };
                return Some(Transition::Up { at_ms, was });
            }
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
            let first = *self.first_failure_ms.get_or_insert(at_ms);
            self.last_error = error.map(str::to_string);
            if self.status != Status::Down && self.consecutive_failures >= policy.fail_after.max(1) {
                self.status = Status::Down;
                self.since_ms = first;
                return Some(Transition::Down { at_ms, since_ms: first, error: self.last_error.clone() });
            }
        }
        None
    }
}

impl CheckState {
    /// A result that says nothing of the service (a plugin's UNKNOWN, counted as no data): the
    /// check is unknown from here and its counters start again; an open incident stays open
    /// (nothing says it recovered). True when the status changed to unknown.
    pub fn observe_unknown(&mut self, agent: &str, at_ms: i64, error: Option<&str>) -> bool {
        if self.last_sample_ms.is_some_and(|last| at_ms < last) {
            return false;
        }
        self.last_sample_ms = Some(at_ms);
        self.last_agent = Some(agent.to_string());
        self.degraded = false;
        self.last_error = error.map(str::to_string);
        self.consecutive_failures = 0;
        self.consecutive_successes = 0;
        self.first_failure_ms = None;
        if self.status == Status::Unknown {
            return false;
        }
        self.status = Status::Unknown;
        self.since_ms = at_ms;
        true
    }

    /// A check probed by several agents: down when at least `quorum` of the agents heard from
    /// recently see it down, up when fewer do and at least one sees it up, unchanged otherwise
    /// (no fresh votes: the state is not known better than before).
    pub fn apply_votes(
        &mut self,
        down: u32,
        up: u32,
        quorum: u32,
        at_ms: i64,
        error: Option<&str>,
    ) -> Option<Transition> {
        if self.last_sample_ms.is_some_and(|last| at_ms < last) {
            return None;
        }
        self.last_sample_ms = Some(at_ms);
        let quorum = quorum.max(1);
        if down >= quorum {
            if error.is_some() {
                self.last_error = error.map(str::to_string);
            }
            if self.status != Status::Down {
                self.status = Status::Down;
                self.since_ms = at_ms;
                self.first_failure_ms = Some(at_ms);
                return Some(Transition::Down { at_ms, since_ms: at_ms, error: self.last_error.clone() });
            }
        } else if up >= 1 && self.status != Status::Up {
            let was = self.status;
            self.status = Status::Up;
            self.since_ms = at_ms;
            self.first_failure_ms = None;
            self.last_error = None;
            return Some(Transition::Up { at_ms, was });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy { fail_after: 3, recover_after: 2 };

    /// Silence is not uptime: results at T and at T + interval + 30 min leave 30 unknown
    /// minutes, whatever the interval: the first result vouches for one interval only.
    #[test]
    fn a_result_vouches_for_one_interval() {
        const MIN: i64 = 60_000;
        let t = 1_700_000_000_000;
        for interval in [10_000, MIN, 5 * MIN] {
            let next = t + interval + 30 * MIN;
            let from = gap_before(Some(t), next, Some(interval)).unwrap();
            assert_eq!(from, t + interval, "interval {interval}");
            assert_eq!(next - from, 30 * MIN, "30 unknown minutes at interval {interval}");
            // The evaluator, declaring it stale later, places the start at the same instant.
            assert_eq!(vouched_until(t, Some(interval), 3 * interval), from);
            // The next result on time, or a little late: no gap.
            assert_eq!(gap_before(Some(t), t + interval, Some(interval)), None);
            assert_eq!(gap_before(Some(t), t + interval + 900, Some(interval)), None, "jitter");
        }
        assert_eq!(gap_before(Some(t), t + 10 * MIN, None), None, "no interval known: no gap judged");
        assert_eq!(vouched_until(t, None, 5 * MIN), t + 5 * MIN);
    }

    #[test]
    fn an_older_result_counts_from_the_same_agent_only() {
        let mut s = CheckState::default();
        assert!(s.observe_from("a", true, false, 10_000, None, P).is_some(), "first result: up");
        // Agent b's late result changes nothing.
        s.observe_from("b", false, false, 5_000, Some("late"), P);
        assert_eq!((s.consecutive_failures, s.last_agent.as_deref()), (0, Some("a")));
        // Agent a's clock was stepped back: its results still count, at the last time seen.
        let t: Vec<_> = (0..3).filter_map(|i| s.observe_from("a", false, false, 4_000 + i, Some("boom"), P)).collect();
        assert_eq!(t, vec![Transition::Down { at_ms: 10_000, since_ms: 10_000, error: Some("boom".into()) }]);
        assert_eq!(s.last_sample_ms, Some(10_000));
    }

    fn feed(state: &mut CheckState, results: &[bool]) -> Vec<Transition> {
        results
            .iter()
            .enumerate()
            .filter_map(|(i, ok)| state.observe(*ok, i as i64 * 1000, (!ok).then_some("boom"), P))
            .collect()
    }

    #[test]
    fn first_success_makes_an_unknown_check_up() {
        let mut s = CheckState::default();
        assert_eq!(feed(&mut s, &[true]), [Transition::Up { at_ms: 0, was: Status::Unknown }]);
        assert_eq!(s.status, Status::Up);
    }

    #[test]
    fn goes_down_only_after_fail_after_failures_in_a_row() {
        let mut s = CheckState::default();
        // A blip and two failures interrupted by a success never make it down.
        assert_eq!(feed(&mut s, &[true, false, false, true, false, false]).len(), 1);
        assert_eq!(s.status, Status::Up);
        let t = s.observe(false, 6000, Some("status 500"), P);
        assert_eq!(t, Some(Transition::Down { at_ms: 6000, since_ms: 4000, error: Some("status 500".into()) }));
        assert_eq!(s.since_ms, 4000, "down since the first failure of the run");
        // Staying down reports nothing new.
        assert_eq!(s.observe(false, 7000, None, P), None);
    }

    #[test]
    fn recovers_only_after_recover_after_successes() {
        let mut s = CheckState::default();
        feed(&mut s, &[false, false, false]);
        assert_eq!(s.status, Status::Down);
        assert_eq!(s.observe(true, 10_000, None, P), None);
        assert_eq!(s.observe(false, 11_000, None, P), None);
        assert_eq!(s.observe(true, 12_000, None, P), None);
        assert_eq!(s.observe(true, 13_000, None, P), Some(Transition::Up { at_ms: 13_000, was: Status::Down }));
    }

    #[test]
    fn late_samples_do_not_move_the_state() {
        let mut s = CheckState::default();
        feed(&mut s, &[true, true, true]);
        for _ in 0..5 {
            assert_eq!(s.observe(false, 500, None, P), None);
        }
        assert_eq!(s.status, Status::Up);
        assert_eq!(s.consecutive_failures, 0);
    }

    #[test]
    fn degraded_results_keep_a_check_up_and_are_flagged() {
        let mut s = CheckState::default();
        assert!(matches!(s.observe_result(true, true, 0, Some("slow"), P), Some(Transition::Up { .. })));
        assert!(s.degraded);
        assert_eq!(s.last_error.as_deref(), Some("slow"));
        for t in 1..10 {
            assert_eq!(s.observe_result(true, true, t, Some("slow"), P), None, "degraded is never down");
        }
        s.observe_result(true, false, 10, None, P);
        assert!(!s.degraded);
        assert_eq!(s.last_error, None);
    }

    #[test]
    fn quorum_needs_k_agreeing_agents() {
        let mut s = CheckState::default();
        // 3 agents, quorum 2.
        assert!(matches!(s.apply_votes(0, 3, 2, 1, None), Some(Transition::Up { .. })));
        assert_eq!(s.apply_votes(1, 2, 2, 2, Some("timeout")), None, "one agent alone is not an outage");
        assert!(matches!(s.apply_votes(2, 1, 2, 3, Some("timeout")), Some(Transition::Down { .. })));
        assert_eq!(s.apply_votes(2, 0, 2, 4, None), None);
        // Silent agents do not vote: with one fresh up vote the check is up again.
        assert!(matches!(s.apply_votes(1, 1, 2, 5, None), Some(Transition::Up { was: Status::Down, .. })));
        // No fresh votes: unchanged.
        assert_eq!(s.apply_votes(0, 0, 2, 6, None), None);
        assert_eq!(s.status, Status::Up);
    }

    #[test]
    fn fail_after_one_reacts_to_the_first_failure() {
        let mut s = CheckState::default();
        let p = Policy { fail_after: 1, recover_after: 1 };
        assert!(matches!(s.observe(false, 0, None, p), Some(Transition::Down { .. })));
        assert!(matches!(s.observe(true, 1, None, p), Some(Transition::Up { .. })));
    }
}
