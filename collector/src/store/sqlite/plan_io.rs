//! Loading what the core asks for (a batch's needs, incidents by key or id) and writing the
//! plans it returns, in order, inside the caller's transaction. Nothing here decides.

use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::BTreeMap;

use super::super::StoreError;
use crate::core::batch::{Loaded, MinuteRollup, Needs};
use crate::core::incident::{Action, IncidentKind, TimelineEvent};
use crate::core::plan::{self, KnownIncident, Plan, Write};
use crate::core::state::{CheckState, Status};

pub(super) fn load_state(tx: &Transaction<'_>, check: &str) -> Result<Option<CheckState>, StoreError> {
    let state = tx
        .query_row(
            "SELECT status, since_ms, consecutive_failures, consecutive_successes, first_failure_ms,
                    last_sample_ms, last_error, open_incident, degraded, last_agent, last_received_ms
             FROM check_state WHERE check_id = ?1",
            [check],
            row_to_state,
        )
        .optional()?;
    Ok(state)
}

pub(super) fn row_to_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckState> {
    let status: String = r.get(0)?;
    Ok(CheckState {
        status: Status::parse(&status).unwrap_or(Status::Unknown),
        since_ms: r.get(1)?,
        consecutive_failures: r.get(2)?,
        consecutive_successes: r.get(3)?,
        first_failure_ms: r.get(4)?,
        last_sample_ms: r.get(5)?,
        last_error: r.get(6)?,
        open_incident: r.get(7)?,
        degraded: r.get(8)?,
        last_agent: r.get(9)?,
        last_received_ms: r.get(10)?,
    })
}

pub(super) fn save_state(tx: &Transaction<'_>, check: &str, s: &CheckState) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO check_state (check_id, status, since_ms, consecutive_failures, consecutive_successes,
                                  first_failure_ms, last_sample_ms, last_error, open_incident, degraded, last_agent,
                                  last_received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (check_id) DO UPDATE SET status = excluded.status, since_ms = excluded.since_ms,
            consecutive_failures = excluded.consecutive_failures,
            consecutive_successes = excluded.consecutive_successes,
            first_failure_ms = excluded.first_failure_ms, last_sample_ms = excluded.last_sample_ms,
            last_error = excluded.last_error, open_incident = excluded.open_incident,
            degraded = excluded.degraded, last_agent = excluded.last_agent,
            last_received_ms = excluded.last_received_ms",
    )?
    .execute(params![
        check,
        s.status.as_str(),
        s.since_ms,
        s.consecutive_failures,
        s.consecutive_successes,
        s.first_failure_ms,
        s.last_sample_ms,
        s.last_error,
        s.open_incident,
        s.degraded,
        s.last_agent,
        s.last_received_ms
    ])?;
    Ok(())
}

