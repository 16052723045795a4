//! What a decision changes, as ordered writes a store carries out without deciding anything:
//! state periods, incident openings, resolutions, reopenings and foldings with their outbox
//! entries, timeline events, check states. The batch step, the evaluator's incidents and
//! people's operations (acknowledge, note, resolve) all speak it, so a second store implements
//! these writes once and takes every decision the same way.

use crate::core::incident::{Action, IncidentKind, ManualError, ManualOp, TimelineEvent};
use crate::core::routing::{Facts, Router};
use crate::core::state::{CheckState, Status};

/// An incident the plan refers to: one already stored, or the n-th the plan opens (its id is
/// known once the store has written it). Stored ones sort before new ones, as ids do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IncidentRef {
    Stored(i64),
    New(usize),
}

impl IncidentRef {
    /// The stored id, given the ids of the incidents the plan opened, in their order.
    pub fn id(self, new_ids: &[i64]) -> i64 {
        match self {
            IncidentRef::Stored(id) => id,
            IncidentRef::New(n) => new_ids[n],
        }
    }
}

/// An incident as the step sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownIncident {
    pub id: i64,
    pub kind: IncidentKind,
    pub subject: String,
    pub opened_ms: i64,
    /// `None` while open (or acknowledged).
    pub resolved_ms: Option<i64>,
    pub reopened_ms: Option<i64>,
    /// Linked under another incident.
    pub has_parent: bool,
    /// Acknowledged by someone.
    pub acknowledged: bool,
    /// The receivers its opening was announced to (loaded for open incidents).
    pub announced_to: Vec<String>,
}

/// One write, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Ends the check's open state period at `at_ms` and starts one with `status` there.
    StartPeriod { check: String, status: Status, at_ms: i64 },
    /// Ends the check's open period at `unknown_from_ms` (where its last result stopped
    /// vouching) and resumes `status` at `at_ms` (not a change of state).
    ResumePeriod { check: String, status: Status, unknown_from_ms: i64, at_ms: i64 },
    /// Opens an incident (the next [`IncidentRef::New`]) with its first timeline event, and
    /// queues its announcement to each receiver at its time.
    OpenIncident { action: Action, announce: Vec<(String, i64)> },
    /// Resolves an incident at `event.at_ms` with the event, queueing the resolution.
    ResolveIncident { id: IncidentRef, event: TimelineEvent, announce: Vec<(String, i64)> },
    /// Opens a resolved incident again, unannounced.
    ReopenIncident { id: IncidentRef, event: TimelineEvent },
    /// Links an incident under the flapping incident `into`, resolved at `resolved_ms` (kept
    /// when it already was; `closed`: it was open until now); its timeline says so
    /// ([`folded_event`]).
    FoldIncident { id: IncidentRef, into: IncidentRef, resolved_ms: i64, closed: bool, at_ms: i64 },
    /// Notes on the flapping incident `into` which incidents it folded ([`folds_event`]).
    FoldNote { into: IncidentRef, folded: Vec<IncidentRef>, check: String, at_ms: i64 },
    /// Acknowledges an incident by `by`, with its timeline event; `announce` are the pagers
    /// (receivers that follow an incident's lifecycle) to tell, with when.
    AcknowledgeIncident { id: IncidentRef, by: String, event: TimelineEvent, announce: Vec<(String, i64)> },
    /// A timeline event.
    AddEvent { id: IncidentRef, event: TimelineEvent },
    /// A person's note, and the service desks to pass it to (with when).
    AddNote { id: IncidentRef, event: TimelineEvent, announce: Vec<(String, i64)> },
    /// Saves a check's (or a vote's) state; its open incident is `open_incident`.
    SaveState { key: String, state: CheckState, open_incident: Option<IncidentRef> },
}

/// What a written plan did, in stored ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Written {
    pub opened: Vec<i64>,
    pub resolved: Vec<i64>,
    /// Every state the plan saved, with its open incident's stored id.
    pub states: Vec<(String, CheckState)>,
}

/// What a batch changes: the writes in order, and the incidents it opened and resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub writes: Vec<Write>,
    pub opened: Vec<IncidentRef>,
    pub resolved: Vec<IncidentRef>,
}

