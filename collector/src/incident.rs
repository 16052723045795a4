//! Incidents opened and resolved from check transitions: pure decisions, stored by the `Store`.

use serde::Serialize;

use crate::state::Transition;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(IncidentStatus::Open),
            "resolved" => Some(IncidentStatus::Resolved),
            _ => None,
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
    pub check: String,
    pub title: String,
    pub severity: String,
    pub status: IncidentStatus,
    pub opened_ms: i64,
    pub resolved_ms: Option<i64>,
    pub timeline: Vec<TimelineEvent>,
}

/// What to do with a transition.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Open { dedup_key: String, title: String, severity: String, opened_ms: i64, event: TimelineEvent },
    Resolve { event: TimelineEvent },
}

pub fn dedup_key(check: &str) -> String {
    format!("check:{check}")
}

/// The incident action for a check's transition. Recovery from `Unknown` needs none.
pub fn action_for(check: &str, transition: &Transition) -> Option<Action> {
    match transition {
        Transition::Down { at_ms, since_ms, error } => {
            let cause = error.as_deref().unwrap_or("probe failed");
            Some(Action::Open {
                dedup_key: dedup_key(check),
                title: format!("{check} is down: {cause}"),
                severity: "critical".into(),
                opened_ms: *since_ms,
                event: TimelineEvent {
                    at_ms: *at_ms,
                    kind: "opened".into(),
                    message: format!("check {check} failing since {}: {cause}", crate::time::rfc3339(*since_ms)),
                },
            })
        }
        Transition::Up { at_ms, was: crate::state::Status::Down } => Some(Action::Resolve {
            event: TimelineEvent {
                at_ms: *at_ms,
                kind: "resolved".into(),
                message: format!("check {check} recovered"),
            },
        }),
        Transition::Up { .. } => None,
    }
}