/// Closes the check's open period at `at_ms` and opens one with `status` (up or down).
pub(super) fn start_period(
    tx: &Transaction<'_>,
    check: &str,
    status: Option<&str>,
    at_ms: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE check_periods SET end_ms = ?2 WHERE check_id = ?1 AND end_ms IS NULL")?
        .execute(params![check, at_ms])?;
    if let Some(status) = status {
        tx.prepare_cached("INSERT INTO check_periods (check_id, status, start_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![check, status, at_ms])?;
    }
    Ok(())
}

/// Ends the check's open period where its last result stopped vouching (`unknown_from_ms`)
/// and resumes `status` at `at_ms`: the time between is unknown. A resumption is not a change
/// of state (flapping does not count it).
pub(super) fn resume_after_silence(
    tx: &Transaction<'_>,
    check: &str,
    status: &str,
    unknown_from_ms: i64,
    at_ms: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE check_periods SET end_ms = ?2 WHERE check_id = ?1 AND end_ms IS NULL")?
        .execute(params![check, unknown_from_ms])?;
    tx.prepare_cached("INSERT INTO check_periods (check_id, status, start_ms, resumed) VALUES (?1, ?2, ?3, 1)")?
        .execute(params![check, status, at_ms])?;
    Ok(())
}

/// Adds a batch's per-minute rollups to the stored ones.
pub(super) fn merge_rollups(tx: &Transaction<'_>, rollups: Vec<MinuteRollup<'_>>) -> Result<(), StoreError> {
    let mut read = tx.prepare_cached(
        "SELECT events, failed, degraded, latency FROM rollups WHERE check_id = ?1 AND minute_ms = ?2",
    )?;
    let mut write = tx.prepare_cached(
        "INSERT INTO rollups (check_id, minute_ms, events, failed, degraded, latency) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (check_id, minute_ms) DO UPDATE SET events = excluded.events, failed = excluded.failed,
            degraded = excluded.degraded, latency = excluded.latency",
    )?;
    for mut r in rollups {
        let old: Option<(i64, i64, i64, Option<Vec<u8>>)> = read
            .query_row(params![r.check, r.minute_ms], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
            .optional()?;
        if let Some((events, failed, degraded, latency)) = old {
            r.events += events;
            r.failed += failed;
            r.degraded += degraded;
            if let Some(h) = latency.as_deref().and_then(crate::core::latency::decode) {
                let _ = r.latency.add(&h);
            }
        }
        let blob = (!r.latency.is_empty()).then(|| crate::core::latency::encode(&r.latency));
        write.execute(params![r.check, r.minute_ms, r.events, r.failed, r.degraded, blob])?;
    }
    Ok(())
}

/// The columns [`known`] reads.
pub(super) const KNOWN_COLUMNS: &str =
    "id, kind, subject, opened_ms, resolved_ms, reopened_ms, parent_id IS NOT NULL, acked_ms IS NOT NULL";

pub(super) fn known(r: &rusqlite::Row<'_>) -> rusqlite::Result<KnownIncident> {
    let kind: String = r.get(1)?;
    Ok(KnownIncident {
        id: r.get(0)?,
        kind: IncidentKind::parse(&kind).unwrap_or(IncidentKind::CheckDown),
        subject: r.get(2)?,
        opened_ms: r.get(3)?,
        resolved_ms: r.get(4)?,
        reopened_ms: r.get(5)?,
        has_parent: r.get(6)?,
        acknowledged: r.get(7)?,
        announced_to: Vec::new(),
    })
}

/// The receivers an incident's opening was announced to.
pub(super) fn announced_to(tx: &Transaction<'_>, id: i64) -> Result<Vec<String>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT DISTINCT receiver FROM notifications WHERE incident_id = ?1 AND event = 'firing'")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// One incident as the core sees it (with its announcement's receivers while unresolved).
pub(super) fn load_incident(tx: &Transaction<'_>, id: i64) -> Result<Option<KnownIncident>, StoreError> {
    let found = tx
        .prepare_cached(&format!("SELECT {KNOWN_COLUMNS} FROM incidents WHERE id = ?1"))?
        .query_row([id], known)
        .optional()?;
    let Some(mut incident) = found else { return Ok(None) };
    if incident.resolved_ms.is_none() {
        incident.announced_to = announced_to(tx, id)?;
    }
    Ok(Some(incident))
}

/// Loads what the batch step asked for (see [`batch::Needs`]).
pub(super) fn load(tx: &Transaction<'_>, needs: &Needs) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    for key in &needs.states {
        if let Some(state) = load_state(tx, key)? {
            loaded.states.insert(key.clone(), state);
        }
    }
    for prefix in &needs.voter_prefixes {
        let mut stmt = tx.prepare_cached(
            "SELECT status, since_ms, consecutive_failures, consecutive_successes, first_failure_ms,
                    last_sample_ms, last_error, open_incident, degraded, last_agent, last_received_ms, check_id
             FROM check_state WHERE substr(check_id, 1, length(?1)) = ?1",
        )?;
        let rows = stmt.query_map([prefix], |r| Ok((r.get::<_, String>(11)?, row_to_state(r)?)))?;
        for row in rows {
            let (key, state) = row?;
            loaded.states.insert(key, state);
        }
    }
    for (check, after) in &needs.changes_after {
        let starts: Vec<i64> = tx
            .prepare_cached("SELECT start_ms FROM check_periods WHERE check_id = ?1 AND start_ms > ?2 AND resumed = 0")?
            .query_map(params![check, after], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        loaded.changes.insert(check.clone(), starts);
    }
    let mut incidents: BTreeMap<i64, KnownIncident> = BTreeMap::new();
    for (check, since) in &needs.incidents_since {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {KNOWN_COLUMNS} FROM incidents WHERE kind = 'check_down' AND subject = ?1 AND parent_id IS NULL
                 AND (status != 'resolved' OR resolved_ms >= ?2)"
        ))?;
        for i in stmt.query_map(params![check, since], known)? {
            let i = i?;
            incidents.insert(i.id, i);
        }
    }
    for key in &needs.open_keys {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {KNOWN_COLUMNS} FROM incidents WHERE dedup_key = ?1 AND status != 'resolved'"
        ))?;
        for i in stmt.query_map([key], known)? {
            let i = i?;
            incidents.insert(i.id, i);
        }
    }
    for i in incidents.values_mut().filter(|i| i.resolved_ms.is_none()) {
        i.announced_to = announced_to(tx, i.id)?;
    }
    loaded.incidents = incidents.into_values().collect();
    Ok(loaded)
}