impl Plan {
    /// What the plan did once written, `new_ids` being the ids the store gave the incidents it
    /// opened.
    pub fn written(self, new_ids: Vec<i64>) -> Written {
        let resolved = self.resolved.iter().map(|r| r.id(&new_ids)).collect();
        let states = self
            .writes
            .into_iter()
            .filter_map(|w| match w {
                Write::SaveState { key, state, open_incident } => {
                    Some((key, CheckState { open_incident: open_incident.map(|r| r.id(&new_ids)), ..state }))
                }
                _ => None,
            })
            .collect();
        Written { opened: new_ids, resolved, states }
    }
}

/// The timeline event of an incident folded into the flapping incident `into`.
pub fn folded_event(closed: bool, into: i64, at_ms: i64) -> TimelineEvent {
    let how = if closed { " and closed" } else { "" };
    TimelineEvent {
        at_ms,
        kind: "linked".into(),
        message: format!("folded{how} into the flapping incident {into}: one problem, one incident"),
    }
}

/// The flapping incident's note of the incidents it folded.
pub fn folds_event(folded: &[i64], check: &str, at_ms: i64) -> TimelineEvent {
    let ids: Vec<String> = folded.iter().map(i64::to_string).collect();
    TimelineEvent {
        at_ms,
        kind: "note".into(),
        message: format!("folds incident(s) {} of {check} from the flap window", ids.join(", ")),
    }
}

/// The incidents of the step: loaded, then changed and added to as it decides.
pub(crate) struct Incidents<'r> {
    all: Vec<(IncidentRef, KnownIncident, Option<IncidentRef>)>,
    new: usize,
    router: &'r Router,
}

