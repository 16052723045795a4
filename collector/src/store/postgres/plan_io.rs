//! Loading what the core asks for and writing the plans it returns, in PostgreSQL, inside the
//! caller's transaction. The same loads and writes as SQLite's `plan_io`; nothing here decides.

use postgres::Transaction;
use std::collections::BTreeMap;

use super::super::StoreError;
use crate::core::batch::{Loaded, MinuteRollup, Needs};
use crate::core::incident::{Action, IncidentKind, TimelineEvent};
use crate::core::plan::{self, KnownIncident, Plan, Write};
use crate::core::state::{CheckState, Status};

/// The columns [`row_to_state`] reads, after the key.
pub(super) const STATE_COLUMNS: &str = "check_id, status, since_ms, consecutive_failures, consecutive_successes, \
     first_failure_ms, last_sample_ms, last_error, open_incident, degraded, last_agent, last_received_ms";

pub(super) fn row_to_state(r: &postgres::Row) -> Result<(String, CheckState), StoreError> {
    let status: String = r.try_get(1)?;
    let count =
        |i: usize| -> Result<u32, StoreError> { Ok(u32::try_from(r.try_get::<_, i64>(i)?).unwrap_or(u32::MAX)) };
    Ok((
        r.try_get(0)?,
        CheckState {
            status: Status::parse(&status).unwrap_or(Status::Unknown),
            since_ms: r.try_get(2)?,
            consecutive_failures: count(3)?,
            consecutive_successes: count(4)?,
            first_failure_ms: r.try_get(5)?,
            last_sample_ms: r.try_get(6)?,
            last_error: r.try_get(7)?,
            open_incident: r.try_get(8)?,
            degraded: r.try_get(9)?,
            last_agent: r.try_get(10)?,
            last_received_ms: r.try_get(11)?,
        },
    ))
}

/// Writes the batch's check states in one upsert (one row per check, the last state a plan
/// gave it; rows in key order, so two transactions lock them in the same order).
fn save_states(tx: &mut Transaction<'_>, states: &BTreeMap<&str, CheckState>) -> Result<(), StoreError> {
    if states.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = states.keys().copied().collect();
    let column = |f: &dyn Fn(&CheckState) -> i64| -> Vec<i64> { states.values().map(f).collect() };
    let optional = |f: &dyn Fn(&CheckState) -> Option<i64>| -> Vec<Option<i64>> { states.values().map(f).collect() };
    let status: Vec<&str> = states.values().map(|s| s.status.as_str()).collect();
    let since = column(&|s| s.since_ms);
    let failures = column(&|s| i64::from(s.consecutive_failures));
    let successes = column(&|s| i64::from(s.consecutive_successes));
    let first_failure = optional(&|s| s.first_failure_ms);
    let last_sample = optional(&|s| s.last_sample_ms);
    let last_error: Vec<Option<&str>> = states.values().map(|s| s.last_error.as_deref()).collect();
    let open_incident = optional(&|s| s.open_incident);
    let degraded: Vec<bool> = states.values().map(|s| s.degraded).collect();
    let last_agent: Vec<Option<&str>> = states.values().map(|s| s.last_agent.as_deref()).collect();
    let last_received = optional(&|s| s.last_received_ms);
    tx.execute(
        "INSERT INTO check_state (check_id, status, since_ms, consecutive_failures, consecutive_successes,
                                  first_failure_ms, last_sample_ms, last_error, open_incident, degraded, last_agent,
                                  last_received_ms)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                              $7::bigint[], $8::text[], $9::bigint[], $10::bool[], $11::text[], $12::bigint[])
         ON CONFLICT (check_id) DO UPDATE SET status = excluded.status, since_ms = excluded.since_ms,
            consecutive_failures = excluded.consecutive_failures,
            consecutive_successes = excluded.consecutive_successes,
            first_failure_ms = excluded.first_failure_ms, last_sample_ms = excluded.last_sample_ms,
            last_error = excluded.last_error, open_incident = excluded.open_incident,
            degraded = excluded.degraded, last_agent = excluded.last_agent,
            last_received_ms = excluded.last_received_ms",
        &[
            &keys,
            &status,
            &since,
            &failures,
            &successes,
            &first_failure,
            &last_sample,
            &last_error,
            &open_incident,
            &degraded,
            &last_agent,
            &last_received,
        ],
    )?;
    Ok(())
}

