//! The SQLite store: one file in the data directory, WAL mode, `synchronous = FULL` so an
//! acknowledged batch survives a crash, schema migrations by `PRAGMA user_version`.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use vakt_config::wire::{Batch, IngestAck};

use super::{
    AgentSummary, IncidentFilter, IngestOutcome, NotificationOutcome, NotificationRow, PendingNotification,
    SampleFilter, StaleCheck, Store, StoreError, StoredSample,
};
use crate::core::batch::{self, Loaded, MinuteRollup, Needs};
use crate::core::incident::{Action, Incident, IncidentKind, IncidentStatus, ManualError, ManualOp, TimelineEvent};
use crate::core::plan::{self, IncidentRef, KnownIncident, Plan, Write};
use crate::core::policies::Policies;
use crate::core::routing::Router;
use crate::core::slo::{MinuteEvents, Period, PeriodStatus};
use crate::core::state::{CheckState, Status};

use super::migrations::MIGRATIONS;

/// A batch's content, for telling a replay from a different batch under a reused sequence
/// number: CRC-32 of each sample's fields in order, stable across releases.
pub fn content_hash(samples: &[vakt_config::wire::Sample]) -> String {
    let mut h = crc32fast::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    for s in samples {
        field(s.check.as_bytes());
        field(&s.timestamp_ms.to_le_bytes());
        field(&[u8::from(s.success), u8::from(s.degraded)]);
        field(&s.latency_seconds.map_or(u64::MAX, f64::to_bits).to_le_bytes());
        for (k, v) in &s.values {
            field(k.as_bytes());
            field(&v.to_bits().to_le_bytes());
        }
        field(s.error.as_deref().unwrap_or("\u{0}").as_bytes());
    }
    format!("{:08x}{:04x}", h.finalize(), samples.len() & 0xffff)
}

/// Says why the database cannot be opened, and what to do about it.
fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let dir = path.parent().unwrap_or(Path::new("."));
    let writable = tempfile_probe(dir);
    let code = e.sqlite_error_code();
    let reason = match (code, writable) {
        (_, Err(io)) if io.kind() == std::io::ErrorKind::PermissionDenied => format!(
            "cannot write in {} ({io}): the data_dir must be writable by the user the collector runs as",
            dir.display()
        ),
        (_, Err(io)) if io.raw_os_error() == Some(30) => {
            format!("{} is on a read-only file system: give data_dir a writable place", dir.display())
        }
        (Some(ErrorCode::ReadOnly), _) => {
            format!("the database file is read-only: make {} writable by the collector's user", path.display())
        }
        (Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked), _) => {
            "the database is locked by another process (a second vakt-collector, or a sqlite3 shell): stop it first"
                .into()
        }
        (Some(ErrorCode::NotADatabase), _) => {
            "the file is not an SQLite database: point data_dir elsewhere, or move the file away".into()
        }
        (Some(ErrorCode::DatabaseCorrupt), _) => {
            return StoreError::Damaged { path: path.display().to_string(), detail: e.to_string() }
        }
        _ => e.to_string(),
    };
    StoreError::Open { path: path.display().to_string(), reason }
}

/// Whether a file can be created in `dir`.
fn tempfile_probe(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".vakt-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    router: std::sync::RwLock<Router>,
}

