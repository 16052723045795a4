//! Incidents and the pure decisions that open and resolve them: from check transitions, and
//! from agents that fall silent. The `Store` carries them out.

use serde::Serialize;

use crate::core::state::Transition;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    /// Someone took it; still unresolved.
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(IncidentStatus::Open),
            "acknowledged" => Some(IncidentStatus::Acknowledged),
            "resolved" => Some(IncidentStatus::Resolved),
            _ => None,
        }
    }
}

/// What an incident is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// A check is down; the subject is the check id.
    CheckDown,
    /// An agent stopped reporting; the subject is the agent's name.
    AgentSilent,
    /// An SLO burns its error budget too fast; the subject is the SLO's name.
    SloBurn,
    /// A check keeps changing state; the subject is the check id.
    Flapping,
    /// A check is up but degraded (a plugin WARNING, slow, a value above its warning level),
    /// for checks with `warning_incidents = true`; severity "warning". The subject is the
    /// check id.
    CheckWarning,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::CheckDown => "check_down",
            IncidentKind::AgentSilent => "agent_silent",
            IncidentKind::SloBurn => "slo_burn",
            IncidentKind::Flapping => "flapping",
            IncidentKind::CheckWarning => "check_warning",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "check_down" => Some(IncidentKind::CheckDown),
            "agent_silent" => Some(IncidentKind::AgentSilent),
            "slo_burn" => Some(IncidentKind::SloBurn),
            "flapping" => Some(IncidentKind::Flapping),
            "check_warning" => Some(IncidentKind::CheckWarning),
            _ => None,
        }
    }
    /// The stable key of an incident about `subject`: one open incident per key.
    pub fn dedup_key(self, subject: &str) -> String {
        match self {
            IncidentKind::CheckDown => format!("check:{subject}"),
            IncidentKind::AgentSilent => format!("agent:{subject}"),
            IncidentKind::SloBurn => format!("slo:{subject}"),
            IncidentKind::Flapping => format!("flapping:{subject}"),
            IncidentKind::CheckWarning => format!("warning:{subject}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEvent {
    pub at_ms: i64,
    pub kind: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    pub id: i64,
    /// Same key while the same problem lasts: a check that keeps failing is one incident.
    pub dedup_key: String,
    pub kind: IncidentKind,
    /// The check id or agent name the incident is about.
    pub subject: String,
    pub title: String,
    pub severity: String,
    pub status: IncidentStatus,
    pub opened_ms: i64,
    pub acknowledged_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_ms: Option<i64>,
    /// ITIL priority, P1 (highest) to P5.
    pub priority: String,
    /// The root-cause incident this one is linked under (its notifications are held back).
    pub parent_id: Option<i64>,
    pub timeline: Vec<TimelineEvent>,
}

impl Incident {
    /// Sets the priority of an `Action::Open`.
    pub fn prioritised(action: Action, p: String) -> Action {
        match action {
            Action::Open { kind, subject, title, severity, opened_ms, event, .. } => {
                Action::Open { kind, subject, title, severity, priority: p, opened_ms, event }
            }
            other => other,
        }
    }
}

/// Something a person does to an incident.
#[derive(Clone, Debug, PartialEq)]
pub enum ManualOp {
    Acknowledge { by: String, note: Option<String> },
    Note { by: String, text: String },
    Resolve { by: String, note: Option<String> },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManualError {
    #[error("no incident {0}")]
    NotFound(i64),
    #[error("incident {0} is resolved already")]
    Resolved(i64),
}

/// Mean time to acknowledge and mean time to resolve, in ms, over the incidents that were
/// acknowledged (resolved); `None` where none was. Pure.
pub fn mean_times_ms(incidents: &[Incident]) -> (Option<f64>, Option<f64>) {
    let mean = |xs: Vec<i64>| (!xs.is_empty()).then(|| xs.iter().sum::<i64>() as f64 / xs.len() as f64);
    (
        mean(incidents.iter().filter_map(|i| i.acknowledged_ms.map(|a| a - i.opened_ms)).collect()),
        mean(incidents.iter().filter_map(|i| i.resolved_ms.map(|r| r - i.opened_ms)).collect()),
    )
}

/// Priority before anyone knows better: medium impact, medium urgency.
pub const DEFAULT_PRIORITY: &str = "P3";

/// What to do with a transition.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Open {
        kind: IncidentKind,
        subject: String,
        title: String,
        severity: String,
        /// ITIL priority; the caller that knows the services sets it (see `priority.rs`).
        priority: String,
        opened_ms: i64,
        event: TimelineEvent,
    },
    Resolve {
        event: TimelineEvent,
    },
}

/// The incident action for a check's transition.
pub fn action_for(check: &str, transition: &Transition) -> Option<Action> {
    match transition {
        Transition::Down { at_ms, since_ms, error } => {
            // The short cause makes the title ("connection refused", "HTTP 503", a plugin's
            // status line); the full reason — an error chain, a plugin's long output — goes
            // with the opening event, on the incident's page and in the API.
            let cause = error.as_deref().unwrap_or("probe failed");
            let headline = crate::core::cause::short(cause);
            Some(Action::Open {
                kind: IncidentKind::CheckDown,
                subject: check.to_string(),
                title: format!("{check} is down: {headline}"),
                severity: "critical".into(),
                priority: DEFAULT_PRIORITY.into(),
                opened_ms: *since_ms,
                event: TimelineEvent {
                    at_ms: *at_ms,
                    kind: "opened".into(),
                    message: format!("check {check} failing since {}: {cause}", crate::core::time::rfc3339(*since_ms)),
                },
            })
        }
        // Up again: resolves the check's incident if one is open, also when the check went
        // unknown in between (its agent was silent while it was down).
        Transition::Up { at_ms, .. } => Some(Action::Resolve {
            event: TimelineEvent {
                at_ms: *at_ms,
                kind: "resolved".into(),
                message: format!("check {check} recovered"),
            },
        }),
    }
}

/// The first line of a reason (a plugin's status line, without its long output).
pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim_end()
}