/// Closes the check's open period at `at_ms` and opens one with `status` (up or down).
pub(super) fn start_period(
    tx: &mut Transaction<'_>,
    check: &str,
    status: Option<&str>,
    at_ms: i64,
) -> Result<(), StoreError> {
    tx.execute("UPDATE check_periods SET end_ms = $2 WHERE check_id = $1 AND end_ms IS NULL", &[&check, &at_ms])?;
    if let Some(status) = status {
        tx.execute(
            "INSERT INTO check_periods (check_id, status, start_ms) VALUES ($1, $2, $3)",
            &[&check, &status, &at_ms],
        )?;
    }
    Ok(())
}

/// A period a plan starts: it closes the check's open period (at `closes_previous_at_ms`) and
/// opens one.
struct PeriodStart<'a> {
    check: &'a str,
    status: &'a str,
    start_ms: i64,
    resumed: bool,
    closes_previous_at_ms: i64,
}

/// Writes a plan's period starts in two statements, with the effect of doing them one by one in
/// order: the first start of a check closes its stored open period; each later one closes the
/// period the one before it opened (so that one is inserted closed already).
fn start_periods(tx: &mut Transaction<'_>, starts: &[PeriodStart<'_>]) -> Result<(), StoreError> {
    if starts.is_empty() {
        return Ok(());
    }
    let mut first: BTreeMap<&str, i64> = BTreeMap::new();
    let mut ends: Vec<Option<i64>> = vec![None; starts.len()];
    let mut last_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, p) in starts.iter().enumerate() {
        match last_of.insert(p.check, i) {
            Some(before) => ends[before] = Some(p.closes_previous_at_ms),
            None => {
                first.insert(p.check, p.closes_previous_at_ms);
            }
        }
    }
    let (checks, closes): (Vec<&str>, Vec<i64>) = first.into_iter().unzip();
    tx.execute(
        "UPDATE check_periods p SET end_ms = n.close FROM unnest($1::text[], $2::bigint[]) AS n(c, close)
         WHERE p.check_id = n.c AND p.end_ms IS NULL",
        &[&checks, &closes],
    )?;
    let checks: Vec<&str> = starts.iter().map(|p| p.check).collect();
    let status: Vec<&str> = starts.iter().map(|p| p.status).collect();
    let start: Vec<i64> = starts.iter().map(|p| p.start_ms).collect();
    let resumed: Vec<bool> = starts.iter().map(|p| p.resumed).collect();
    tx.execute(
        "INSERT INTO check_periods (check_id, status, start_ms, resumed, end_ms)
         SELECT c, s, st, r, e FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bool[], $5::bigint[])
             WITH ORDINALITY AS n(c, s, st, r, e, i) ORDER BY i",
        &[&checks, &status, &start, &resumed, &ends],
    )?;
    Ok(())
}