impl<'r> Incidents<'r> {
    pub(crate) fn of(loaded: Vec<KnownIncident>, router: &'r Router) -> Incidents<'r> {
        Incidents { all: loaded.into_iter().map(|i| (IncidentRef::Stored(i.id), i, None)).collect(), new: 0, router }
    }

    fn open_under(&self, key: &str) -> Option<usize> {
        self.all.iter().position(|(_, i, _)| i.resolved_ms.is_none() && i.kind.dedup_key(&i.subject) == key)
    }

    /// Opens an incident unless one is open under its key; queues its announcement.
    pub(crate) fn open(&mut self, action: Action, plan: &mut Plan) -> Option<IncidentRef> {
        let Action::Open { kind, subject, severity, priority, opened_ms, event, .. } = &action else { return None };
        if self.open_under(&kind.dedup_key(subject)).is_some() {
            return None;
        }
        let facts = Facts { kind: *kind, subject, severity, priority };
        // A first announcement waits for the dependencies to show whether they are the root cause.
        let at = event.at_ms + self.router.hold_ms(&facts);
        let receivers = self.router.receivers(&facts);
        let id = IncidentRef::New(self.new);
        self.new += 1;
        self.all.push((
            id,
            KnownIncident {
                id: -1,
                kind: *kind,
                subject: subject.clone(),
                opened_ms: *opened_ms,
                resolved_ms: None,
                reopened_ms: None,
                has_parent: false,
                acknowledged: false,
                announced_to: receivers.clone(),
            },
            None,
        ));
        let announce = receivers.into_iter().map(|r| (r, at)).collect();
        plan.writes.push(Write::OpenIncident { action, announce });
        plan.opened.push(id);
        Some(id)
    }

    /// Resolves the open incident under `key`, saying how long it lasted. Its resolution goes
    /// to the receivers it was announced to, unless it was reopened within a flap window (its
    /// return was not announced, nor is this recovery).
    pub(crate) fn resolve(&mut self, key: &str, event: &TimelineEvent, plan: &mut Plan) -> Option<IncidentRef> {
        let i = self.open_under(key)?;
        let wait = self.router.group_wait_ms();
        let (id, inc, _) = &mut self.all[i];
        inc.resolved_ms = Some(event.at_ms);
        let event = TimelineEvent {
            message: format!("{} after {}", event.message, crate::core::time::human_span(event.at_ms - inc.opened_ms)),
            ..event.clone()
        };
        let announce = if inc.reopened_ms.is_none() {
            inc.announced_to.iter().map(|r| (r.clone(), event.at_ms + wait)).collect()
        } else {
            Vec::new()
        };
        plan.writes.push(Write::ResolveIncident { id: *id, event, announce });
        plan.resolved.push(*id);
        Some(*id)
    }

    /// A check that goes down again within `since_ms` of its last incident's resolution is that
    /// incident again, not a new one: reopened, unannounced (the people paged for it were told
    /// it recovered; the flapping incident will tell them more).
    pub(crate) fn reopen_recent(
        &mut self,
        check: &str,
        since_ms: i64,
        at_ms: i64,
        why: Option<&str>,
        plan: &mut Plan,
    ) -> Option<IncidentRef> {
        let i = self
            .all
            .iter()
            .enumerate()
            .filter(|(_, (_, inc, parent))| {
                inc.kind == IncidentKind::CheckDown
                    && inc.subject == check
                    && parent.is_none()
                    && !inc.has_parent
                    && inc.resolved_ms.is_some_and(|r| r >= since_ms)
            })
            .max_by_key(|(_, (id, inc, _))| (inc.resolved_ms, *id))
            .map(|(i, _)| i)?;
        let (id, inc, _) = &mut self.all[i];
        let resolved = inc.resolved_ms.unwrap_or(at_ms);
        inc.resolved_ms = None;
        inc.reopened_ms = Some(at_ms);
        let mut message = format!(
            "{check} again {} after it recovered: reopened, not paged again (the check may be flapping)",
            crate::core::time::human_span(at_ms - resolved)
        );
        // Why it failed this time (a job's output, say) belongs to the incident too.
        if let Some(why) = why.filter(|w| !w.is_empty()) {
            message.push_str(": ");
            message.push_str(why);
        }
        plan.writes
            .push(Write::ReopenIncident { id: *id, event: TimelineEvent { at_ms, kind: "reopened".into(), message } });
        Some(*id)
    }

    /// Folds a check's incidents of the flap window into its flapping incident: linked under
    /// it (one timeline), an open one resolved as folded, unannounced.
    pub(crate) fn fold_into(&mut self, check: &str, flapping: IncidentRef, since_ms: i64, at_ms: i64, plan: &mut Plan) {
        let mut folded = Vec::new();
        for (id, inc, parent) in self.all.iter_mut() {
            let candidate = inc.kind == IncidentKind::CheckDown
                && inc.subject == check
                && parent.is_none()
                && !inc.has_parent
                && inc.resolved_ms.is_none_or(|r| r >= since_ms);
            if !candidate {
                continue;
            }
            let closed = inc.resolved_ms.is_none();
            let resolved_ms = *inc.resolved_ms.get_or_insert(at_ms);
            *parent = Some(flapping);
            folded.push(*id);
            plan.writes.push(Write::FoldIncident { id: *id, into: flapping, resolved_ms, closed, at_ms });
        }
        if !folded.is_empty() {
            plan.writes.push(Write::FoldNote { into: flapping, folded, check: check.to_string(), at_ms });
        }
    }
}

/// What the stores load for [`open_all`] and [`resolve_all`]: the open incidents under these
/// keys.
pub fn keys_of(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Open { kind, subject, .. } => Some(kind.dedup_key(subject)),
            Action::Resolve { .. } => None,
        })
        .collect()
}

/// Opens an incident for each of `actions` (the evaluator's: silent agents, SLO burns) unless
/// one is open under its key, given the `open` incidents under those keys.
pub fn open_all(actions: &[Action], open: Vec<KnownIncident>, router: &Router) -> Plan {
    let mut plan = Plan::default();
    let mut incidents = Incidents::of(open, router);
    for action in actions {
        incidents.open(action.clone(), &mut plan);
    }
    plan
}

/// Resolves the open incident under each key with its event, given the `open` incidents under
/// those keys.
pub fn resolve_all(resolutions: &[(String, TimelineEvent)], open: Vec<KnownIncident>, router: &Router) -> Plan {
    let mut plan = Plan::default();
    let mut incidents = Incidents::of(open, router);
    for (key, event) in resolutions {
        incidents.resolve(key, event, &mut plan);
    }
    plan
}