/// Open incidents under `keys`, for [`plan::open_all`] and [`plan::resolve_all`].
pub(super) fn load_open(tx: &Transaction<'_>, keys: Vec<String>) -> Result<Vec<KnownIncident>, StoreError> {
    Ok(load(tx, &Needs { open_keys: keys, ..Needs::default() })?.incidents)
}

/// Writes a plan of the batch step, in order. Returns the ids of the incidents it opened, in
/// the order of their [`plan::IncidentRef::New`] numbers.
pub(super) fn apply(tx: &Transaction<'_>, plan: &Plan) -> Result<Vec<i64>, StoreError> {
    let mut new_ids: Vec<i64> = Vec::new();
    let notify = |id: i64, event: &str, announce: &[(String, i64)], at_ms: i64| -> Result<(), StoreError> {
        for (receiver, next_attempt_ms) in announce {
            tx.prepare_cached(
                "INSERT INTO notifications (incident_id, receiver, event, status, next_attempt_ms, created_ms)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
            )?
            .execute(params![id, receiver, event, next_attempt_ms, at_ms])?;
        }
        Ok(())
    };
    for w in &plan.writes {
        match w {
            Write::StartPeriod { check, status, at_ms } => start_period(tx, check, Some(status.as_str()), *at_ms)?,
            Write::ResumePeriod { check, status, unknown_from_ms, at_ms } => {
                resume_after_silence(tx, check, status.as_str(), *unknown_from_ms, *at_ms)?
            }
            Write::OpenIncident { action, announce } => {
                let Action::Open { kind, subject, title, severity, priority, opened_ms, event } = action else {
                    continue;
                };
                // The unique index of open incidents guards the plan: one open per key.
                tx.prepare_cached(
                    "INSERT INTO incidents (dedup_key, kind, subject, title, severity, status, opened_ms, priority)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7)",
                )?
                .execute(params![
                    kind.dedup_key(subject),
                    kind.as_str(),
                    subject,
                    title,
                    severity,
                    opened_ms,
                    priority
                ])?;
                let id = tx.last_insert_rowid();
                add_event(tx, id, event)?;
                notify(id, "firing", announce, event.at_ms)?;
                new_ids.push(id);
            }
            Write::ResolveIncident { id, event, announce } => {
                let id = id.id(&new_ids);
                tx.prepare_cached("UPDATE incidents SET status = 'resolved', resolved_ms = ?2 WHERE id = ?1")?
                    .execute(params![id, event.at_ms])?;
                add_event(tx, id, event)?;
                notify(id, "resolved", announce, event.at_ms)?;
            }
            Write::ReopenIncident { id, event } => {
                let id = id.id(&new_ids);
                tx.prepare_cached(
                    "UPDATE incidents SET status = 'open', resolved_ms = NULL, reopened_ms = ?2 WHERE id = ?1",
                )?
                .execute(params![id, event.at_ms])?;
                add_event(tx, id, event)?;
            }
            Write::FoldIncident { id, into, resolved_ms, closed, at_ms } => {
                let (id, into) = (id.id(&new_ids), into.id(&new_ids));
                tx.prepare_cached(
                    "UPDATE incidents SET parent_id = ?2, status = 'resolved', resolved_ms = ?3 WHERE id = ?1",
                )?
                .execute(params![id, into, resolved_ms])?;
                add_event(tx, id, &plan::folded_event(*closed, into, *at_ms))?;
            }
            Write::FoldNote { into, folded, check, at_ms } => {
                let ids: Vec<i64> = folded.iter().map(|r| r.id(&new_ids)).collect();
                add_event(tx, into.id(&new_ids), &plan::folds_event(&ids, check, *at_ms))?;
            }
            Write::AcknowledgeIncident { id, by, event, announce } => {
                let id = id.id(&new_ids);
                tx.prepare_cached(
                    "UPDATE incidents SET status = 'acknowledged', acked_ms = ?2, acked_by = ?3 WHERE id = ?1 AND acked_ms IS NULL",
                )?
                .execute(params![id, event.at_ms, by])?;
                add_event(tx, id, event)?;
                notify(id, "acknowledged", announce, event.at_ms)?;
            }
            Write::AddEvent { id, event } => add_event(tx, id.id(&new_ids), event)?,
            Write::AddNote { id, event, announce } => {
                let id = id.id(&new_ids);
                add_event(tx, id, event)?;
                notify(id, "note", announce, event.at_ms)?;
            }
            Write::SaveState { key, state, open_incident } => {
                let state = CheckState { open_incident: open_incident.map(|r| r.id(&new_ids)), ..state.clone() };
                save_state(tx, key, &state)?;
            }
        }
    }
    Ok(new_ids)
}

pub(super) fn add_event(tx: &Transaction<'_>, incident: i64, e: &TimelineEvent) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO incident_events (incident_id, at_ms, kind, message) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![incident, e.at_ms, e.kind, e.message])?;
    Ok(())
}