/// Adds a batch's per-minute rollups to the stored ones: the stored ones read (and locked) in
/// one statement, merged here (latency histograms), written back in one upsert.
pub(super) fn merge_rollups(tx: &mut Transaction<'_>, mut rollups: Vec<MinuteRollup<'_>>) -> Result<(), StoreError> {
    if rollups.is_empty() {
        return Ok(());
    }
    let checks: Vec<&str> = rollups.iter().map(|r| r.check).collect();
    let minutes: Vec<i64> = rollups.iter().map(|r| r.minute_ms).collect();
    let old = tx.query(
        "SELECT r.check_id, r.minute_ms, r.events, r.failed, r.degraded, r.latency
         FROM rollups r JOIN unnest($1::text[], $2::bigint[]) AS n(c, m) ON r.check_id = n.c AND r.minute_ms = n.m
         ORDER BY r.check_id, r.minute_ms
         FOR UPDATE OF r",
        &[&checks, &minutes],
    )?;
    let mut stored: std::collections::HashMap<(String, i64), &postgres::Row> = std::collections::HashMap::new();
    for row in &old {
        stored.insert((row.try_get(0)?, row.try_get(1)?), row);
    }
    for r in &mut rollups {
        if let Some(row) = stored.get(&(r.check.to_string(), r.minute_ms)) {
            r.events += row.try_get::<_, i64>(2)?;
            r.failed += row.try_get::<_, i64>(3)?;
            r.degraded += row.try_get::<_, i64>(4)?;
            if let Some(h) = row.try_get::<_, Option<Vec<u8>>>(5)?.as_deref().and_then(crate::core::latency::decode) {
                let _ = r.latency.add(&h);
            }
        }
    }
    let events: Vec<i64> = rollups.iter().map(|r| r.events).collect();
    let failed: Vec<i64> = rollups.iter().map(|r| r.failed).collect();
    let degraded: Vec<i64> = rollups.iter().map(|r| r.degraded).collect();
    let blobs: Vec<Option<Vec<u8>>> =
        rollups.iter().map(|r| (!r.latency.is_empty()).then(|| crate::core::latency::encode(&r.latency))).collect();
    tx.execute(
        "INSERT INTO rollups (check_id, minute_ms, events, failed, degraded, latency)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[])
         ON CONFLICT (check_id, minute_ms) DO UPDATE SET events = excluded.events, failed = excluded.failed,
            degraded = excluded.degraded, latency = excluded.latency",
        &[&checks, &minutes, &events, &failed, &degraded, &blobs],
    )?;
    Ok(())
}

/// The columns [`known`] reads.
const KNOWN_COLUMNS: &str =
    "id, kind, subject, opened_ms, resolved_ms, reopened_ms, parent_id IS NOT NULL, acked_ms IS NOT NULL";

fn known(r: &postgres::Row) -> Result<KnownIncident, StoreError> {
    let kind: String = r.try_get(1)?;
    Ok(KnownIncident {
        id: r.try_get(0)?,
        kind: IncidentKind::parse(&kind).unwrap_or(IncidentKind::CheckDown),
        subject: r.try_get(2)?,
        opened_ms: r.try_get(3)?,
        resolved_ms: r.try_get(4)?,
        reopened_ms: r.try_get(5)?,
        has_parent: r.try_get(6)?,
        acknowledged: r.try_get(7)?,
        announced_to: Vec::new(),
    })
}

