//! The batch step: what one batch of samples changes, decided without I/O.
//!
//! A store commits a batch in three moves inside one transaction: it loads what the batch
//! touches ([`needs`] says what: the states of its checks and quorum voters, their recent
//! state changes, their incidents and the agent's), calls [`step`], and writes the [`Plan`] it
//! returns in order (`core::plan`). The check state machine, the quorum tally, gaps of silence, flap
//! detection and folding, reopening and the incident lifecycle with its outbox entries are all
//! decided here, so every store takes the same decisions by construction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use vakt_config::wire::Batch;

use crate::core::incident::{
    action_for, flapping_incident, is_flapping, Action, Incident, IncidentKind, TimelineEvent,
};
use crate::core::plan::{IncidentRef, Incidents, KnownIncident, Plan, Write};
use crate::core::policies::Policies;
use crate::core::routing::Router;
use crate::core::state::{gap_before, CheckState, Status, Transition};

/// What the step needs loaded, for a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// States by key: each check, and `check@agent` for this agent's quorum votes.
    pub states: Vec<String>,
    /// Quorum checks: every state whose key starts with `check@` (all agents' votes).
    pub voter_prefixes: Vec<String>,
    /// Per check: the starts of its state periods (not resumptions) after this instant.
    pub changes_after: Vec<(String, i64)>,
    /// Per check: its top-level check-down incidents open, or resolved at or after this instant.
    pub incidents_since: Vec<(String, i64)>,
    /// Open incidents under these dedup keys (with the receivers they were announced to).
    pub open_keys: Vec<String>,
}

/// What the store loaded for [`Needs`].
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// Every state asked for that exists (a missing one is a check never seen: the default).
    pub states: HashMap<String, CheckState>,
    /// Per check: the period starts asked for.
    pub changes: HashMap<String, Vec<i64>>,
    /// The incidents asked for (by check and by key), each once.
    pub incidents: Vec<KnownIncident>,
}

/// Whether a batch is a replay: the same agent, instance and sequence were stored with the
/// same content (or before contents were kept, an empty hash). Another content under a used
/// number is a new batch, with its sequence reused (a state directory restored from a copy).
/// Returns (duplicate, sequence reused).
pub fn replay(stored_hashes: &[String], hash: &str) -> (bool, bool) {
    let duplicate = stored_hashes.iter().any(|h| h.is_empty() || h == hash);
    (duplicate, !duplicate && !stored_hashes.is_empty())
}

/// The instance an agent had before, when a new batch comes from another one (its state
/// directory is new); `previous` is the stored agent's instance, `None` for an agent never
/// heard of ("" for one heard of before instances were sent).
pub fn new_instance(previous: Option<Option<String>>, instance: &str, duplicate: bool) -> Option<String> {
    let before = previous?.unwrap_or_default();
    (!duplicate && before != instance).then_some(before)
}

/// Each check's samples (indices into the batch), in time order, checks by name.
fn by_check(batch: &Batch) -> BTreeMap<&str, Vec<usize>> {
    let mut by: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in batch.samples.iter().enumerate() {
        by.entry(s.check.as_str()).or_default().push(i);
    }
    for idxs in by.values_mut() {
        idxs.sort_by_key(|&i| batch.samples[i].timestamp_ms);
    }
    by
}

/// What [`step`] needs loaded for `batch` (a replayed one: only the agent's incident).
pub fn needs(batch: &Batch, duplicate: bool, policies: &Policies) -> Needs {
    let mut n = Needs { open_keys: vec![IncidentKind::AgentSilent.dedup_key(&batch.agent)], ..Needs::default() };
    if duplicate {
        return n;
    }
    for (check, idxs) in by_check(batch) {
        let earliest = idxs.first().map_or(0, |&i| batch.samples[i].timestamp_ms);
        let horizon = earliest - policies.flap_window_ms_of(check);
        n.states.push(check.to_string());
        if policies.quorum.contains_key(check) {
            n.voter_prefixes.push(format!("{check}@"));
        }
        n.changes_after.push((check.to_string(), horizon));
        n.incidents_since.push((check.to_string(), horizon));
        n.open_keys.push(IncidentKind::CheckDown.dedup_key(check));
        n.open_keys.push(IncidentKind::Flapping.dedup_key(check));
        if policies.warning_incidents.contains_key(check) {
            n.open_keys.push(IncidentKind::CheckWarning.dedup_key(check));
        }
    }
    n
}