/// An agent that should be reporting, as the silence rule sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPresence {
    pub name: String,
    /// When it last pushed (Unix ms); `None` if never: an agent that never reported is unknown,
    /// not silent.
    pub last_seen_ms: Option<i64>,
    /// Silent after this long without a push.
    pub silent_after_ms: i64,
    /// Whether an "agent silent" incident is open for it.
    pub incident_open: bool,
}

/// The "agent silent" incidents to open at `now_ms`. Resolution happens when the agent pushes
/// again, in the same transaction as its batch.
pub fn silent_agents(agents: &[AgentPresence], now_ms: i64) -> Vec<Action> {
    agents
        .iter()
        .filter(|a| !a.incident_open)
        .filter_map(|a| {
            let last = a.last_seen_ms?;
            (now_ms - last > a.silent_after_ms).then(|| Action::Open {
                kind: IncidentKind::AgentSilent,
                subject: a.name.clone(),
                title: format!("agent {} is silent", a.name),
                severity: "critical".into(),
                priority: DEFAULT_PRIORITY.into(),
                opened_ms: last,
                event: TimelineEvent {
                    at_ms: now_ms,
                    kind: "opened".into(),
                    message: format!(
                        "agent {} has not reported since {} (silent after {})",
                        a.name,
                        crate::core::time::rfc3339(last),
                        crate::core::time::human_span(a.silent_after_ms)
                    ),
                },
            })
        })
        .collect()
}

/// Flapping: at least `threshold` state changes within the flap window.
pub fn is_flapping(changes_in_window: i64, threshold: u32) -> bool {
    threshold > 0 && changes_in_window >= i64::from(threshold)
}

/// One response or resolution target of an incident, as the contract counts it (calendar
/// time): met when done within the target (exactly at it counts as met), breached when done
/// later or still not done past it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TargetState {
    pub target_ms: i64,
    /// Until it was done, or until now while it is not.
    pub elapsed_ms: i64,
    pub due_ms: i64,
    /// `Some(true)` met, `Some(false)` breached, `None` still running within the target.
    pub met: Option<bool>,
}

impl TargetState {
    /// The target `target_ms` from `start_ms`, done at `done_ms` (if it is), seen at `now_ms`;
    /// counted in calendar time, or only inside `hours` (business time).
    pub fn judge(
        target_ms: i64,
        start_ms: i64,
        done_ms: Option<i64>,
        now_ms: i64,
        hours: Option<&crate::core::service_hours::Hours>,
    ) -> TargetState {
        let counted = |to: i64| hours.map_or(to - start_ms, |h| h.inside_ms(start_ms, to.max(start_ms)));
        let due_ms = match hours {
            None => start_ms.saturating_add(target_ms),
            Some(h) => due_in_hours(h, start_ms, target_ms),
        };
        let elapsed_ms = counted(done_ms.unwrap_or(now_ms));
        let met = match done_ms {
            Some(_) => Some(elapsed_ms <= target_ms),
            None if elapsed_ms > target_ms => Some(false),
            None => None,
        };
        TargetState { target_ms, elapsed_ms, due_ms, met }
    }
}