fn announced_to(tx: &mut Transaction<'_>, id: i64) -> Result<Vec<String>, StoreError> {
    let rows = tx.query(
        "SELECT DISTINCT receiver FROM notifications WHERE incident_id = $1 AND event = 'firing' ORDER BY receiver",
        &[&id],
    )?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

/// One incident as the core sees it (with its announcement's receivers while unresolved),
/// locked for the rest of the transaction.
pub(super) fn load_incident(tx: &mut Transaction<'_>, id: i64) -> Result<Option<KnownIncident>, StoreError> {
    let found = tx.query_opt(&format!("SELECT {KNOWN_COLUMNS} FROM incidents WHERE id = $1 FOR UPDATE"), &[&id])?;
    let Some(row) = found else { return Ok(None) };
    let mut incident = known(&row)?;
    if incident.resolved_ms.is_none() {
        incident.announced_to = announced_to(tx, id)?;
    }
    Ok(Some(incident))
}

/// Loads what the batch step asked for (see [`Needs`]).
pub(super) fn load(tx: &mut Transaction<'_>, needs: &Needs) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    if !needs.states.is_empty() {
        let rows =
            tx.query(&format!("SELECT {STATE_COLUMNS} FROM check_state WHERE check_id = ANY($1)"), &[&needs.states])?;
        for row in &rows {
            let (key, state) = row_to_state(row)?;
            loaded.states.insert(key, state);
        }
    }
    if !needs.voter_prefixes.is_empty() {
        let rows = tx.query(
            &format!(
                "SELECT {STATE_COLUMNS} FROM check_state
                 WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) AS p WHERE left(check_id, length(p)) = p)"
            ),
            &[&needs.voter_prefixes],
        )?;
        for row in &rows {
            let (key, state) = row_to_state(row)?;
            loaded.states.insert(key, state);
        }
    }
    // One statement for all the batch's checks, not one per check.
    if !needs.changes_after.is_empty() {
        let (checks, after): (Vec<&str>, Vec<i64>) = needs.changes_after.iter().map(|(c, a)| (c.as_str(), *a)).unzip();
        for c in &checks {
            loaded.changes.insert(c.to_string(), Vec::new());
        }
        let rows = tx.query(
            "SELECT p.check_id, p.start_ms FROM check_periods p
             JOIN unnest($1::text[], $2::bigint[]) AS n(c, after) ON p.check_id = n.c AND p.start_ms > n.after
             WHERE NOT p.resumed ORDER BY p.check_id, p.start_ms",
            &[&checks, &after],
        )?;
        for r in &rows {
            let check: String = r.try_get(0)?;
            loaded.changes.entry(check).or_default().push(r.try_get(1)?);
        }
    }
    let mut incidents: BTreeMap<i64, KnownIncident> = BTreeMap::new();
    if !needs.incidents_since.is_empty() {
        let (checks, since): (Vec<&str>, Vec<i64>) =
            needs.incidents_since.iter().map(|(c, s)| (c.as_str(), *s)).unzip();
        let rows = tx.query(
            &format!(
                "SELECT {KNOWN_COLUMNS} FROM incidents JOIN unnest($1::text[], $2::bigint[]) AS n(c, since)
                     ON subject = n.c
                 WHERE kind = 'check_down' AND parent_id IS NULL AND (status != 'resolved' OR resolved_ms >= n.since)"
            ),
            &[&checks, &since],
        )?;
        for row in &rows {
            let i = known(row)?;
            incidents.insert(i.id, i);
        }
    }
    if !needs.open_keys.is_empty() {
        let rows = tx.query(
            &format!("SELECT {KNOWN_COLUMNS} FROM incidents WHERE dedup_key = ANY($1) AND status != 'resolved'"),
            &[&needs.open_keys],
        )?;
        for row in &rows {
            let i = known(row)?;
            incidents.insert(i.id, i);
        }
    }
    let unresolved: Vec<i64> = incidents.values().filter(|i| i.resolved_ms.is_none()).map(|i| i.id).collect();
    if !unresolved.is_empty() {
        let rows = tx.query(
            "SELECT DISTINCT incident_id, receiver FROM notifications
             WHERE incident_id = ANY($1) AND event = 'firing' ORDER BY incident_id, receiver",
            &[&unresolved],
        )?;
        for r in &rows {
            if let Some(i) = incidents.get_mut(&r.try_get::<_, i64>(0)?) {
                i.announced_to.push(r.try_get(1)?);
            }
        }
    }
    loaded.incidents = incidents.into_values().collect();
    Ok(loaded)
}

/// Open incidents under `keys`, for [`plan::open_all`] and [`plan::resolve_all`].
pub(super) fn load_open(tx: &mut Transaction<'_>, keys: Vec<String>) -> Result<Vec<KnownIncident>, StoreError> {
    Ok(load(tx, &Needs { open_keys: keys, ..Needs::default() })?.incidents)
}

pub(super) fn add_event(tx: &mut Transaction<'_>, incident: i64, e: &TimelineEvent) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO incident_events (incident_id, at_ms, kind, message) VALUES ($1, $2, $3, $4)",
        &[&incident, &e.at_ms, &e.kind, &e.message],
    )?;
    Ok(())
}

fn notify(
    tx: &mut Transaction<'_>,
    id: i64,
    event: &str,
    announce: &[(String, i64)],
    at_ms: i64,
) -> Result<(), StoreError> {
    for (receiver, next_attempt_ms) in announce {
        tx.execute(
            "INSERT INTO notifications (incident_id, receiver, event, status, next_attempt_ms, created_ms)
             VALUES ($1, $2, $3, 'pending', $4, $5)",
            &[&id, receiver, &event, next_attempt_ms, &at_ms],
        )?;
    }
    Ok(())
}