/// What `batch` (received at `received_ms`) changes, given what was `loaded` for its
/// [`needs`]. A replayed batch (`duplicate`) only shows that its agent reports again.
pub fn step(
    batch: &Batch,
    received_ms: i64,
    duplicate: bool,
    policies: &Policies,
    router: &Router,
    loaded: Loaded,
) -> Plan {
    let mut plan = Plan::default();
    let mut incidents = Incidents::of(loaded.incidents, router);
    let back = TimelineEvent {
        at_ms: received_ms,
        kind: "resolved".into(),
        message: format!("agent {} reports again", batch.agent),
    };
    incidents.resolve(&IncidentKind::AgentSilent.dedup_key(&batch.agent), &back, &mut plan);
    if duplicate {
        return plan;
    }
    let mut states = loaded.states;
    let mut changes = loaded.changes;
    // The open incident of each state touched, as the plan refers to it.
    let mut open_of: HashMap<String, Option<IncidentRef>> = HashMap::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut touch =
        |key: &str, states: &mut HashMap<String, CheckState>, open_of: &mut HashMap<String, Option<IncidentRef>>| {
            if !touched.contains(key) {
                touched.insert(key.to_string());
                let state = states.entry(key.to_string()).or_default();
                open_of.insert(key.to_string(), state.open_incident.map(IncidentRef::Stored));
            }
        };
    for (check, idxs) in by_check(batch) {
        let policy = policies.get(check);
        let quorum = policies.quorum.get(check).copied();
        let (threshold, window_ms) = (policies.flap_threshold_of(check), policies.flap_window_ms_of(check));
        for i in idxs {
            let s = &batch.samples[i];
            // What this agent saw: the check's own state, or with a quorum this agent's vote.
            let seen_by = match quorum {
                Some(_) => format!("{check}@{}", batch.agent),
                None => check.to_string(),
            };
            touch(&seen_by, &mut states, &mut open_of);
            // Silence is not uptime: a result vouches for one interval; a later one after a
            // gap leaves the time between unknown.
            if quorum.is_none() {
                let state = &states[check];
                if state.status != Status::Unknown {
                    if let Some(from) = gap_before(state.last_sample_ms, s.timestamp_ms, policies.interval_ms(check)) {
                        plan.writes.push(Write::ResumePeriod {
                            check: check.to_string(),
                            status: state.status,
                            unknown_from_ms: from,
                            at_ms: s.timestamp_ms,
                        });
                    }
                }
            }
            // A plugin's UNKNOWN counted as no data: the check is unknown, nothing else changes.
            let said_unknown = s.values.get(vakt_config::wire::PLUGIN_UNKNOWN_VALUE) == Some(&1.0);
            if quorum.is_none() && said_unknown && policies.unknown_is_no_data.contains(check) {
                if let Some(st) = states.get_mut(check) {
                    if st.observe_unknown(&batch.agent, s.timestamp_ms, s.error.as_deref()) {
                        plan.writes.push(Write::StartPeriod {
                            check: check.to_string(),
                            status: Status::Unknown,
                            at_ms: s.timestamp_ms,
                        });
                    }
                }
                continue;
            }
            let was_degraded = states.get(&seen_by).is_some_and(|st| st.degraded);
            let seen = states.get_mut(&seen_by).and_then(|st| {
                st.observe_from(&batch.agent, s.success, s.degraded, s.timestamp_ms, s.error.as_deref(), policy)
            });
            if let (None, Some(priority)) = (quorum, policies.warning_incidents.get(check)) {
                warning(check, &states[check], was_degraded, s.timestamp_ms, priority, &mut incidents, &mut plan);
            }
            let transition = match quorum {
                // Several agents vote: each has its own state; the check is down when `q` agree.
                Some(q) => {
                    let (down, up) = votes(&states, check, s.timestamp_ms - policies.stale_ms(check));
                    touch(check, &mut states, &mut open_of);
                    states.get_mut(check).and_then(|st| st.apply_votes(down, up, q, s.timestamp_ms, s.error.as_deref()))
                }
                None => seen,
            };
            let Some(transition) = transition else { continue };
            touch(check, &mut states, &mut open_of);
            let (status, start) = match &transition {
                Transition::Up { at_ms, .. } => (Status::Up, *at_ms),
                Transition::Down { since_ms, .. } => (Status::Down, *since_ms),
            };
            plan.writes.push(Write::StartPeriod { check: check.to_string(), status, at_ms: start });
            let starts = changes.entry(check.to_string()).or_default();
            starts.push(start);
            // A check that keeps changing state is one "flapping" incident, not a stream.
            let recent = starts.iter().filter(|&&t| t > s.timestamp_ms - window_ms).count() as i64;
            let flapping = is_flapping(recent, threshold);
            let open = open_of.entry(check.to_string()).or_default();
            if flapping {
                let action = Incident::prioritised(
                    flapping_incident(check, recent, window_ms, s.timestamp_ms),
                    policies.priority(check),
                );
                if let Some(id) = incidents.open(action, &mut plan) {
                    incidents.fold_into(check, id, s.timestamp_ms - window_ms, s.timestamp_ms, &mut plan);
                    *open = None;
                }
            }
            match action_for(check, &transition) {
                Some(Action::Open { .. }) if flapping => {}
                Some(action @ Action::Open { .. }) => {
                    if open.is_some() {
                        continue;
                    }
                    // Down again soon after it recovered: the same incident, not a new page.
                    if let Some(id) = incidents.reopen_recent(
                        check,
                        s.timestamp_ms - window_ms,
                        event_at(&action),
                        s.error.as_deref(),
                        &mut plan,
                    ) {
                        *open = Some(id);
                        continue;
                    }
                    let action = Incident::prioritised(action, policies.priority(check));
                    if let Some(id) = incidents.open(action, &mut plan) {
                        *open = Some(id);
                    }
                }
                Some(Action::Resolve { event }) if open.take().is_some() => {
                    incidents.resolve(&IncidentKind::CheckDown.dedup_key(check), &event, &mut plan);
                }
                Some(Action::Resolve { .. }) | None => {}
            }
        }
    }
    for key in touched {
        let Some(mut state) = states.remove(&key) else { continue };
        // Every state saved here was touched by a result of this batch.
        state.last_received_ms = Some(received_ms);
        let open_incident = open_of.get(&key).copied().flatten();
        plan.writes.push(Write::SaveState { key, state, open_incident });
    }
    plan
}