/// When `target_ms` of service hours have passed since `start_ms` (looked for within a year).
fn due_in_hours(h: &crate::core::service_hours::Hours, start_ms: i64, target_ms: i64) -> i64 {
    let mut left = target_ms;
    let year = 366 * 86_400_000;
    for (a, b) in h.inside(start_ms, start_ms.saturating_add(year)) {
        if b - a >= left {
            return a + left;
        }
        left -= b - a;
    }
    i64::MAX
}

/// An incident's acknowledgement and resolution targets, from its priority.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Targets {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<TargetState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve: Option<TargetState>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.acknowledge.is_none() && self.resolve.is_none()
    }

    /// "acknowledge 12m of 15m: met; resolve 5h of 4h: breached", for pages and reports.
    pub fn describe(&self) -> String {
        let one = |what: &str, t: &TargetState| {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "breached",
                None => "running",
            };
            format!(
                "{what} {} of {}: {verdict}",
                crate::core::time::human_span(t.elapsed_ms.max(0) / 60_000 * 60_000),
                crate::core::time::human_span(t.target_ms)
            )
        };
        let parts: Vec<String> = [("acknowledge", &self.acknowledge), ("resolve", &self.resolve)]
            .into_iter()
            .filter_map(|(w, t)| t.as_ref().map(|t| one(w, t)))
            .collect();
        parts.join("; ")
    }

    pub fn breached(&self) -> bool {
        [&self.acknowledge, &self.resolve].into_iter().flatten().any(|t| t.met == Some(false))
    }
}

/// The targets of `incident` under `targets` (by priority) at `now_ms`. A resolved incident
/// that was never acknowledged counts as acknowledged at its resolution.
pub fn targets_of(incident: &Incident, config: &vakt_config::CollectorConfig, now_ms: i64) -> Targets {
    let Some(t) = config.response_targets.get(&incident.priority) else { return Targets::default() };
    let hours = t.service_hours.as_ref().and_then(|name| {
        config
            .service_hours
            .get(name.as_str())
            .map(|c| crate::core::service_hours::Hours::from_config(name.as_str(), c))
    });
    let ms = |d: vakt_config::HumanDuration| i64::try_from(d.get().as_millis()).unwrap_or(i64::MAX);
    let acked = incident.acknowledged_ms.or(incident.resolved_ms);
    let judge = |target, done| TargetState::judge(ms(target), incident.opened_ms, done, now_ms, hours.as_ref());
    Targets {
        acknowledge: t.acknowledge.map(|a| judge(a, acked)),
        resolve: t.resolve.map(|r| judge(r, incident.resolved_ms)),
    }
}

/// A target about to be breached at `now_ms`: the first still running whose due time is within
/// `warn_before_ms`, unless a warning already went out since that window began
/// (`last_warned_ms`). Returns what to say.
pub fn target_warning(
    targets: &Targets,
    warn_before_ms: i64,
    last_warned_ms: Option<i64>,
    now_ms: i64,
) -> Option<String> {
    [("acknowledgement", &targets.acknowledge), ("resolution", &targets.resolve)].into_iter().find_map(|(what, t)| {
        let t = t.as_ref()?;
        let window_start = t.due_ms.saturating_sub(warn_before_ms);
        let due_soon = t.met.is_none() && now_ms >= window_start && now_ms <= t.due_ms;
        let warned = last_warned_ms.is_some_and(|w| w >= window_start);
        (due_soon && !warned).then(|| {
            format!("{what} target due in {}: told again", crate::core::time::human_span((t.due_ms - now_ms).max(0)))
        })
    })
}

/// How long a flapping check must stay quiet (no state change) to be settled: half its flap
/// window.
pub fn flap_quiet_ms(window_ms: i64) -> i64 {
    window_ms / 2
}

/// The "flapping" incident of a check.
pub fn flapping_incident(check: &str, changes: i64, window_ms: i64, at_ms: i64) -> Action {
    let window = crate::core::time::human_span(window_ms);
    Action::Open {
        kind: IncidentKind::Flapping,
        subject: check.to_string(),
        title: format!("{check} is flapping: {changes} state changes in {window}"),
        severity: "warning".into(),
        priority: DEFAULT_PRIORITY.into(),
        opened_ms: at_ms,
        event: TimelineEvent {
            at_ms,
            kind: "opened".into(),
            message: format!("check {check} changed state {changes} times within {window}; its up/down incidents are held until it settles"),
        },
    }
}