/// Writes a plan, in order. Returns the ids of the incidents it opened, in the order of their
/// [`plan::IncidentRef::New`] numbers.
pub(super) fn apply(tx: &mut Transaction<'_>, plan: &Plan) -> Result<Vec<i64>, StoreError> {
    let mut new_ids: Vec<i64> = Vec::new();
    // Nothing in a plan reads a check's state back, so the states go in last, in one statement.
    let mut states: BTreeMap<&str, CheckState> = BTreeMap::new();
    // Likewise the periods: nothing reads them back either.
    let mut periods: Vec<PeriodStart<'_>> = Vec::new();
    for w in &plan.writes {
        match w {
            Write::StartPeriod { check, status, at_ms } => periods.push(PeriodStart {
                check,
                status: status.as_str(),
                start_ms: *at_ms,
                resumed: false,
                closes_previous_at_ms: *at_ms,
            }),
            Write::ResumePeriod { check, status, unknown_from_ms, at_ms } => periods.push(PeriodStart {
                check,
                status: status.as_str(),
                start_ms: *at_ms,
                resumed: true,
                closes_previous_at_ms: *unknown_from_ms,
            }),
            Write::OpenIncident { action, announce } => {
                let Action::Open { kind, subject, title, severity, priority, opened_ms, event } = action else {
                    continue;
                };
                // The unique index of open incidents guards the plan: one open per key.
                let row = tx.query_one(
                    "INSERT INTO incidents (dedup_key, kind, subject, title, severity, status, opened_ms, priority)
                     VALUES ($1, $2, $3, $4, $5, 'open', $6, $7) RETURNING id",
                    &[&kind.dedup_key(subject), &kind.as_str(), subject, title, severity, opened_ms, priority],
                )?;
                let id: i64 = row.try_get(0)?;
                add_event(tx, id, event)?;
                notify(tx, id, "firing", announce, event.at_ms)?;
                new_ids.push(id);
            }
            Write::ResolveIncident { id, event, announce } => {
                let id = id.id(&new_ids);
                tx.execute(
                    "UPDATE incidents SET status = 'resolved', resolved_ms = $2 WHERE id = $1",
                    &[&id, &event.at_ms],
                )?;
                add_event(tx, id, event)?;
                notify(tx, id, "resolved", announce, event.at_ms)?;
            }
            Write::ReopenIncident { id, event } => {
                let id = id.id(&new_ids);
                tx.execute(
                    "UPDATE incidents SET status = 'open', resolved_ms = NULL, reopened_ms = $2 WHERE id = $1",
                    &[&id, &event.at_ms],
                )?;
                add_event(tx, id, event)?;
            }
            Write::FoldIncident { id, into, resolved_ms, closed, at_ms } => {
                let (id, into) = (id.id(&new_ids), into.id(&new_ids));
                tx.execute(
                    "UPDATE incidents SET parent_id = $2, status = 'resolved', resolved_ms = $3 WHERE id = $1",
                    &[&id, &into, resolved_ms],
                )?;
                add_event(tx, id, &plan::folded_event(*closed, into, *at_ms))?;
            }
            Write::FoldNote { into, folded, check, at_ms } => {
                let ids: Vec<i64> = folded.iter().map(|r| r.id(&new_ids)).collect();
                add_event(tx, into.id(&new_ids), &plan::folds_event(&ids, check, *at_ms))?;
            }
            Write::AcknowledgeIncident { id, by, event, announce } => {
                let id = id.id(&new_ids);
                tx.execute(
                    "UPDATE incidents SET status = 'acknowledged', acked_ms = $2, acked_by = $3 WHERE id = $1 AND acked_ms IS NULL",
                    &[&id, &event.at_ms, by],
                )?;
                add_event(tx, id, event)?;
                notify(tx, id, "acknowledged", announce, event.at_ms)?;
            }
            Write::AddEvent { id, event } => add_event(tx, id.id(&new_ids), event)?,
            Write::AddNote { id, event, announce } => {
                let id = id.id(&new_ids);
                add_event(tx, id, event)?;
                notify(tx, id, "note", announce, event.at_ms)?;
            }
            Write::SaveState { key, state, open_incident } => {
                let state = CheckState { open_incident: open_incident.map(|r| r.id(&new_ids)), ..state.clone() };
                states.insert(key.as_str(), state);
            }
        }
    }
    start_periods(tx, &periods)?;
    save_states(tx, &states)?;
    Ok(new_ids)
}