/// What a person's operation on incident `id` changes at `at_ms`, given the incident as loaded
/// (`None`: there is none). Acknowledging twice changes nothing; a resolved incident takes notes
/// only. Resolving by hand tells the receivers it was announced to (after the group wait); a
/// check resolved by hand while still down opens no new incident until it recovers and fails
/// again (its state keeps the incident).
pub fn manual(
    id: i64,
    incident: Option<&KnownIncident>,
    op: &ManualOp,
    at_ms: i64,
    router: &Router,
) -> Result<Plan, ManualError> {
    let Some(incident) = incident else { return Err(ManualError::NotFound(id)) };
    if incident.resolved_ms.is_some() && !matches!(op, ManualOp::Note { .. }) {
        return Err(ManualError::Resolved(id));
    }
    let event = |kind: &str, message: String| TimelineEvent { at_ms, kind: kind.into(), message };
    let with_note = |what: String, note: &Option<String>| match note {
        Some(n) => format!("{what}: {n}"),
        None => what,
    };
    let mut plan = Plan::default();
    let r = IncidentRef::Stored(id);
    match op {
        ManualOp::Acknowledge { by, note } if !incident.acknowledged => {
            let text = with_note(format!("acknowledged by {by}"), note);
            // Pagers it was announced to close their own alert's loop; the others hear nothing.
            let announce = incident
                .announced_to
                .iter()
                .filter(|x| router.follows_lifecycle(x))
                .map(|x| (x.clone(), at_ms))
                .collect();
            plan.writes.push(Write::AcknowledgeIncident {
                id: r,
                by: by.clone(),
                event: event("acknowledged", text),
                announce,
            });
        }
        ManualOp::Acknowledge { .. } => {}
        ManualOp::Note { by, text } => {
            // Service desks the incident went to keep the note on their ticket.
            let announce =
                incident.announced_to.iter().filter(|x| router.takes_notes(x)).map(|x| (x.clone(), at_ms)).collect();
            plan.writes.push(Write::AddNote { id: r, event: event("note", format!("{by}: {text}")), announce })
        }
        ManualOp::Resolve { by, note } => {
            let text = with_note(format!("resolved by hand by {by}"), note);
            let at = at_ms + router.group_wait_ms();
            let announce = incident.announced_to.iter().map(|x| (x.clone(), at)).collect();
            plan.writes.push(Write::ResolveIncident { id: r, event: event("resolved", text), announce });
            plan.resolved.push(r);
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(resolved: bool, acknowledged: bool) -> KnownIncident {
        KnownIncident {
            id: 4,
            kind: IncidentKind::CheckDown,
            subject: "web".into(),
            opened_ms: 1_000,
            resolved_ms: resolved.then_some(2_000),
            reopened_ms: None,
            has_parent: false,
            acknowledged,
            announced_to: vec!["ops".into()],
        }
    }

    /// People's operations: an acknowledgement once, notes always, a resolution by hand told to
    /// the receivers the incident was announced to; nothing but notes on a resolved incident,
    /// and no incident is "not found".
    #[test]
    fn people_acknowledge_once_note_always_and_resolve_what_is_open() {
        let router = Router::default();
        let ack = ManualOp::Acknowledge { by: "alice".into(), note: Some("on it".into()) };
        let plan = manual(4, Some(&incident(false, false)), &ack, 5_000, &router).unwrap();
        assert!(matches!(&plan.writes[..], [Write::AcknowledgeIncident { by, event, .. }]
            if by == "alice" && event.message == "acknowledged by alice: on it"));
        assert!(manual(4, Some(&incident(false, true)), &ack, 5_000, &router).unwrap().writes.is_empty());

        let resolve = ManualOp::Resolve { by: "bob".into(), note: None };
        let plan = manual(4, Some(&incident(false, true)), &resolve, 6_000, &router).unwrap();
        assert_eq!(plan.resolved, [IncidentRef::Stored(4)]);
        assert!(matches!(&plan.writes[..], [Write::ResolveIncident { announce, event, .. }]
            if announce == &[("ops".to_string(), 6_000)] && event.message == "resolved by hand by bob"));

        assert_eq!(manual(4, Some(&incident(true, true)), &resolve, 7_000, &router), Err(ManualError::Resolved(4)));
        let note = ManualOp::Note { by: "carol".into(), text: "postmortem filed".into() };
        assert!(manual(4, Some(&incident(true, true)), &note, 7_000, &router).is_ok());
        assert_eq!(manual(9, None, &note, 7_000, &router), Err(ManualError::NotFound(9)));
    }
}