/// The incident action for an SLO's burn-rate alerts at `now_ms`: open one (paging if any
/// page rule fires, else a ticket) when alerts fire and none is open; resolve it when none
/// fires any more.
pub fn burn_action(slo: &str, alerts: &[crate::core::slo::BurnAlert], open: bool, now_ms: i64) -> Option<Action> {
    match (alerts.iter().max_by(|a, b| a.factor.total_cmp(&b.factor)), open) {
        (Some(worst), false) => {
            let severity = if alerts.iter().any(|a| a.severity == "page") { "page" } else { "ticket" };
            let long = crate::core::time::human_span(worst.long_ms);
            let short = crate::core::time::human_span(worst.short_ms);
            Some(Action::Open {
                kind: IncidentKind::SloBurn,
                subject: slo.to_string(),
                title: format!("SLO {slo} is burning its error budget at {:.1}x ({long})", worst.long_rate),
                severity: severity.into(),
                priority: DEFAULT_PRIORITY.into(),
                opened_ms: now_ms,
                event: TimelineEvent {
                    at_ms: now_ms,
                    kind: "opened".into(),
                    message: format!(
                        "burn rate {:.1}x over {long} and {:.1}x over {short} (threshold {}x)",
                        worst.long_rate, worst.short_rate, worst.factor
                    ),
                },
            })
        }
        (None, true) => Some(Action::Resolve {
            event: TimelineEvent {
                at_ms: now_ms,
                kind: "resolved".into(),
                message: format!("SLO {slo} no longer burns fast"),
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod target_tests {
    use super::*;

    /// A check-down incident of `priority` opened at `opened`, acknowledged and resolved when given.
    fn incident(opened: i64, ack: Option<i64>, resolved: Option<i64>, priority: &str) -> Incident {
        Incident {
            id: 1,
            dedup_key: "check:web".into(),
            kind: IncidentKind::CheckDown,
            subject: "web".into(),
            title: "web is down".into(),
            severity: "critical".into(),
            status: match (ack, resolved) {
                (_, Some(_)) => IncidentStatus::Resolved,
                (Some(_), None) => IncidentStatus::Acknowledged,
                (None, None) => IncidentStatus::Open,
            },
            opened_ms: opened,
            acknowledged_ms: ack,
            acknowledged_by: None,
            resolved_ms: resolved,
            priority: priority.into(),
            parent_id: None,
            timeline: vec![],
        }
    }

    /// P1: acknowledged within 15 minutes, resolved within 4 hours, at their exact thresholds.
    #[test]
    fn response_and_resolution_targets_at_their_thresholds() {
        const MIN: i64 = 60_000;
        let targets = vakt_config::CollectorConfig::parse(
            "[response_targets.P1]\nacknowledge = \"15m\"\nresolve = \"4h\"\n",
            std::path::Path::new("collector.toml"),
        )
        .unwrap();
        let t0 = 1_700_000_000_000;
        let incident = |ack: Option<i64>, resolved: Option<i64>, priority: &str| incident(t0, ack, resolved, priority);
        // Acknowledged at exactly 15:00 and resolved at exactly 4:00:00: both met.
        let on_the_dot = targets_of(&incident(Some(t0 + 15 * MIN), Some(t0 + 240 * MIN), "P1"), &targets, t0 + DAY);
        assert_eq!(on_the_dot.acknowledge.as_ref().unwrap().met, Some(true));
        assert_eq!(on_the_dot.resolve.as_ref().unwrap().met, Some(true));
        assert!(!on_the_dot.breached());
        // A millisecond later each: breached.
        let late = targets_of(&incident(Some(t0 + 15 * MIN + 1), Some(t0 + 240 * MIN + 1), "P1"), &targets, t0 + DAY);
        assert_eq!((late.acknowledge.unwrap().met, late.resolve.unwrap().met), (Some(false), Some(false)));
        // Open and unacknowledged: running until 15:00, breached after, due at 15:00.
        let open = targets_of(&incident(None, None, "P1"), &targets, t0 + 15 * MIN);
        let ack = open.acknowledge.unwrap();
        assert_eq!((ack.met, ack.due_ms, ack.elapsed_ms), (None, t0 + 15 * MIN, 15 * MIN));
        assert_eq!(
            targets_of(&incident(None, None, "P1"), &targets, t0 + 15 * MIN + 1).acknowledge.unwrap().met,
            Some(false)
        );
        // No targets for P3 in this contract.
        assert_eq!(targets_of(&incident(None, None, "P3"), &targets, t0), Targets::default());
    }

    const DAY: i64 = 86_400_000;

    /// A P1 with a 15-minute acknowledgement target and `warn_before = "5m"`: from minute 10
    /// to 15, unacknowledged, its receivers are told again once.
    #[test]
    fn a_breach_about_to_happen_is_told_once() {
        let t0 = 1_700_000_000_000;
        let running = |now: i64| Targets {
            acknowledge: Some(TargetState::judge(15 * 60_000, t0, None, now, None)),
            resolve: None,
        };
        let five = 5 * 60_000;
        assert_eq!(target_warning(&running(t0 + 9 * 60_000), five, None, t0 + 9 * 60_000), None, "not yet");
        let said = target_warning(&running(t0 + 10 * 60_000), five, None, t0 + 10 * 60_000).unwrap();
        assert_eq!(said, "acknowledgement target due in 5 min: told again");
        assert_eq!(
            target_warning(&running(t0 + 12 * 60_000), five, Some(t0 + 10 * 60_000), t0 + 12 * 60_000),
            None,
            "once"
        );
        assert_eq!(
            target_warning(&running(t0 + 16 * 60_000), five, None, t0 + 16 * 60_000),
            None,
            "breached: too late to warn"
        );
        let acked = Targets {
            acknowledge: Some(TargetState::judge(15 * 60_000, t0, Some(t0 + 60_000), t0 + 12 * 60_000, None)),
            resolve: None,
        };
        assert_eq!(target_warning(&acked, five, None, t0 + 12 * 60_000), None, "met");
    }

    /// In business time: P2 acknowledged within 2 business hours, weekdays 08:00–16:00 UTC. An
    /// incident opened on Friday 11 December 2026 at 15:00 has one business hour that day and
    /// one on Monday: due Monday 14 December at 09:00. Acknowledged then: met; a minute later:
    /// breached, though 66 calendar hours had passed either way.
    #[test]
    fn targets_in_business_time_skip_nights_and_weekends() {
        let config = vakt_config::CollectorConfig::parse(
            "[service_hours.office]\nhours = \"08:00-16:00\"\n\
             [response_targets.P2]\nacknowledge = \"2h\"\nservice_hours = \"office\"\n",
            std::path::Path::new("collector.toml"),
        )
        .unwrap();
        let ms = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let opened = ms("2026-12-11T15:00:00Z");
        let incident = |ack: i64| incident(opened, Some(ack), None, "P2");
        let on_time = targets_of(&incident(ms("2026-12-14T09:00:00Z")), &config, ms("2026-12-15T00:00:00Z"));
        let ack = on_time.acknowledge.unwrap();
        assert_eq!((ack.due_ms, ack.elapsed_ms, ack.met), (ms("2026-12-14T09:00:00Z"), 2 * 3_600_000, Some(true)));
        let late = targets_of(&incident(ms("2026-12-14T09:01:00Z")), &config, ms("2026-12-15T00:00:00Z"));
        assert_eq!(late.acknowledge.unwrap().met, Some(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(last: Option<i64>, open: bool) -> AgentPresence {
        AgentPresence { name: "edge-1".into(), last_seen_ms: last, silent_after_ms: 60_000, incident_open: open }
    }

    #[test]
    fn an_agent_is_silent_only_after_its_grace_period() {
        assert!(silent_agents(&[agent(Some(0), false)], 60_000).is_empty(), "exactly at the limit is not yet silent");
        let actions = silent_agents(&[agent(Some(0), false)], 60_001);
        assert_eq!(actions.len(), 1);
        let Action::Open { kind, subject, opened_ms, .. } = &actions[0] else { panic!("{actions:?}") };
        assert_eq!((*kind, subject.as_str(), *opened_ms), (IncidentKind::AgentSilent, "edge-1", 0));
    }

    #[test]
    fn flapping_starts_at_the_threshold() {
        assert!(!is_flapping(5, 6));
        assert!(is_flapping(6, 6));
        assert!(!is_flapping(100, 0), "0 turns flap detection off");
    }

    #[test]
    fn never_seen_or_already_open_opens_nothing() {
        assert!(silent_agents(&[agent(None, false)], 10_000_000).is_empty());
        assert!(silent_agents(&[agent(Some(0), true)], 10_000_000).is_empty());
    }
}