impl SqliteStore {
    /// Opens (creating if needed) `vakt.db` in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
        let path = data_dir.join("vakt.db");
        let open_err = |source| open_error(&path, source);
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
        migrate(&mut conn, &path)?;
        // A file damaged mid-way (a bad disk, a copy torn in half) is found now, not by a
        // query some night.
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(open_err)?;
        if check != "ok" {
            return Err(StoreError::Damaged { path: path.display().to_string(), detail: check });
        }
        Ok(Self { conn: Mutex::new(conn), path, router: std::sync::RwLock::new(Router::default()) })
    }

    /// Sets the routing of notifications written to the outbox with incident events.
    pub fn set_router(&self, router: Router) {
        *self.router.write().unwrap_or_else(|p| p.into_inner()) = router;
    }

    fn router(&self) -> Router {
        self.router.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back an
        // unfinished transaction when it is dropped.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What [`backup`] wrote.
#[derive(Debug)]
pub struct Backup {
    pub bytes: u64,
    pub schema_version: i64,
}

/// Copies the database in `data_dir` to `to` while a collector may be running: one consistent
/// snapshot (`VACUUM INTO` in a read transaction, so writers carry on), compacted, and checked
/// (`PRAGMA quick_check`) before it is reported good. Restore by stopping the collector and
/// putting the copy in place as `vakt.db` (without the old `-wal` and `-shm` files).
pub fn backup(data_dir: &Path, to: &Path) -> Result<Backup, StoreError> {
    let path = data_dir.join("vakt.db");
    let open_err = |source| open_error(&path, source);
    if !path.exists() {
        return Err(StoreError::Open {
            path: path.display().to_string(),
            reason: "no database here to back up".into(),
        });
    }
    if to.exists() {
        return Err(StoreError::Open {
            path: to.display().to_string(),
            reason: "already exists; a backup never overwrites: choose a new file name".into(),
        });
    }
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(open_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(open_err)?;
    let target = to.to_str().ok_or_else(|| StoreError::Open {
        path: to.display().to_string(),
        reason: "the path is not valid UTF-8".into(),
    })?;
    conn.execute("VACUUM INTO ?1", [target])?;
    let copy = Connection::open_with_flags(to, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| open_error(to, source))?;
    let verdict: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(StoreError::Open {
            path: to.display().to_string(),
            reason: format!("the copy fails its check: {verdict}"),
        });
    }
    let schema_version = copy.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    Ok(Backup { bytes, schema_version })
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { path: path.display().to_string(), found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        tracing::info!(db = %path.display(), version = i + 1, "schema migrated");
    }
    Ok(())
}

fn load_state(tx: &Transaction<'_>, check: &str) -> Result<Option<CheckState>, StoreError> {
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

fn row_to_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckState> {
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

fn save_state(tx: &Transaction<'_>, check: &str, s: &CheckState) -> Result<(), StoreError> {
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
fn start_period(tx: &Transaction<'_>, check: &str, status: Option<&str>, at_ms: i64) -> Result<(), StoreError> {
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
fn resume_after_silence(
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
fn merge_rollups(tx: &Transaction<'_>, rollups: Vec<MinuteRollup<'_>>) -> Result<(), StoreError> {
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
const KNOWN_COLUMNS: &str =
    "id, kind, subject, opened_ms, resolved_ms, reopened_ms, parent_id IS NOT NULL, acked_ms IS NOT NULL";

fn known(r: &rusqlite::Row<'_>) -> rusqlite::Result<KnownIncident> {
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
fn announced_to(tx: &Transaction<'_>, id: i64) -> Result<Vec<String>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT DISTINCT receiver FROM notifications WHERE incident_id = ?1 AND event = 'firing'")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// One incident as the core sees it (with its announcement's receivers while unresolved).
fn load_incident(tx: &Transaction<'_>, id: i64) -> Result<Option<KnownIncident>, StoreError> {
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
fn load(tx: &Transaction<'_>, needs: &Needs) -> Result<Loaded, StoreError> {
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
fn load_open(tx: &Transaction<'_>, keys: Vec<String>) -> Result<Vec<KnownIncident>, StoreError> {
    Ok(load(tx, &Needs { open_keys: keys, ..Needs::default() })?.incidents)
}

/// Writes a plan of the batch step, in order. Returns the ids of the incidents it opened, in
/// the order of their [`IncidentRef::New`] numbers.
fn apply(tx: &Transaction<'_>, plan: &Plan) -> Result<Vec<i64>, StoreError> {
    let mut new_ids: Vec<i64> = Vec::new();
    let id_of = |r: IncidentRef, new_ids: &[i64]| match r {
        IncidentRef::Stored(id) => id,
        IncidentRef::New(n) => new_ids[n],
    };
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
                let id = id_of(*id, &new_ids);
                tx.prepare_cached("UPDATE incidents SET status = 'resolved', resolved_ms = ?2 WHERE id = ?1")?
                    .execute(params![id, event.at_ms])?;
                add_event(tx, id, event)?;
                notify(id, "resolved", announce, event.at_ms)?;
            }
            Write::ReopenIncident { id, event } => {
                let id = id_of(*id, &new_ids);
                tx.prepare_cached(
                    "UPDATE incidents SET status = 'open', resolved_ms = NULL, reopened_ms = ?2 WHERE id = ?1",
                )?
                .execute(params![id, event.at_ms])?;
                add_event(tx, id, event)?;
            }
            Write::FoldIncident { id, into, resolved_ms, closed, at_ms } => {
                let (id, into) = (id_of(*id, &new_ids), id_of(*into, &new_ids));
                tx.prepare_cached(
                    "UPDATE incidents SET parent_id = ?2, status = 'resolved', resolved_ms = ?3 WHERE id = ?1",
                )?
                .execute(params![id, into, resolved_ms])?;
                add_event(tx, id, &plan::folded_event(*closed, into, *at_ms))?;
            }
            Write::FoldNote { into, folded, check, at_ms } => {
                let ids: Vec<i64> = folded.iter().map(|r| id_of(*r, &new_ids)).collect();
                add_event(tx, id_of(*into, &new_ids), &plan::folds_event(&ids, check, *at_ms))?;
            }
            Write::AcknowledgeIncident { id, by, event } => {
                let id = id_of(*id, &new_ids);
                tx.prepare_cached(
                    "UPDATE incidents SET status = 'acknowledged', acked_ms = ?2, acked_by = ?3 WHERE id = ?1 AND acked_ms IS NULL",
                )?
                .execute(params![id, event.at_ms, by])?;
                add_event(tx, id, event)?;
            }
            Write::AddEvent { id, event } => add_event(tx, id_of(*id, &new_ids), event)?,
            Write::SaveState { key, state, open_incident } => {
                let state = CheckState { open_incident: open_incident.map(|r| id_of(r, &new_ids)), ..state.clone() };
                save_state(tx, key, &state)?;
            }
        }
    }
    Ok(new_ids)
}

fn resolved_id(r: IncidentRef, new_ids: &[i64]) -> i64 {
    match r {
        IncidentRef::Stored(id) => id,
        IncidentRef::New(n) => new_ids[n],
    }
}

fn add_event(tx: &Transaction<'_>, incident: i64, e: &TimelineEvent) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO incident_events (incident_id, at_ms, kind, message) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![incident, e.at_ms, e.kind, e.message])?;
    Ok(())
}

impl Store for SqliteStore {
    fn commit_batch(&self, batch: &Batch, received_ms: i64, policies: &Policies) -> Result<IngestOutcome, StoreError> {
        let router = self.router();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let instance = batch.instance.as_deref().unwrap_or("");
        let hash = content_hash(&batch.samples);
        let mut outcome = IngestOutcome::default();
        // A replay is the same agent, instance and sequence with the same content (or a row
        // from before contents were kept); another content under a used number is a new batch.
        let stored: Vec<String> = tx
            .prepare_cached("SELECT content_hash FROM batches WHERE agent = ?1 AND instance = ?2 AND sequence = ?3")?
            .query_map(params![batch.agent, instance, batch.sequence as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let duplicate = stored.iter().any(|h| h.is_empty() || *h == hash);
        outcome.sequence_reused = !duplicate && !stored.is_empty();
        if !duplicate {
            tx.prepare_cached(
                "INSERT INTO batches (agent, instance, sequence, content_hash, received_ms, samples)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                batch.agent,
                instance,
                batch.sequence as i64,
                hash,
                received_ms,
                batch.samples.len() as i64
            ])?;
        }
        let newest = if duplicate { None } else { batch.samples.iter().map(|s| s.timestamp_ms).max() };
        let previous: Option<Option<String>> = tx
            .prepare_cached("SELECT instance FROM agents WHERE name = ?1")?
            .query_row([&batch.agent], |r| r.get(0))
            .optional()?;
        // An agent heard of before under another instance (or before instances existed, with
        // a sequence this one does not continue) started afresh: its state directory is new.
        if let Some(before) = &previous {
            if !duplicate && before.as_deref().unwrap_or("") != instance {
                outcome.new_instance = Some(before.clone().unwrap_or_default());
            }
        }
        tx.prepare_cached(
            "INSERT INTO agents (name, last_seen_ms, version, instance, instance_since_ms, high_water_ms)
             VALUES (?1, ?2, ?3, ?4, ?2, ?5)
             ON CONFLICT (name) DO UPDATE SET last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
                 version = coalesce(excluded.version, version),
                 instance_since_ms = CASE WHEN ?6 THEN excluded.instance_since_ms ELSE instance_since_ms END,
                 instance = CASE WHEN ?6 THEN excluded.instance ELSE instance END,
                 high_water_ms = max(coalesce(high_water_ms, excluded.high_water_ms), coalesce(excluded.high_water_ms, high_water_ms))",
        )?
        .execute(params![
            batch.agent,
            received_ms,
            batch.agent_version,
            instance,
            newest,
            outcome.new_instance.is_some()
        ])?;
        let loaded = load(&tx, &batch::needs(batch, duplicate, policies))?;
        let plan = batch::step(batch, received_ms, duplicate, policies, &router, loaded);
        if duplicate {
            let new_ids = apply(&tx, &plan)?;
            tx.commit()?;
            outcome.incidents_resolved = plan.resolved.iter().map(|r| resolved_id(*r, &new_ids)).collect();
            outcome.ack = Some(IngestAck::new(batch.sequence, 0, true));
            return Ok(outcome);
        }
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO samples (check_id, agent, ts_ms, success, latency_s, values_json, error, degraded)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut values = Vec::with_capacity(128);
            for s in &batch.samples {
                values.clear();
                let values_json = if s.values.is_empty() {
                    None
                } else {
                    serde_json::to_writer(&mut values, &s.values).ok().and_then(|()| std::str::from_utf8(&values).ok())
                };
                insert.execute(params![
                    s.check,
                    batch.agent,
                    s.timestamp_ms,
                    s.success,
                    s.latency_seconds,
                    values_json,
                    s.error,
                    s.degraded
                ])?;
            }
        }
        merge_rollups(&tx, batch::minute_rollups(batch))?;
        let new_ids = apply(&tx, &plan)?;
        tx.commit()?;
        outcome.incidents_opened = new_ids.clone();
        outcome.incidents_resolved = plan.resolved.iter().map(|r| resolved_id(*r, &new_ids)).collect();
        outcome.states = plan
            .writes
            .into_iter()
            .filter_map(|w| match w {
                Write::SaveState { key, state, open_incident } => {
                    Some((key, CheckState { open_incident: open_incident.map(|r| resolved_id(r, &new_ids)), ..state }))
                }
                _ => None,
            })
            .collect();
        outcome.ack = Some(IngestAck::new(batch.sequence, batch.samples.len(), false));
        Ok(outcome)
    }

    fn periods(&self, checks: &[String], from_ms: i64, to_ms: i64) -> Result<Vec<Vec<Period>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT status, start_ms, end_ms FROM check_periods
             WHERE check_id = ?1 AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2) ORDER BY start_ms, id",
        )?;
        let mut out = Vec::with_capacity(checks.len());
        for check in checks {
            let rows = stmt.query_map(params![check, from_ms, to_ms], |r| {
                let status: String = r.get(0)?;
                Ok(Period {
                    status: match status.as_str() {
                        "up" => PeriodStatus::Up,
                        "down" => PeriodStatus::Down,
                        _ => PeriodStatus::Unknown,
                    },
                    start_ms: r.get(1)?,
                    end_ms: r.get(2)?,
                })
            })?;
            out.push(rows.collect::<Result<_, _>>()?);
        }
        Ok(out)
    }

    fn minute_events(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
        slower_than: Option<f64>,
    ) -> Result<Vec<MinuteEvents>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT minute_ms, events, failed, latency FROM rollups
             WHERE check_id = ?1 AND minute_ms >= ?2 AND minute_ms < ?3",
        )?;
        let mut by_minute: std::collections::BTreeMap<i64, MinuteEvents> = std::collections::BTreeMap::new();
        for check in checks {
            let rows = stmt.query_map(params![check, from_ms, to_ms], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<Vec<u8>>>(3)?))
            })?;
            for row in rows {
                let (minute, events, failed, latency) = row?;
                // A latency SLO: failures and answers slower than the bound are bad. (A failed
                // probe's latency is in the histogram too; counting both may overstate slightly
                // when a failure is also slow.)
                let slow = match (slower_than, latency.as_deref().and_then(crate::core::latency::decode)) {
                    (Some(t), Some(h)) => crate::core::latency::count_above(&h, t) as i64,
                    _ => 0,
                };
                let e = by_minute.entry(minute).or_insert(MinuteEvents { minute_ms: minute, events: 0, bad_events: 0 });
                e.events += events.max(0) as u64;
                e.bad_events += (failed + slow).clamp(0, events) as u64;
            }
        }
        Ok(by_minute.into_values().collect())
    }

    fn open_incidents(&self, actions: &[Action]) -> Result<Vec<i64>, StoreError> {
        let router = self.router();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let open = load_open(&tx, plan::keys_of(actions))?;
        let opened = apply(&tx, &plan::open_all(actions, open, &router))?;
        tx.commit()?;
        Ok(opened)
    }

    fn expire_checks(&self, checks: &[StaleCheck]) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut changed = Vec::new();
        for StaleCheck { check, unknown_from_ms: at_ms, last_received_ms } in checks {
            // Only the state the evaluator read: a batch committed since then is fresher.
            let n = tx.execute(
                "UPDATE check_state SET status = 'unknown', consecutive_failures = 0, consecutive_successes = 0,
                        degraded = 0, since_ms = ?2
                 WHERE check_id = ?1 AND status != 'unknown' AND last_received_ms IS ?3",
                params![check, at_ms, last_received_ms],
            )?;
            if n > 0 {
                start_period(&tx, check, None, *at_ms)?;
                changed.push(check.clone());
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    fn add_maintenance(&self, w: &crate::core::maintenance::Occurrence) -> Result<i64, StoreError> {
        let conn = self.conn();
        let created = w.created.as_ref();
        conn.execute(
            "INSERT INTO maintenance_windows (name, start_ms, end_ms, services, change_id, exclude_from_sla, created_by,
                                              created_ms, retroactive)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                w.name,
                w.start_ms,
                w.end_ms,
                serde_json::to_string(&w.services).unwrap_or_else(|_| "[]".into()),
                w.change_id,
                w.exclude_from_sla,
                created.map_or("", |c| c.by.as_str()),
                created.map(|c| c.at_ms),
                created.is_some_and(|c| c.retroactive)
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn maintenance(&self, from_ms: i64, to_ms: i64) -> Result<Vec<crate::core::maintenance::Occurrence>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT name, start_ms, end_ms, services, change_id, exclude_from_sla, created_by, created_ms, retroactive
             FROM maintenance_windows WHERE start_ms < ?2 AND end_ms > ?1 ORDER BY start_ms",
        )?;
        let rows = stmt.query_map(params![from_ms, to_ms], |r| {
            Ok(crate::core::maintenance::Occurrence {
                name: r.get(0)?,
                start_ms: r.get(1)?,
                end_ms: r.get(2)?,
                services: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                change_id: r.get(4)?,
                exclude_from_sla: r.get(5)?,
                source: "api",
                created: Some(crate::core::maintenance::Created {
                    by: r.get(6)?,
                    at_ms: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                    retroactive: r.get(8)?,
                }),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn size_bytes(&self) -> u64 {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", self.path.display())).ok())
            .map(|m| m.len())
            .sum()
    }

    fn prune(&self, raw_before_ms: i64, rollups_before_ms: i64) -> Result<(u64, u64), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let samples = tx.execute("DELETE FROM samples WHERE ts_ms < ?1", [raw_before_ms])?;
        let rollups = tx.execute("DELETE FROM rollups WHERE minute_ms < ?1", [rollups_before_ms])?;
        tx.execute("DELETE FROM check_periods WHERE end_ms IS NOT NULL AND end_ms < ?1", [rollups_before_ms])?;
        tx.execute("DELETE FROM batches WHERE received_ms < ?1", [rollups_before_ms])?;
        let old = "SELECT id FROM incidents WHERE status = 'resolved' AND resolved_ms < ?1";
        tx.execute(&format!("DELETE FROM notifications WHERE incident_id IN ({old})"), [rollups_before_ms])?;
        tx.execute(&format!("DELETE FROM incident_events WHERE incident_id IN ({old})"), [rollups_before_ms])?;
        tx.execute("UPDATE incidents SET parent_id = NULL WHERE parent_id IN (SELECT id FROM incidents WHERE status = 'resolved' AND resolved_ms < ?1)", [rollups_before_ms])?;
        tx.execute("DELETE FROM incidents WHERE status = 'resolved' AND resolved_ms < ?1", [rollups_before_ms])?;
        tx.commit()?;
        Ok((samples as u64, rollups as u64))
    }

    fn merged_latency(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<hdrhistogram::Histogram<u64>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT latency FROM rollups WHERE check_id = ?1 AND minute_ms >= ?2 AND minute_ms < ?3 AND latency IS NOT NULL",
        )?;
        let mut merged = crate::core::latency::new_histogram();
        for check in checks {
            let rows = stmt.query_map(params![check, from_ms, to_ms], |r| r.get::<_, Vec<u8>>(0))?;
            for blob in rows {
                if let Some(h) = crate::core::latency::decode(&blob?) {
                    let _ = merged.add(&h);
                }
            }
        }
        Ok((!merged.is_empty()).then_some(merged))
    }

    fn add_silence(&self, x: &crate::core::routing::Silence) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO silences (service, subject, kind, severity, starts_ms, ends_ms, author, comment)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![x.service, x.subject, x.kind, x.severity, x.starts_ms, x.ends_ms, x.author, x.comment],
        )?;
        Ok(conn.last_insert_rowid())
    }

    fn silences(&self, now_ms: i64) -> Result<Vec<crate::core::routing::Silence>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, service, subject, kind, severity, starts_ms, ends_ms, author, comment FROM silences
             WHERE ends_ms > ?1 ORDER BY starts_ms, id",
        )?;
        let rows = stmt.query_map([now_ms], |r| {
            Ok(crate::core::routing::Silence {
                id: r.get(0)?,
                service: r.get(1)?,
                subject: r.get(2)?,
                kind: r.get(3)?,
                severity: r.get(4)?,
                starts_ms: r.get(5)?,
                ends_ms: r.get(6)?,
                author: r.get(7)?,
                comment: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn expire_silence(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let conn = self.conn();
        let n = conn.execute("UPDATE silences SET ends_ms = min(ends_ms, ?2) WHERE id = ?1", params![id, now_ms])?;
        Ok(n > 0)
    }

    fn enqueue_notifications(&self, items: &[(i64, String, String)], at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (incident, receiver, event) in items {
            tx.prepare_cached(
                "INSERT INTO notifications (incident_id, receiver, event, status, next_attempt_ms, created_ms)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
            )?
            .execute(params![incident, receiver, event, at_ms])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn due_notifications(&self, now_ms: i64, limit: usize) -> Result<Vec<PendingNotification>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, incident_id, receiver, event, attempts FROM notifications
             WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, limit as i64], |r| {
            Ok(PendingNotification {
                id: r.get(0)?,
                incident_id: r.get(1)?,
                receiver: r.get(2)?,
                event: r.get(3)?,
                attempts: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn record_notification(&self, id: i64, outcome: &NotificationOutcome, at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        match outcome {
            NotificationOutcome::Delivered => tx.execute(
                "UPDATE notifications SET status = 'delivered', attempts = attempts + 1, done_ms = ?2, last_error = NULL WHERE id = ?1",
                params![id, at_ms],
            )?,
            NotificationOutcome::Suppressed(why) => tx.execute(
                "UPDATE notifications SET status = 'suppressed', done_ms = ?2, last_error = ?3 WHERE id = ?1",
                params![id, at_ms, why],
            )?,
            NotificationOutcome::Retry { next_attempt_ms, error } => tx.execute(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3 WHERE id = ?1",
                params![id, next_attempt_ms, error],
            )?,
            NotificationOutcome::Failed(error) => tx.execute(
                "UPDATE notifications SET status = 'failed', attempts = attempts + 1, done_ms = ?2, last_error = ?3 WHERE id = ?1",
                params![id, at_ms, error],
            )?,
        };
        // Delivered and held-back messages show in the incident's timeline.
        let row: Option<(i64, String, String)> = tx
            .query_row("SELECT incident_id, receiver, event FROM notifications WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some((incident, receiver, event)) = row {
            let entry = match outcome {
                NotificationOutcome::Delivered => Some(("notified", format!("{receiver} notified ({event})"))),
                NotificationOutcome::Suppressed(why) => {
                    Some(("suppressed", format!("{receiver} not notified ({event}): {why}")))
                }
                NotificationOutcome::Failed(e) => {
                    Some(("notification_failed", format!("{receiver} could not be notified ({event}): {e}")))
                }
                NotificationOutcome::Retry { .. } => None,
            };
            if let Some((kind, message)) = entry {
                add_event(&tx, incident, &TimelineEvent { at_ms, kind: kind.into(), message })?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn notifications(&self, incident: Option<i64>) -> Result<Vec<NotificationRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, incident_id, receiver, event, status, attempts, created_ms, done_ms, last_error FROM notifications
             WHERE ?1 IS NULL OR incident_id = ?1 ORDER BY id DESC LIMIT 1000",
        )?;
        let rows = stmt.query_map([incident], |r| {
            Ok(NotificationRow {
                id: r.get(0)?,
                incident_id: r.get(1)?,
                receiver: r.get(2)?,
                event: r.get(3)?,
                status: r.get(4)?,
                attempts: r.get(5)?,
                created_ms: r.get(6)?,
                done_ms: r.get(7)?,
                last_error: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn state_changes(&self, check: &str, since_ms: i64) -> Result<i64, StoreError> {
        let conn = self.conn();
        let n = conn
            .prepare_cached("SELECT count(*) FROM check_periods WHERE check_id = ?1 AND start_ms > ?2 AND resumed = 0")?
            .query_row(params![check, since_ms], |r| r.get(0))?;
        Ok(n)
    }

    fn link_incidents(&self, links: &[(i64, i64, String)], at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (child, root, why) in links {
            let changed = tx.execute(
                "UPDATE incidents SET parent_id = ?2 WHERE id = ?1 AND parent_id IS NULL AND status != 'resolved'",
                params![child, root],
            )?;
            if changed > 0 {
                add_event(&tx, *child, &TimelineEvent { at_ms, kind: "linked".into(), message: why.clone() })?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn resolve_incidents(&self, resolutions: &[(String, TimelineEvent)]) -> Result<Vec<i64>, StoreError> {
        let router = self.router();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let open = load_open(&tx, resolutions.iter().map(|(key, _)| key.clone()).collect())?;
        let plan = plan::resolve_all(resolutions, open, &router);
        let new_ids = apply(&tx, &plan)?;
        tx.commit()?;
        Ok(plan.resolved.iter().map(|r| resolved_id(*r, &new_ids)).collect())
    }

    fn manual(&self, id: i64, op: &ManualOp, at_ms: i64) -> Result<Result<Incident, ManualError>, StoreError> {
        let router = self.router();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let incident = load_incident(&tx, id)?;
        let plan = match plan::manual(id, incident.as_ref(), op, at_ms, &router) {
            Ok(plan) => plan,
            Err(e) => return Ok(Err(e)),
        };
        apply(&tx, &plan)?;
        tx.commit()?;
        drop(conn);
        Ok(self.incident(id)?.ok_or(ManualError::NotFound(id)))
    }

    fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM incidents
             WHERE (?1 IS NULL OR status = ?1 OR (?1 = 'open' AND status = 'acknowledged'))
               AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR subject = ?3)
               AND (?5 IS NULL OR (opened_ms < ?6 AND (resolved_ms IS NULL OR resolved_ms > ?5)))
             ORDER BY opened_ms DESC, id DESC LIMIT ?4",
        )?;
        let limit = filter.limit.map_or(-1, |l| l as i64);
        let ids: Vec<i64> = stmt
            .query_map(
                params![
                    filter.status.map(IncidentStatus::as_str),
                    filter.kind.map(IncidentKind::as_str),
                    filter.subject,
                    limit,
                    filter.overlapping.map(|o| o.0),
                    filter.overlapping.map(|o| o.1)
                ],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        ids.into_iter().filter_map(|id| read_incident(&conn, id).transpose()).collect()
    }

    fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        read_incident(&self.conn(), id)
    }

    fn check_states(&self) -> Result<Vec<(String, CheckState)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT status, since_ms, consecutive_failures, consecutive_successes, first_failure_ms,
                    last_sample_ms, last_error, open_incident, degraded, last_agent, last_received_ms, check_id
             FROM check_state ORDER BY check_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(11)?, row_to_state(r)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn agents(&self) -> Result<Vec<AgentSummary>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT a.name, a.last_seen_ms, count(b.sequence), coalesce(sum(b.samples), 0),
                 coalesce(max(CASE WHEN b.instance = coalesce(a.instance, '') THEN b.sequence END), 0),
                 a.version, a.instance, a.instance_since_ms
             FROM agents a LEFT JOIN batches b ON b.agent = a.name GROUP BY a.name ORDER BY a.name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AgentSummary {
                name: r.get(0)?,
                last_seen_ms: r.get(1)?,
                batches: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                samples: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                last_sequence: r.get::<_, i64>(4)?.try_into().unwrap_or(0),
                version: r.get(5)?,
                instance: r.get(6)?,
                instance_since_ms: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn probe_write(&self, at_ms: i64) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO health (id, probed_ms) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET probed_ms = excluded.probed_ms",
            [at_ms],
        )?;
        Ok(())
    }

    fn agent_high_water(&self, agent: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let hw = conn
            .prepare_cached("SELECT high_water_ms FROM agents WHERE name = ?1")?
            .query_row([agent], |r| r.get::<_, Option<i64>>(0))
            .optional()?;
        Ok(hw.flatten())
    }

    fn local_checks(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT check_id, agent FROM local_checks ORDER BY check_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn replace_local_checks(
        &self,
        agent: &str,
        checks: &[std::sync::Arc<vakt_config::wire::CheckSpec>],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM local_checks WHERE agent = ?1", [agent])?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO local_checks (check_id, agent, spec_json, announced_ms) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for spec in checks {
                let json = serde_json::to_string(spec.as_ref()).unwrap_or_default();
                insert.execute(params![spec.id, agent, json, at_ms])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn samples(&self, filter: &SampleFilter) -> Result<Vec<StoredSample>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT check_id, agent, ts_ms, success, latency_s, error, degraded, values_json FROM samples
             WHERE (?1 IS NULL OR check_id = ?1) AND (?2 IS NULL OR ts_ms >= ?2) AND (?3 IS NULL OR ts_ms < ?3)
             ORDER BY ts_ms, id LIMIT ?4",
        )?;
        let limit = filter.limit.map_or(-1, |l| l as i64);
        let rows = stmt.query_map(params![filter.check, filter.from_ms, filter.to_ms, limit], |r| {
            Ok(StoredSample {
                check: r.get(0)?,
                agent: r.get(1)?,
                timestamp_ms: r.get(2)?,
                success: r.get(3)?,
                latency_seconds: r.get(4)?,
                error: r.get(5)?,
                degraded: r.get(6)?,
                values: r.get::<_, Option<String>>(7)?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn sample_count(&self, check: Option<&str>) -> Result<u64, StoreError> {
        let conn = self.conn();
        let n: i64 =
            conn.query_row("SELECT count(*) FROM samples WHERE ?1 IS NULL OR check_id = ?1", [check], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn read_incident(conn: &Connection, id: i64) -> Result<Option<Incident>, StoreError> {
    let head = conn
        .query_row(
            "SELECT dedup_key, subject, title, severity, status, opened_ms, resolved_ms, kind, acked_ms, acked_by,
                    priority, parent_id
             FROM incidents WHERE id = ?1",
            [id],
            |r| {
                Ok(Incident {
                    id,
                    dedup_key: r.get(0)?,
                    subject: r.get(1)?,
                    kind: IncidentKind::parse(&r.get::<_, String>(7)?).unwrap_or(IncidentKind::CheckDown),
                    title: r.get(2)?,
                    severity: r.get(3)?,
                    status: IncidentStatus::parse(&r.get::<_, String>(4)?).unwrap_or(IncidentStatus::Open),
                    opened_ms: r.get(5)?,
                    resolved_ms: r.get(6)?,
                    acknowledged_ms: r.get(8)?,
                    acknowledged_by: r.get(9)?,
                    priority: r.get(10)?,
                    parent_id: r.get(11)?,
                    timeline: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut incident) = head else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare_cached("SELECT at_ms, kind, message FROM incident_events WHERE incident_id = ?1 ORDER BY at_ms, id")?;
    incident.timeline = stmt
        .query_map([id], |r| Ok(TimelineEvent { at_ms: r.get(0)?, kind: r.get(1)?, message: r.get(2)? }))?
        .collect::<Result<_, _>>()?;
    Ok(Some(incident))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_config::wire::{Sample, PROTOCOL_VERSION};

    fn batch(seq: u64, results: &[(i64, bool)]) -> Batch {
        Batch {
            version: PROTOCOL_VERSION,
            agent: "a".into(),
            agent_version: None,
            instance: None,
            sequence: seq,
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
                })
                .collect(),
        }
    }

    /// Silence is not uptime, figures by hand: results every interval up to T, then nothing for
    /// 30 minutes after the last result's interval, then results again. The report counts
    /// exactly 30 unknown minutes and no more up time than the results vouch for, at a 10 s, a
    /// 1 min and a 5 min interval, whether or not the evaluator declared the check stale in
    /// between (it does so only after 3 intervals, at least 30 s).
    #[test]
    fn a_silence_is_unknown_from_where_the_last_result_stopped_vouching() {
        const MIN: i64 = 60_000;
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % MIN;
        for interval in [10_000, MIN, 5 * MIN] {
            for evaluator_declared_it in [false, true] {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteStore::open(dir.path()).unwrap();
                let mut p = Policies::default();
                p.interval.insert("web".into(), interval);
                // Up from t0: results at t0, t0 + i, ..., up to t (an hour of them).
                let t = t0 + 60 * MIN;
                let before: Vec<(i64, bool)> = (0..=60 * MIN / interval).map(|k| (t0 + k * interval, true)).collect();
                store.commit_batch(&batch(1, &before), t, &p).unwrap();
                let silence_end = t + interval + 30 * MIN;
                if evaluator_declared_it {
                    let stale = crate::store::StaleCheck {
                        check: "web".into(),
                        unknown_from_ms: crate::core::state::vouched_until(t, Some(interval), 3 * interval),
                        last_received_ms: Some(t),
                    };
                    assert_eq!(store.expire_checks(&[stale]).unwrap(), ["web"]);
                }
                let after: Vec<(i64, bool)> = (0..=10).map(|k| (silence_end + k * interval, true)).collect();
                store.commit_batch(&batch(2, &after), silence_end, &p).unwrap();
                let to = silence_end + 10 * interval;
                let periods = store.periods(&["web".into()], t0, to).unwrap();
                let counts = crate::core::slo::build_series(t0, to, &periods, &[], &[]).range(t0, to);
                let (unknown, down) = (counts.unknown_ms, counts.down_ms);
                assert_eq!(
                    (unknown, down),
                    (30 * MIN as u64, 0),
                    "interval {interval} ms, declared stale: {evaluator_declared_it}"
                );
                // Unknown to up is a change the state machine made; a resumption after a gap it
                // never declared is not.
                let changes = if evaluator_declared_it { 2 } else { 1 };
                assert_eq!(store.state_changes("web", t0 - 1).unwrap(), changes, "declared: {evaluator_declared_it}");
            }
        }
    }

    #[test]
    fn a_replayed_batch_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let p = Policies::default();
        let first = store.commit_batch(&batch(1, &[(1, true), (2, true)]), 10, &p).unwrap();
        assert_eq!(first.ack.unwrap(), IngestAck::new(1, 2, false));
        let again = store.commit_batch(&batch(1, &[(1, true), (2, true)]), 11, &p).unwrap();
        assert_eq!(again.ack.unwrap(), IngestAck::new(1, 0, true));
        assert_eq!(store.sample_count(Some("web")).unwrap(), 2);
    }

    #[test]
    fn incidents_open_resolve_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let p = Policies::default(); // fail_after 3, recover_after 2
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store.commit_batch(&batch(1, &[(1_000, true), (2_000, false), (3_000, false)]), 0, &p).unwrap();
            assert!(store.incidents(&IncidentFilter::default()).unwrap().is_empty());
            let out = store.commit_batch(&batch(2, &[(4_000, false), (5_000, false)]), 0, &p).unwrap();
            assert_eq!(out.incidents_opened.len(), 1, "one incident however long it keeps failing");
        }
        // Reopen: state and incident are still there; recovery resolves the same incident.
        let store = SqliteStore::open(dir.path()).unwrap();
        let open =
            store.incidents(&IncidentFilter { status: Some(IncidentStatus::Open), ..Default::default() }).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].opened_ms, 2_000, "opened at the first failure");
        let out = store.commit_batch(&batch(3, &[(6_000, true), (7_000, true)]), 0, &p).unwrap();
        assert_eq!(out.incidents_resolved, vec![open[0].id]);
        let inc = store.incident(open[0].id).unwrap().unwrap();
        assert_eq!(inc.status, IncidentStatus::Resolved);
        assert_eq!(inc.resolved_ms, Some(7_000));
        let kinds: Vec<&str> = inc.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["opened", "resolved"]);
        assert!(inc.timeline[1].message.ends_with("after 5s"), "{}", inc.timeline[1].message);
    }

    #[test]
    fn a_flapping_check_is_one_incident_not_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut p = Policies { flap_threshold: 4, ..Policies::default() };
        p.flap.insert("web".into(), crate::core::state::Policy { fail_after: 1, recover_after: 1 });
        // Forty alternating results: forty state changes.
        for i in 0..40u64 {
            let ts = 1_000 * (i as i64 + 1);
            store.commit_batch(&batch(i + 1, &[(ts, i % 2 == 1)]), ts, &p).unwrap();
        }
        let all = store.incidents(&IncidentFilter::default()).unwrap();
        let roots: Vec<IncidentKind> = all.iter().filter(|i| i.parent_id.is_none()).map(|i| i.kind).collect();
        assert_eq!(roots, [IncidentKind::Flapping], "{all:#?}");
        assert_eq!(all.len(), 2, "the first down incident, folded under the flapping one: {all:#?}");
        assert_eq!(store.state_changes("web", 0).unwrap(), 40);
    }

    /// Flapping is one incident from the first flap. `flap_threshold = 5` in 10 minutes, six
    /// state changes a minute apart (fail_after = recover_after = 1):
    ///   1 down  → incident 1 opens: paged (firing)
    ///   2 up    → incident 1 resolves: told (resolved)
    ///   3 down  → incident 1 reopens, unannounced (down again 1 min after it recovered)
    ///   4 up    → incident 1 resolves again, unannounced
    ///   5 down  → 5 changes in 10 min: flapping. The flapping incident opens (the one "now
    ///             flapping" update) and incident 1 folds under it (linked, closed)
    ///   6 up    → nothing new while flapping
    /// Two incidents in all, one of them under the other; three notifications: firing and
    /// resolved for the first down, firing for "flapping". Today's behaviour would be three
    /// incidents and five notifications.
    #[test]
    fn six_flaps_in_ten_minutes_are_one_incident_and_one_flapping_update() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let config = vakt_config::CollectorConfig::parse(
            "[receivers.pager]\nkind = \"webhook\"\nurl = { value = \"http://127.0.0.1:9\" }\n\
             [[routes]]\nreceivers = [\"pager\"]\n",
            Path::new("collector.toml"),
        )
        .unwrap();
        store.set_router(Router::new(std::sync::Arc::new(config)));
        let mut p = Policies { flap_threshold: 5, flap_window_ms: 600_000, ..Policies::default() };
        p.flap.insert("web".into(), crate::core::state::Policy { fail_after: 1, recover_after: 1 });
        let t0 = 1_700_000_000_000;
        for (i, ok) in [false, true, false, true, false, true].into_iter().enumerate() {
            let ts = t0 + 60_000 * i as i64;
            store.commit_batch(&batch(i as u64 + 1, &[(ts, ok)]), ts, &p).unwrap();
        }
        let all = store.incidents(&IncidentFilter::default()).unwrap();
        assert_eq!(all.len(), 2, "{all:#?}");
        let flapping = all.iter().find(|i| i.kind == IncidentKind::Flapping).unwrap();
        let first = all.iter().find(|i| i.kind == IncidentKind::CheckDown).unwrap();
        assert_eq!((first.parent_id, first.status), (Some(flapping.id), IncidentStatus::Resolved));
        assert_eq!(flapping.status, IncidentStatus::Open);
        let mut sent: Vec<(i64, String)> =
            store.notifications(None).unwrap().into_iter().map(|n| (n.incident_id, n.event)).collect();
        sent.sort();
        assert_eq!(
            sent,
            vec![(first.id, "firing".into()), (first.id, "resolved".into()), (flapping.id, "firing".into())]
        );
        let kinds: Vec<&str> = first.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["opened", "resolved", "reopened", "resolved", "linked"],
            "one timeline: {:#?}",
            first.timeline
        );
    }

    #[test]
    fn quorum_checks_go_down_only_when_enough_agents_agree() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut p = Policies::default();
        p.flap.insert("web".into(), crate::core::state::Policy { fail_after: 1, recover_after: 1 });
        p.quorum.insert("web".into(), 2);
        p.stale.insert("web".into(), 60_000);
        let from = |agent: &str, seq: u64, ts: i64, ok: bool| {
            let mut b = batch(seq, &[(ts, ok)]);
            b.agent = agent.into();
            b
        };
        for (i, agent) in ["a", "b", "c"].iter().enumerate() {
            store.commit_batch(&from(agent, 1, 1_000 + i as i64, true), 0, &p).unwrap();
        }
        // One agent sees a failure: a local problem, no incident.
        let out = store.commit_batch(&from("a", 2, 2_000, false), 0, &p).unwrap();
        assert!(out.incidents_opened.is_empty());
        // A second agrees: the check is down.
        let out = store.commit_batch(&from("b", 2, 2_100, false), 0, &p).unwrap();
        assert_eq!(out.incidents_opened.len(), 1);
        let web = store.check_states().unwrap().into_iter().find(|(c, _)| c == "web").unwrap().1;
        assert_eq!(web.status, Status::Down);
        // b recovers: only one down vote left, the check is up again.
        let out = store.commit_batch(&from("b", 3, 3_000, true), 0, &p).unwrap();
        assert_eq!(out.incidents_resolved.len(), 1);
        // Much later, only a (still failing) and c report; b has gone silent and its old vote
        // no longer counts: one down vote is not enough.
        store.commit_batch(&from("c", 2, 200_000, true), 0, &p).unwrap();
        let out = store.commit_batch(&from("a", 3, 200_100, false), 0, &p).unwrap();
        assert!(out.incidents_opened.is_empty());
    }

    #[test]
    fn a_check_gone_stale_is_unknown_and_its_incident_resolves_on_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let p = Policies::default();
        store
            .commit_batch(&batch(1, &[(1_000, true), (2_000, false), (3_000, false), (4_000, false)]), 5_000, &p)
            .unwrap();
        let stale = |received: i64| StaleCheck {
            check: "web".into(),
            unknown_from_ms: 60_000,
            last_received_ms: Some(received),
        };
        // The evaluator read the state before a batch that arrived at 5,000: it must not
        // overwrite the fresher state.
        assert!(store.expire_checks(&[stale(4_500)]).unwrap().is_empty(), "expiry is conditional on what it read");
        assert_eq!(store.expire_checks(&[stale(5_000)]).unwrap(), ["web"]);
        let web = store.check_states().unwrap().remove(0).1;
        assert_eq!(web.status, Status::Unknown);
        let periods = store.periods(&["web".into()], 0, 100_000).unwrap().remove(0);
        assert_eq!(periods.last().unwrap().end_ms, Some(60_000), "the down period ends where the data stopped");
        // Back, and up: the incident opened before the silence resolves.
        let out = store.commit_batch(&batch(2, &[(90_000, true)]), 0, &p).unwrap();
        assert_eq!(out.incidents_resolved.len(), 1);
    }

    #[test]
    fn retention_prunes_raw_samples_before_rollups() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let p = Policies::default();
        store.commit_batch(&batch(1, &[(60_000, true), (3_600_000, true)]), 0, &p).unwrap();
        let (samples, rollups) = store.prune(120_000, 0).unwrap();
        assert_eq!((samples, rollups), (1, 0));
        assert_eq!(store.sample_count(None).unwrap(), 1);
        // The rollup of the pruned minute still counts for SLOs.
        let events = store.minute_events(&["web".into()], 0, 7_200_000, None).unwrap();
        assert_eq!(events.iter().map(|e| e.events).sum::<u64>(), 2);
        let (_, rollups) = store.prune(120_000, 120_000).unwrap();
        assert_eq!(rollups, 1);
    }

    #[test]
    fn a_newer_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("vakt.db")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("schema version 99 is newer"), "{err}");
    }
}