/// A check with `warning_incidents`: degraded in two results in a row while up opens its
/// warning; a result that is not degraded (or a check gone down) resolves it.
fn warning(
    check: &str,
    state: &CheckState,
    was_degraded: bool,
    at_ms: i64,
    priority: &str,
    incidents: &mut Incidents<'_>,
    plan: &mut Plan,
) {
    if state.status == Status::Up && state.degraded {
        if was_degraded {
            let full = state.last_error.as_deref().unwrap_or("degraded");
            let reason = crate::core::incident::first_line(full);
            let action = Action::Open {
                kind: IncidentKind::CheckWarning,
                subject: check.to_string(),
                title: format!("{check} is degraded: {reason}"),
                severity: "warning".into(),
                priority: priority.to_string(),
                opened_ms: at_ms,
                event: TimelineEvent {
                    at_ms,
                    kind: "opened".into(),
                    message: format!("check {check} degraded in two results in a row: {full}"),
                },
            };
            incidents.open(action, plan);
        }
    } else if !state.degraded && state.last_sample_ms == Some(at_ms) {
        let message = if state.status == Status::Down {
            format!("check {check} went down (its down incident takes over)")
        } else {
            format!("check {check} no longer degraded")
        };
        let event = TimelineEvent { at_ms, kind: "resolved".into(), message };
        incidents.resolve(&IncidentKind::CheckWarning.dedup_key(check), &event, plan);
    }
}

