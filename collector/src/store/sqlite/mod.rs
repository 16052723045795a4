//! The SQLite store: one file in the data directory, WAL mode, `synchronous = FULL` so an
//! acknowledged batch survives a crash, schema migrations by `PRAGMA user_version`.
//!
//! One cohesive thing, hence its length: the `Store` implementation, one method per question
//! the collector asks of its database. Loading what the core asks for and writing the plans it
//! returns is in `plan_io`; the store's tests are the conformance suite
//! (`collector/tests/store_conformance.rs`), run against SQLite and PostgreSQL alike.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use vakt_config::wire::{Batch, IngestAck};

use super::{
    AgentSummary, IncidentFilter, IngestOutcome, NotificationOutcome, NotificationRow, PendingNotification,
    SampleFilter, StaleCheck, Store, StoreError, StoredSample,
};
use super::{SubscriberChange, SubscriberMessage, SubscriberMessageRow};
use crate::core::batch;
use crate::core::incident::{Action, Incident, IncidentKind, IncidentStatus, ManualError, ManualOp, TimelineEvent};
use crate::core::plan;
use crate::core::policies::Policies;
use crate::core::routing::Router;
use crate::core::slo::{MinuteEvents, Period, PeriodStatus};
use crate::core::state::CheckState;
use crate::core::status_post::{PostUpdate, StatusPost, Subscriber};

use super::migrations::MIGRATIONS;
use plan_io::{add_event, apply, load, load_incident, load_open, merge_rollups, row_to_state, start_period};

mod plan_io;
mod status_io;

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
    /// The one node using this file, as its last campaign told it.
    node: Mutex<Option<(super::NodeInfo, i64)>>,
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
        Ok(Self {
            conn: Mutex::new(conn),
            path,
            router: std::sync::RwLock::new(Router::default()),
            node: Mutex::new(None),
        })
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