fn event_at(action: &Action) -> i64 {
    match action {
        Action::Open { event, .. } | Action::Resolve { event } => event.at_ms,
    }
}

/// (down, up) votes of the agents probing `check`, counting only those heard from after
/// `fresh_after_ms`: a silent agent's vote is unknown, not down.
fn votes(states: &HashMap<String, CheckState>, check: &str, fresh_after_ms: i64) -> (u32, u32) {
    let prefix = format!("{check}@");
    let fresh = |s: &CheckState| s.last_sample_ms.is_some_and(|t| t > fresh_after_ms);
    let voters = states.iter().filter(|(k, s)| k.starts_with(&prefix) && fresh(s));
    let (mut down, mut up) = (0, 0);
    for (_, s) in voters {
        match s.status {
            Status::Down => down += 1,
            Status::Up => up += 1,
            Status::Unknown => {}
        }
    }
    (down, up)
}

/// One check-minute of a batch's probe results.
#[derive(Clone, Debug)]
pub struct MinuteRollup<'b> {
    pub check: &'b str,
    pub minute_ms: i64,
    pub events: i64,
    pub failed: i64,
    pub degraded: i64,
    pub latency: hdrhistogram::Histogram<u64>,
}

/// The batch's probe results per check and minute, to be added to the stored ones.
pub fn minute_rollups(batch: &Batch) -> Vec<MinuteRollup<'_>> {
    let mut out: BTreeMap<(&str, i64), MinuteRollup<'_>> = BTreeMap::new();
    for s in &batch.samples {
        let minute_ms = crate::core::slo::floor_minute(s.timestamp_ms);
        let r = out.entry((s.check.as_str(), minute_ms)).or_insert_with(|| MinuteRollup {
            check: s.check.as_str(),
            minute_ms,
            events: 0,
            failed: 0,
            degraded: 0,
            latency: crate::core::latency::new_histogram(),
        });
        r.events += 1;
        r.failed += i64::from(!s.success);
        r.degraded += i64::from(s.degraded);
        if let Some(l) = s.latency_seconds {
            crate::core::latency::record(&mut r.latency, l);
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    //! The batch step without a database: loaded values in, the plan out.
    use super::*;
    use std::sync::Arc;
    use vakt_config::wire::{Sample, PROTOCOL_VERSION};
    use vakt_config::CollectorConfig;

    const MIN: i64 = 60_000;
    const T: i64 = 1_800_000_000_000;

    fn batch(agent: &str, results: &[(i64, bool)]) -> Batch {
        Batch {
            version: PROTOCOL_VERSION,
            agent: agent.into(),
            agent_version: None,
            instance: None,
            sequence: 1,
            samples: results
                .iter()
                .map(|&(ts, ok)| Sample {
                    check: "web".into(),
                    timestamp_ms: ts,
                    success: ok,
                    degraded: false,
                    latency_seconds: Some(0.01),
                    values: Default::default(),
                    error: (!ok).then(|| "status 500".into()),
                    perfdata: Vec::new(),
                })
                .collect(),
        }
    }

    /// Every incident goes to "ops" after a 30 s group wait.
    fn router() -> Router {
        let src = format!(
            "group_wait = \"30s\"\n[receivers.ops]\nkind = \"webhook\"\nurl = {{ value = \"http://x\" }}\n\
             [agents.a]\ntoken_hash = \"sha256:{h}\"\n\
             [checks.web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:80\"\nagents = [\"a\"]\n\
             [[routes]]\nreceivers = [\"ops\"]\n",
            h = "0".repeat(64)
        );
        Router::new(Arc::new(CollectorConfig::parse(&src, std::path::Path::new("t.toml")).unwrap()))
    }

    fn up_since(at_ms: i64) -> CheckState {
        CheckState {
            status: Status::Up,
            since_ms: at_ms,
            consecutive_successes: 5,
            last_sample_ms: Some(at_ms),
            ..CheckState::default()
        }
    }

    fn opened(plan: &Plan) -> Vec<(IncidentKind, Vec<(String, i64)>)> {
        plan.writes
            .iter()
            .filter_map(|w| match w {
                Write::OpenIncident { action: Action::Open { kind, .. }, announce } => Some((*kind, announce.clone())),
                _ => None,
            })
            .collect()
    }

    fn saved<'p>(plan: &'p Plan, key: &str) -> (&'p CheckState, Option<IncidentRef>) {
        plan.writes
            .iter()
            .find_map(|w| match w {
                Write::SaveState { key: k, state, open_incident } if k == key => Some((state, *open_incident)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{key} not saved: {plan:?}"))
    }

    /// `unknown_counts_as = "unknown"`: a plugin's UNKNOWN is no data. An up check becomes
    /// unknown at the first one (an unknown period starts there, no incident); a down check
    /// keeps its incident open through them, and the first real success resolves it. Without
    /// the setting, UNKNOWN is a failure like any other.
    #[test]
    fn a_plugins_unknown_is_no_data_when_so_configured() {
        let unknown = |results: &[(i64, bool, bool)]| {
            let mut b = batch("a", &results.iter().map(|&(t, ok, _)| (t, ok)).collect::<Vec<_>>());
            for (s, &(_, _, u)) in b.samples.iter_mut().zip(results) {
                if u {
                    s.values.insert(vakt_config::wire::PLUGIN_UNKNOWN_VALUE.into(), 1.0);
                    s.error = Some("UNKNOWN: cannot read /proc/mdstat".into());
                }
            }
            b
        };
        let mut policies = Policies::default();
        policies.unknown_is_no_data.insert("web".into());
        let loaded = || Loaded { states: HashMap::from([("web".to_string(), up_since(T))]), ..Loaded::default() };
        let three = [(T + MIN, false, true), (T + 2 * MIN, false, true), (T + 3 * MIN, false, true)];
        let plan = step(&unknown(&three), T + 3 * MIN, false, &policies, &router(), loaded());
        assert!(opened(&plan).is_empty(), "no data is no outage");
        assert!(plan.writes.contains(&Write::StartPeriod {
            check: "web".into(),
            status: Status::Unknown,
            at_ms: T + MIN
        }));
        let (state, _) = saved(&plan, "web");
        assert_eq!((state.status, state.since_ms), (Status::Unknown, T + MIN));
        assert_eq!(state.last_error.as_deref(), Some("UNKNOWN: cannot read /proc/mdstat"));

        // The default: the same results are failures, and the check goes down.
        let plan = step(&unknown(&three), T + 3 * MIN, false, &Policies::default(), &router(), loaded());
        assert_eq!(opened(&plan).len(), 1);

        // Down with its incident open: UNKNOWN keeps it open; a real success resolves it.
        let down = CheckState {
            status: Status::Down,
            since_ms: T,
            consecutive_failures: 3,
            last_sample_ms: Some(T),
            open_incident: Some(7),
            ..CheckState::default()
        };
        let incident = KnownIncident {
            id: 7,
            kind: IncidentKind::CheckDown,
            subject: "web".into(),
            opened_ms: T,
            resolved_ms: None,
            reopened_ms: None,
            has_parent: false,
            acknowledged: false,
            announced_to: vec!["ops".into()],
        };
        let loaded = Loaded {
            states: HashMap::from([("web".to_string(), down)]),
            incidents: vec![incident],
            ..Loaded::default()
        };
        let plan = step(
            &unknown(&[(T + MIN, false, true), (T + 2 * MIN, true, false)]),
            T + 2 * MIN,
            false,
            &policies,
            &router(),
            loaded,
        );
        assert_eq!(plan.resolved, [IncidentRef::Stored(7)], "resolved by the success, not by the UNKNOWN");
        let (state, _) = saved(&plan, "web");
        assert_eq!(state.status, Status::Up);
    }

    /// `warning_incidents`: one degraded result is a blip; the second in a row opens a warning
    /// (severity "warning"), routed only to the route that asks for warnings ("team", not the
    /// catch-all "ops"); a result that is no longer degraded resolves it.
    #[test]
    fn two_degraded_results_in_a_row_open_a_warning_routed_only_where_asked() {
        let src = format!(
            "group_wait = \"0s\"\n[receivers.ops]\nkind = \"webhook\"\nurl = {{ value = \"http://x\" }}\n\
             [receivers.team]\nkind = \"webhook\"\nurl = {{ value = \"http://y\" }}\n\
             [agents.a]\ntoken_hash = \"sha256:{h}\"\n\
             [checks.web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:80\"\nagents = [\"a\"]\nwarning_incidents = true\n\
             [[routes]]\nseverities = [\"warning\"]\nreceivers = [\"team\"]\ncontinue = true\n\
             [[routes]]\nreceivers = [\"ops\"]\n",
            h = "0".repeat(64)
        );
        let router = Router::new(Arc::new(CollectorConfig::parse(&src, std::path::Path::new("t.toml")).unwrap()));
        let mut policies = Policies::default();
        policies.warning_incidents.insert("web".into(), "P4".into());
        let degraded = |results: &[(i64, bool)]| {
            let mut b = batch("a", results);
            for (s, (_, d)) in b.samples.iter_mut().zip(results) {
                s.degraded = *d;
                s.error = d.then(|| "WARNING: disk 91% full".into());
            }
            b
        };
        let loaded = || Loaded { states: HashMap::from([("web".to_string(), up_since(T))]), ..Loaded::default() };
        // One degraded result: nothing.
        let plan =
            step(&degraded(&[(T + MIN, true), (T + 2 * MIN, false)]), T + 2 * MIN, false, &policies, &router, loaded());
        assert!(opened(&plan).is_empty(), "a blip opens nothing");
        // Two in a row: a warning for "team" only.
        let plan =
            step(&degraded(&[(T + MIN, true), (T + 2 * MIN, true)]), T + 2 * MIN, false, &policies, &router, loaded());
        assert_eq!(opened(&plan), [(IncidentKind::CheckWarning, vec![("team".to_string(), T + 2 * MIN)])]);
        let title = plan.writes.iter().find_map(|w| match w {
            Write::OpenIncident { action: Action::Open { title, severity, priority, .. }, .. } => {
                Some((title.clone(), severity.clone(), priority.clone()))
            }
            _ => None,
        });
        assert_eq!(title, Some(("web is degraded: WARNING: disk 91% full".into(), "warning".into(), "P4".into())));
        let (state, _) = saved(&plan, "web");
        assert_eq!(state.status, Status::Up, "a warning is not an outage");

        // Degraded again, then fine: the open warning resolves.
        let open = KnownIncident {
            id: 9,
            kind: IncidentKind::CheckWarning,
            subject: "web".into(),
            opened_ms: T + 2 * MIN,
            resolved_ms: None,
            reopened_ms: None,
            has_parent: false,
            acknowledged: false,
            announced_to: vec!["team".into()],
        };
        let was = CheckState { degraded: true, last_error: Some("WARNING".into()), ..up_since(T + 2 * MIN) };
        let loaded =
            Loaded { states: HashMap::from([("web".to_string(), was)]), incidents: vec![open], ..Loaded::default() };
        let plan = step(&degraded(&[(T + 3 * MIN, false)]), T + 3 * MIN, false, &policies, &router, loaded);
        assert_eq!(plan.resolved, [IncidentRef::Stored(9)]);
        assert!(opened(&plan).is_empty());
    }

    /// Three failures (fail_after 3) take an up check down from the first failure: a period
    /// starts there, one incident opens, announced to "ops" 30 s after the third failure; the
    /// state remembers it. Two successes (recover_after 2) resolve it with its duration, the
    /// resolution going to the receivers it was announced to.
    #[test]
    fn failures_open_an_incident_and_recovery_resolves_it() {
        let policies = Policies::default();
        let b = batch("a", &[(T + MIN, false), (T + 2 * MIN, false), (T + 3 * MIN, false)]);
        let loaded = Loaded { states: HashMap::from([("web".to_string(), up_since(T))]), ..Loaded::default() };
        let plan = step(&b, T + 3 * MIN + 500, false, &policies, &router(), loaded);
        assert!(plan.writes.contains(&Write::StartPeriod {
            check: "web".into(),
            status: Status::Down,
            at_ms: T + MIN
        }));
        assert_eq!(opened(&plan), [(IncidentKind::CheckDown, vec![("ops".to_string(), T + 3 * MIN + 30_000)])]);
        assert_eq!(plan.opened, [IncidentRef::New(0)]);
        let (state, open) = saved(&plan, "web");
        assert_eq!(
            (state.status, open, state.last_received_ms),
            (Status::Down, Some(IncidentRef::New(0)), Some(T + 3 * MIN + 500))
        );

        let down = CheckState { open_incident: Some(7), ..state.clone() };
        let incident = KnownIncident {
            id: 7,
            kind: IncidentKind::CheckDown,
            subject: "web".into(),
            opened_ms: T + MIN,
            resolved_ms: None,
            reopened_ms: None,
            has_parent: false,
            acknowledged: false,
            announced_to: vec!["ops".into()],
        };
        let loaded = Loaded {
            states: HashMap::from([("web".to_string(), down)]),
            incidents: vec![incident],
            ..Loaded::default()
        };
        let b = batch("a", &[(T + 4 * MIN, true), (T + 5 * MIN, true)]);
        let plan = step(&b, T + 5 * MIN, false, &policies, &router(), loaded);
        let resolved = plan.writes.iter().find_map(|w| match w {
            Write::ResolveIncident { id, event, announce } => Some((*id, event.clone(), announce.clone())),
            _ => None,
        });
        let (id, event, announce) = resolved.unwrap_or_else(|| panic!("{plan:?}"));
        assert_eq!((id, event.at_ms), (IncidentRef::Stored(7), T + 5 * MIN));
        // Down from T + 1 min to T + 5 min: 4 minutes.
        assert_eq!(event.message, "check web recovered after 4 min");
        assert_eq!(announce, [("ops".to_string(), T + 5 * MIN + 30_000)]);
        assert_eq!(saved(&plan, "web").1, None);
    }

    /// Quorum 2: agent a's failure is the second fresh "down" vote (b voted down a minute ago)
    /// and takes the check down; with b's vote older than the staleness (5 min) it is one vote
    /// and the check stays up. Only a's vote and the check are saved, never b's.
    #[test]
    fn a_quorum_check_goes_down_when_enough_fresh_votes_agree() {
        let mut policies = Policies::default();
        policies.quorum.insert("web".into(), 2);
        policies.flap.insert("web".into(), crate::core::state::Policy { fail_after: 1, recover_after: 1 });
        let vote = |status: Status, at: i64| CheckState { status, last_sample_ms: Some(at), ..CheckState::default() };
        let loaded = |b_at: i64| Loaded {
            states: HashMap::from([
                ("web".to_string(), up_since(T)),
                ("web@a".to_string(), vote(Status::Up, T)),
                ("web@b".to_string(), vote(Status::Down, b_at)),
            ]),
            ..Loaded::default()
        };
        let b = batch("a", &[(T + 10 * MIN, false)]);
        let plan = step(&b, T + 10 * MIN, false, &policies, &router(), loaded(T + 9 * MIN));
        assert_eq!(saved(&plan, "web").0.status, Status::Down);
        assert_eq!(opened(&plan).len(), 1);
        let plan = step(&b, T + 10 * MIN, false, &policies, &router(), loaded(T + 4 * MIN));
        assert_eq!(saved(&plan, "web").0.status, Status::Up, "b's vote is stale: one vote of two");
        assert!(opened(&plan).is_empty());
        assert_eq!(saved(&plan, "web@a").0.status, Status::Down);
        assert!(!plan.writes.iter().any(|w| matches!(w, Write::SaveState { key, .. } if key == "web@b")));
    }

    /// A late sample from another agent (older than the check's last result) is stored but
    /// moves nothing: no period, no incident, the state unchanged but for its receipt time.
    #[test]
    fn a_late_sample_from_another_agent_moves_nothing() {
        let policies = Policies::default();
        let mut state = up_since(T + 10 * MIN);
        state.last_agent = Some("b".into());
        let loaded = Loaded { states: HashMap::from([("web".to_string(), state.clone())]), ..Loaded::default() };
        let b = batch("a", &[(T + MIN, false), (T + 2 * MIN, false), (T + 3 * MIN, false)]);
        let plan = step(&b, T + 11 * MIN, false, &policies, &router(), loaded);
        assert_eq!(plan.writes.len(), 1, "{plan:?}");
        assert_eq!(saved(&plan, "web").0, &CheckState { last_received_ms: Some(T + 11 * MIN), ..state });
    }

    /// Flap threshold 5 in 10 minutes: four state changes already in the window and an open
    /// check-down incident; the batch's recovery and failure are the fifth and sixth. The
    /// fifth makes the check flapping: one "flapping" incident opens and folds the open one
    /// (closed, linked under it); the sixth opens no check-down incident.
    #[test]
    fn a_flapping_check_is_one_incident_that_folds_the_others() {
        let mut policies = Policies::default();
        policies.flap.insert("web".into(), crate::core::state::Policy { fail_after: 1, recover_after: 1 });
        policies.flap_of.insert("web".into(), (5, 10 * MIN));
        let down = CheckState {
            status: Status::Down,
            since_ms: T + 4 * MIN,
            last_sample_ms: Some(T + 4 * MIN),
            open_incident: Some(3),
            ..CheckState::default()
        };
        let loaded = Loaded {
            states: HashMap::from([("web".to_string(), down)]),
            changes: HashMap::from([("web".to_string(), vec![T + MIN, T + 2 * MIN, T + 3 * MIN, T + 4 * MIN])]),
            incidents: vec![KnownIncident {
                id: 3,
                kind: IncidentKind::CheckDown,
                subject: "web".into(),
                opened_ms: T + 4 * MIN,
                resolved_ms: None,
                reopened_ms: None,
                has_parent: false,
                acknowledged: false,
                announced_to: vec!["ops".into()],
            }],
        };
        let b = batch("a", &[(T + 5 * MIN, true), (T + 6 * MIN, false)]);
        let plan = step(&b, T + 6 * MIN, false, &policies, &router(), loaded);
        let kinds: Vec<IncidentKind> = opened(&plan).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, [IncidentKind::Flapping]);
        assert!(plan.writes.contains(&Write::FoldIncident {
            id: IncidentRef::Stored(3),
            into: IncidentRef::New(0),
            resolved_ms: T + 5 * MIN,
            closed: true,
            at_ms: T + 5 * MIN,
        }));
        assert!(!plan.writes.iter().any(|w| matches!(w, Write::ResolveIncident { .. })), "folded, not resolved");
        assert_eq!(saved(&plan, "web").1, None, "the check's own incident is folded; no new one opens");
    }

    /// A replayed batch changes nothing but shows that its agent reports again.
    #[test]
    fn a_replay_only_resolves_its_agents_silence() {
        let silent = KnownIncident {
            id: 9,
            kind: IncidentKind::AgentSilent,
            subject: "a".into(),
            opened_ms: T,
            resolved_ms: None,
            reopened_ms: None,
            has_parent: false,
            acknowledged: false,
            announced_to: vec![],
        };
        let b = batch("a", &[(T + MIN, false)]);
        assert_eq!(needs(&b, true, &Policies::default()).states, Vec::<String>::new());
        let plan = step(
            &b,
            T + 2 * MIN,
            true,
            &Policies::default(),
            &router(),
            Loaded { incidents: vec![silent], ..Loaded::default() },
        );
        assert_eq!(plan.resolved, [IncidentRef::Stored(9)]);
        assert_eq!(plan.writes.len(), 1);
    }
}