impl Store for SqliteStore {
    fn remote_write_queue(&self, target: &str, limit: usize) -> Result<Vec<super::QueuedSample>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, check_id, agent, ts_ms, success, latency_s, values_json FROM remote_write_queue
             WHERE target = ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![target, limit as i64], |r| {
            let values: Option<String> = r.get(6)?;
            Ok(super::QueuedSample {
                id: r.get(0)?,
                check: r.get(1)?,
                agent: r.get(2)?,
                timestamp_ms: r.get(3)?,
                success: r.get(4)?,
                latency_seconds: r.get(5)?,
                values: values.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn remote_write_done(&self, target: &str, ids: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM remote_write_queue WHERE target = ?1 AND id = ?2")?;
            for id in ids {
                delete.execute(params![target, id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn remote_write_backlog(&self, target: &str) -> Result<(u64, Option<i64>), StoreError> {
        let conn = self.conn();
        let (n, oldest): (i64, Option<i64>) = conn.query_row(
            "SELECT count(*), min(ts_ms) FROM remote_write_queue WHERE target = ?1",
            params![target],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((n.max(0) as u64, oldest))
    }

    /// One collector per SQLite file: it always leads, in one term.
    fn campaign(&self, me: &super::NodeInfo, _lease_ms: i64) -> Result<super::Campaign, StoreError> {
        *self.node.lock().unwrap_or_else(|p| p.into_inner()) = Some((me.clone(), crate::core::time::now_ms()));
        Ok(super::Campaign { epoch: Some(1), leader: Some(me.node.clone()), clock_offset_ms: 0 })
    }

    fn cluster(&self) -> Result<super::ClusterView, StoreError> {
        let now_ms = crate::core::time::now_ms();
        let node = self.node.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(super::ClusterView {
            leader: node.as_ref().map(|(n, _)| n.node.clone()),
            epoch: node.as_ref().map(|_| 1),
            lease_until_ms: None,
            now_ms,
            nodes: node
                .into_iter()
                .map(|(n, seen)| super::NodeRow {
                    node: n.node,
                    version: n.version,
                    config_hash: n.config_hash,
                    started_ms: n.started_ms,
                    last_seen_ms: seen,
                    clock_offset_ms: 0,
                })
                .collect(),
        })
    }

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
        let (duplicate, reused) = batch::replay(&stored, &hash);
        outcome.sequence_reused = reused;
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
        outcome.new_instance = batch::new_instance(previous, instance, duplicate);
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
            outcome.incidents_resolved = plan.written(new_ids).resolved;
            outcome.ack = Some(IngestAck::new(batch.sequence, 0, true));
            return Ok(outcome);
        }
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO samples (check_id, agent, ts_ms, success, latency_s, values_json, error, degraded)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            // Queued for each remote-write target in the same transaction: what is
            // acknowledged is sent on, whatever happens after.
            let mut queue = if policies.remote_write.is_empty() {
                None
            } else {
                Some(tx.prepare_cached(
                    "INSERT INTO remote_write_queue (target, check_id, agent, ts_ms, success, latency_s, values_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?)
            };
            let mut values = Vec::with_capacity(128);
            for s in &batch.samples {
                values.clear();
                let values_json = if s.values.is_empty() {
                    None
                } else {
                    serde_json::to_writer(&mut values, &s.values).ok().and_then(|()| std::str::from_utf8(&values).ok())
                };
                if policies.store_raw_samples {
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
                if let Some(queue) = queue.as_mut() {
                    for target in &policies.remote_write {
                        queue.execute(params![
                            target,
                            s.check,
                            batch.agent,
                            s.timestamp_ms,
                            s.success,
                            s.latency_seconds,
                            values_json
                        ])?;
                    }
                }
            }
        }
        merge_rollups(&tx, batch::minute_rollups(batch))?;
        let new_ids = apply(&tx, &plan)?;
        tx.commit()?;
        let written = plan.written(new_ids);
        (outcome.incidents_opened, outcome.incidents_resolved, outcome.states) =
            (written.opened, written.resolved, written.states);
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
            "SELECT id, incident_id, receiver, event, attempts, created_ms FROM notifications
             WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, limit as i64], |r| {
            Ok(PendingNotification {
                id: r.get(0)?,
                incident_id: r.get(1)?,
                receiver: r.get(2)?,
                event: r.get(3)?,
                attempts: r.get(4)?,
                created_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn record_notification(&self, id: i64, outcome: &NotificationOutcome, at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        match outcome {
            NotificationOutcome::Delivered | NotificationOutcome::DeliveredAs(_) => tx.execute(
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
                NotificationOutcome::DeliveredAs(what) => {
                    Some(("notified", format!("{receiver} notified ({event}): {what}")))
                }
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
        Ok(plan.written(new_ids).resolved)
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
        let dir = if filter.newest { "DESC" } else { "ASC" };
        // Only the conditions that are set: `(?1 IS NULL OR check_id = ?1)` would keep SQLite
        // from using the (check_id, ts_ms) index and scan every sample.
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(c) = &filter.check {
            clauses.push("check_id = ?");
            args.push(c.clone().into());
        }
        if let Some(f) = filter.from_ms {
            clauses.push("ts_ms >= ?");
            args.push(f.into());
        }
        if let Some(t) = filter.to_ms {
            clauses.push("ts_ms < ?");
            args.push(t.into());
        }
        args.push(filter.limit.map_or(-1, |l| l as i64).into());
        let where_ = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT check_id, agent, ts_ms, success, latency_s, error, degraded, values_json FROM samples
             {where_} ORDER BY ts_ms {dir}, id {dir} LIMIT ?"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
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
        let mut list: Vec<StoredSample> = rows.collect::<Result<_, _>>()?;
        if filter.newest {
            list.reverse();
        }
        Ok(list)
    }

    fn sample_count(&self, check: Option<&str>) -> Result<u64, StoreError> {
        let conn = self.conn();
        let n: i64 =
            conn.query_row("SELECT count(*) FROM samples WHERE ?1 IS NULL OR check_id = ?1", [check], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn add_post(&self, post: &StatusPost, recipients: &[i64]) -> Result<i64, StoreError> {
        status_io::add_post(&mut self.conn(), post, recipients)
    }

    fn add_post_update(
        &self,
        post_id: i64,
        update: &PostUpdate,
        recipients: &[i64],
    ) -> Result<Option<i64>, StoreError> {
        status_io::add_post_update(&mut self.conn(), post_id, update, recipients)
    }

    fn set_postmortem(&self, post_id: i64, text: &str) -> Result<bool, StoreError> {
        status_io::set_postmortem(&self.conn(), post_id, text)
    }

    fn posts(&self, between: Option<(i64, i64)>, limit: usize) -> Result<Vec<StatusPost>, StoreError> {
        status_io::posts(&self.conn(), between, limit)
    }

    fn post(&self, id: i64) -> Result<Option<StatusPost>, StoreError> {
        status_io::post(&self.conn(), id)
    }

    fn add_subscriber(&self, s: &Subscriber) -> Result<(i64, bool), StoreError> {
        status_io::add_subscriber(&self.conn(), s)
    }

    fn subscriber(&self, id: i64) -> Result<Option<Subscriber>, StoreError> {
        status_io::subscriber(&self.conn(), id)
    }

    fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>, StoreError> {
        status_io::subscriber_by_token(&self.conn(), token)
    }

    fn update_subscriber(&self, id: i64, change: SubscriberChange, at_ms: i64) -> Result<(), StoreError> {
        status_io::update_subscriber(&self.conn(), id, change, at_ms)
    }

    fn subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        status_io::subscribers(&self.conn())
    }

    fn enqueue_subscriber_messages(
        &self,
        recipients: &[i64],
        item: &str,
        payload: Option<&str>,
        at_ms: i64,
    ) -> Result<usize, StoreError> {
        status_io::enqueue(&mut self.conn(), recipients, item, payload, at_ms)
    }

    fn subscriber_item_exists(&self, item: &str) -> Result<bool, StoreError> {
        status_io::item_exists(&self.conn(), item)
    }

    fn due_subscriber_messages(&self, now_ms: i64, limit: usize) -> Result<Vec<SubscriberMessage>, StoreError> {
        status_io::due(&self.conn(), now_ms, limit)
    }

    fn record_subscriber_message(&self, id: i64, outcome: &NotificationOutcome, at_ms: i64) -> Result<(), StoreError> {
        status_io::record(&self.conn(), id, outcome, at_ms)
    }

    fn subscriber_messages(&self, limit: usize) -> Result<Vec<SubscriberMessageRow>, StoreError> {
        status_io::rows(&self.conn(), limit)
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
