//! The PostgreSQL store (`[store] kind = "postgres"`): the same `Store` as SQLite's, on a
//! database several collectors can share. It only loads and writes; every decision comes from
//! the core, exactly as for SQLite.
//!
//! A batch is one transaction. Batches touching the same checks on two nodes are serialised by
//! transaction-scoped advisory locks on the agent and on each check, taken in one sorted order
//! (so two batches never wait on each other in a cycle); a serialisation failure, a deadlock or
//! a concurrent replay's unique violation is retried. Samples go in with one binary `COPY`
//! per batch, not one statement per row.
//!
//! The blocking `postgres` client (tokio-postgres underneath) matches the `Store` trait, whose
//! calls run on the blocking pool; connections come from a small pool of `pool_size`.
//! One cohesive thing, hence its length: one method per question, as `sqlite/mod.rs`.

mod plan_io;
pub mod schema;
mod status_io;

use postgres::error::SqlState;
use postgres::{Client, NoTls, Transaction};
use std::sync::{Condvar, Mutex};
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
use plan_io::{
    add_event, apply, load, load_incident, load_open, merge_rollups, row_to_state, start_period, STATE_COLUMNS,
};

/// How often a batch is tried when PostgreSQL reports a conflict with a concurrent one.
const ATTEMPTS: usize = 5;

/// A fixed number of connections, handed out one at a time.
struct Pool {
    config: postgres::Config,
    size: usize,
    state: Mutex<(Vec<Client>, usize)>,
    returned: Condvar,
}

struct Pooled<'p> {
    client: Option<Client>,
    pool: &'p Pool,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        match &self.client {
            Some(c) => c,
            None => unreachable!("a pooled client is present until dropped"),
        }
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        match &mut self.client {
            Some(c) => c,
            None => unreachable!("a pooled client is present until dropped"),
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.client.take() {
            Some(c) if !c.is_closed() => state.0.push(c),
            _ => state.1 -= 1, // a broken connection leaves; the next caller opens a new one
        }
        self.pool.returned.notify_one();
    }
}

impl Pool {
    fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(client) = state.0.pop() {
                if client.is_closed() {
                    state.1 -= 1;
                    continue;
                }
                return Ok(Pooled { client: Some(client), pool: self });
            }
            if state.1 < self.size {
                state.1 += 1;
                drop(state);
                return match self.config.connect(NoTls) {
                    Ok(client) => Ok(Pooled { client: Some(client), pool: self }),
                    Err(e) => {
                        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                        state.1 -= 1;
                        Err(e.into())
                    }
                };
            }
            state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The campaigns' connection, and whether it holds the leadership's session lock.
struct Campaigner {
    client: Client,
    holds_lock: bool,
}

/// The session advisory lock the leader holds on its campaign connection: PostgreSQL releases
/// it the moment that session ends, which tells the others the leader is gone.
const LEADER_LOCK: i64 = 0x7661_6b74_0002; // "vakt" 2

pub struct PostgresStore {
    pool: Pool,
    router: std::sync::RwLock<Router>,
    /// The term this node won at its last campaign: (holder, epoch). Leader-only writes check
    /// it against the database in their own transaction (see [`PostgresStore::fenced`]).
    fence: std::sync::RwLock<Option<(String, i64)>>,
    /// The campaigns' own connection, so that a pool busy with ingest never delays a renewal.
    campaigner: Mutex<Option<Campaigner>>,
}

/// Whether a failed batch is worth trying again: it lost a race with a concurrent one.
fn retryable(e: &StoreError) -> bool {
    let StoreError::Postgres(e) = e else { return false };
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// How long a session may sit idle inside a transaction before PostgreSQL ends it.
pub const IDLE_IN_TRANSACTION_MS: u64 = 5_000;
/// How long a statement waits for a lock before it gives up.
pub const LOCK_WAIT_MS: u64 = 8_000;

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL or a key=value string), keeping up to
    /// `pool_size` connections, and brings the schema up to date (one node at a time).
    pub fn open(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| StoreError::Open {
            path: "[store] url".into(),
            reason: format!("not a PostgreSQL connection URL: {e}"),
        })?;
        config.connect_timeout(std::time::Duration::from_secs(10));
        config.application_name("vakt-collector");
        // A node frozen in the middle of a transaction (SIGSTOP, a paused VM) would hold its
        // locks, and every other node's pushes for those checks would wait for it for ever:
        // PostgreSQL ends such a session after IDLE_IN_TRANSACTION_MS (our transactions never
        // pause between statements), and a wait for a lock gives up after LOCK_WAIT_MS (the
        // push fails, and the agent sends it again).
        let mut options = config.get_options().unwrap_or_default().to_string();
        options.push_str(&format!(
            " -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS} -c lock_timeout={LOCK_WAIT_MS}"
        ));
        config.options(options.trim());
        let where_ = describe(&config);
        let pool = Pool {
            config,
            size: pool_size.max(1) as usize,
            state: Mutex::new((Vec::new(), 0)),
            returned: Condvar::new(),
        };
        let store = PostgresStore {
            pool,
            router: std::sync::RwLock::new(Router::default()),
            fence: Default::default(),
            campaigner: Mutex::new(None),
        };
        {
            let mut client = store.pool.get().map_err(|e| StoreError::Open {
                path: where_.clone(),
                reason: format!(
                    "cannot connect: {e} (is PostgreSQL running there, and the user allowed in pg_hba.conf?)"
                ),
            })?;
            migrate(&mut client, &where_)?;
        }
        Ok(store)
    }

    /// Sets the routing of notifications written to the outbox with incident events.
    pub fn set_router(&self, router: Router) {
        *self.router.write().unwrap_or_else(|p| p.into_inner()) = router;
    }

    fn router(&self) -> Router {
        self.router.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn client(&self) -> Result<Pooled<'_>, StoreError> {
        self.pool.get()
    }

    /// Fencing: a leader-only write goes on only while this node's term is the current one
    /// and its lease has not run out, on the database's clock. The leader row stays share-locked
    /// to the end of the transaction, so no other node can take over before it commits; a
    /// leader that was frozen and resumed finds another epoch and commits nothing.
    fn fenced(&self, tx: &mut Transaction<'_>) -> Result<(), StoreError> {
        let Some((holder, epoch)) = self.fence.read().unwrap_or_else(|p| p.into_inner()).clone() else {
            return Err(StoreError::NotLeader("this node has not been elected".into()));
        };
        let row = tx.query_opt(
            "SELECT holder, node, epoch, lease_until > clock_timestamp() FROM vakt_leader WHERE id = 1 FOR SHARE",
            &[],
        )?;
        match row {
            Some(r) if r.try_get::<_, String>(0)? == holder && r.try_get::<_, i64>(2)? == epoch => {
                if r.try_get::<_, bool>(3)? {
                    Ok(())
                } else {
                    Err(StoreError::NotLeader(format!("the lease of term {epoch} ran out before it was renewed")))
                }
            }
            Some(r) => Err(StoreError::NotLeader(format!(
                "term {epoch} is over: {} leads in term {}",
                r.try_get::<_, String>(1)?,
                r.try_get::<_, i64>(2)?
            ))),
            None => Err(StoreError::NotLeader("nobody has been elected".into())),
        }
    }

    fn try_campaign(
        &self,
        c: &mut Campaigner,
        me: &super::NodeInfo,
        lease_ms: i64,
    ) -> Result<super::Campaign, StoreError> {
        let client = &mut c.client;
        let before = crate::core::time::now_ms();
        let db_now: i64 =
            client.query_one("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint", &[])?.try_get(0)?;
        let after = crate::core::time::now_ms();
        let clock_offset_ms = db_now - (before + after) / 2;
        // Whoever holds the lock: the leader, normally. Getting it while the leader row says its
        // holder has it means that holder's session is gone: take over without waiting for
        // the lease. A node that gets it and does not lead lets it go again.
        let got_lock =
            c.holds_lock || client.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])?.try_get(0)?;
        let won = client.query_opt(
            "INSERT INTO vakt_leader (id, holder, node, epoch, lease_until, locked)
             VALUES (1, $1, $2, 1, clock_timestamp() + make_interval(secs => $3::float8 / 1000), $4)
             ON CONFLICT (id) DO UPDATE SET
                 epoch = CASE WHEN vakt_leader.holder = excluded.holder THEN vakt_leader.epoch
                              ELSE vakt_leader.epoch + 1 END,
                 holder = excluded.holder, node = excluded.node, lease_until = excluded.lease_until,
                 locked = excluded.locked
             WHERE vakt_leader.holder = excluded.holder OR vakt_leader.lease_until < clock_timestamp()
                OR (vakt_leader.locked AND excluded.locked)
             RETURNING epoch",
            &[&me.holder, &me.node, &(lease_ms as f64), &got_lock],
        )?;
        let epoch = match won {
            Some(row) => Some(row.try_get::<_, i64>(0)?),
            None => None,
        };
        if got_lock && epoch.is_none() {
            client.execute("SELECT pg_advisory_unlock($1)", &[&LEADER_LOCK])?;
            c.holds_lock = false;
        } else {
            c.holds_lock = got_lock;
        }
        let client = &mut c.client;
        let leader = match epoch {
            Some(_) => Some(me.node.clone()),
            None => client
                .query_opt("SELECT node FROM vakt_leader WHERE id = 1 AND lease_until > clock_timestamp()", &[])?
                .map(|r| r.try_get::<_, String>(0))
                .transpose()?,
        };
        client.execute(
            "INSERT INTO vakt_nodes (node, holder, version, config_hash, started_ms, seen_ms, clock_offset_ms)
             VALUES ($1, $2, $3, $4, $5, (extract(epoch from clock_timestamp()) * 1000)::bigint, $6)
             ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, version = excluded.version,
                 config_hash = excluded.config_hash, started_ms = excluded.started_ms,
                 seen_ms = excluded.seen_ms, clock_offset_ms = excluded.clock_offset_ms",
            &[&me.node, &me.holder, &me.version, &me.config_hash, &me.started_ms, &clock_offset_ms],
        )?;
        *self.fence.write().unwrap_or_else(|p| p.into_inner()) = epoch.map(|e| (me.holder.clone(), e));
        Ok(super::Campaign { epoch, leader, clock_offset_ms })
    }

    fn try_commit(&self, batch: &Batch, received_ms: i64, policies: &Policies) -> Result<IngestOutcome, StoreError> {
        let router = self.router();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // The agent's batches and each check's samples, one writer at a time across nodes.
        let mut keys: Vec<String> = batch.samples.iter().map(|s| format!("check:{}", s.check)).collect();
        keys.push(format!("agent:{}", batch.agent));
        keys.sort_unstable();
        keys.dedup();
        tx.execute(
            "SELECT pg_advisory_xact_lock(h) FROM
                 (SELECT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY 1 OFFSET 0) AS ordered",
            &[&keys],
        )?;
        let instance = batch.instance.as_deref().unwrap_or("");
        let hash = super::sqlite::content_hash(&batch.samples);
        let sequence = i64::try_from(batch.sequence).unwrap_or(i64::MAX);
        let mut outcome = IngestOutcome::default();
        let stored: Vec<String> = tx
            .query(
                "SELECT content_hash FROM batches WHERE agent = $1 AND instance = $2 AND sequence = $3",
                &[&batch.agent, &instance, &sequence],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let (duplicate, reused) = batch::replay(&stored, &hash);
        outcome.sequence_reused = reused;
        if !duplicate {
            tx.execute(
                "INSERT INTO batches (agent, instance, sequence, content_hash, received_ms, samples)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&batch.agent, &instance, &sequence, &hash, &received_ms, &(batch.samples.len() as i64)],
            )?;
        }
        let newest = if duplicate { None } else { batch.samples.iter().map(|s| s.timestamp_ms).max() };
        let previous = match tx.query_opt("SELECT instance FROM agents WHERE name = $1", &[&batch.agent])? {
            Some(row) => Some(row.try_get::<_, Option<String>>(0)?),
            None => None,
        };
        outcome.new_instance = batch::new_instance(previous, instance, duplicate);
        let new_instance = outcome.new_instance.is_some();
        tx.execute(
            "INSERT INTO agents (name, last_seen_ms, version, instance, instance_since_ms, high_water_ms)
             VALUES ($1, $2, $3, $4, $2, $5)
             ON CONFLICT (name) DO UPDATE SET last_seen_ms = GREATEST(agents.last_seen_ms, excluded.last_seen_ms),
                 version = coalesce(excluded.version, agents.version),
                 instance_since_ms = CASE WHEN $6 THEN excluded.instance_since_ms ELSE agents.instance_since_ms END,
                 instance = CASE WHEN $6 THEN excluded.instance ELSE agents.instance END,
                 high_water_ms = GREATEST(agents.high_water_ms, excluded.high_water_ms)",
            &[&batch.agent, &received_ms, &batch.agent_version, &instance, &newest, &new_instance],
        )?;
        let loaded = load(&mut tx, &batch::needs(batch, duplicate, policies))?;
        let plan = batch::step(batch, received_ms, duplicate, policies, &router, loaded);
        if duplicate {
            let new_ids = apply(&mut tx, &plan)?;
            tx.commit()?;
            outcome.incidents_resolved = plan.written(new_ids).resolved;
            outcome.ack = Some(IngestAck::new(batch.sequence, 0, true));
            return Ok(outcome);
        }
        insert_samples(&mut tx, batch, policies.store_raw_samples, &policies.remote_write)?;
        merge_rollups(&mut tx, batch::minute_rollups(batch))?;
        let new_ids = apply(&mut tx, &plan)?;
        tx.commit()?;
        let written = plan.written(new_ids);
        (outcome.incidents_opened, outcome.incidents_resolved, outcome.states) =
            (written.opened, written.resolved, written.states);
        outcome.ack = Some(IngestAck::new(batch.sequence, batch.samples.len(), false));
        Ok(outcome)
    }
}

/// "host:port/db" for messages, without the password.
fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("postgresql {host}:{port}/{}", config.get_dbname().unwrap_or(""))
}

/// All of a batch's samples in one statement, and as many again into the remote-write queue
/// per target.
fn insert_samples(
    tx: &mut Transaction<'_>,
    batch: &Batch,
    keep_raw: bool,
    remote_write: &[String],
) -> Result<(), StoreError> {
    let n = batch.samples.len();
    let (mut checks, mut ts, mut ok, mut latency, mut values, mut errors, mut degraded) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for s in &batch.samples {
        checks.push(s.check.as_str());
        ts.push(s.timestamp_ms);
        ok.push(s.success);
        latency.push(s.latency_seconds);
        values.push((!s.values.is_empty()).then(|| serde_json::to_string(&s.values).unwrap_or_default()));
        errors.push(s.error.as_deref());
        degraded.push(s.degraded);
    }
    if keep_raw {
        // COPY in binary: one round trip for the rows, however many.
        use postgres::types::{ToSql, Type};
        let sink = tx.copy_in(
            "COPY samples (check_id, agent, ts_ms, success, latency_s, values_json, error, degraded)
             FROM STDIN (FORMAT binary)",
        )?;
        let types = [Type::TEXT, Type::TEXT, Type::INT8, Type::BOOL, Type::FLOAT8, Type::TEXT, Type::TEXT, Type::BOOL];
        let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
        for i in 0..n {
            let row: [&(dyn ToSql + Sync); 8] =
                [&checks[i], &batch.agent, &ts[i], &ok[i], &latency[i], &values[i], &errors[i], &degraded[i]];
            writer.write(&row)?;
        }
        writer.finish()?;
    }
    if !remote_write.is_empty() {
        tx.execute(
            "INSERT INTO remote_write_queue (target, check_id, agent, ts_ms, success, latency_s, values_json)
             SELECT q, c, $2, t, s, l, v
             FROM unnest($1::text[], $3::bigint[], $4::boolean[], $5::float8[], $6::text[]) WITH ORDINALITY
                  AS x(c, t, s, l, v, n)
             CROSS JOIN unnest($7::text[]) AS r(q)
             ORDER BY q, n",
            &[&checks, &batch.agent, &ts, &ok, &latency, &values, &remote_write],
        )?;
    }
    Ok(())
}

/// Brings the schema up to date under a session advisory lock, so that collectors starting
/// together migrate one after the other.
fn migrate(client: &mut Client, where_: &str) -> Result<(), StoreError> {
    const MIGRATION_LOCK: i64 = 0x7661_6b74_0001; // "vakt" 1
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = (|| -> Result<(), StoreError> {
        client.batch_execute("CREATE TABLE IF NOT EXISTS vakt_schema (version bigint NOT NULL)")?;
        let found: i64 = match client.query_opt("SELECT version FROM vakt_schema", &[])? {
            Some(row) => row.try_get(0)?,
            None => {
                client.execute("INSERT INTO vakt_schema (version) VALUES (0)", &[])?;
                0
            }
        };
        let known = schema::MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::TooNew { path: where_.to_string(), found, known });
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
            let mut tx = client.transaction()?;
            tx.batch_execute(sql)?;
            tx.execute("UPDATE vakt_schema SET version = $1", &[&(i as i64 + 1)])?;
            tx.commit()?;
            tracing::info!(db = %where_, version = i + 1, "schema migrated");
        }
        Ok(())
    })();
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])?;
    result
}

fn period_status(s: &str) -> PeriodStatus {
    match s {
        "up" => PeriodStatus::Up,
        "down" => PeriodStatus::Down,
        _ => PeriodStatus::Unknown,
    }
}

impl Store for PostgresStore {
    fn remote_write_queue(&self, target: &str, limit: usize) -> Result<Vec<super::QueuedSample>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT id, check_id, agent, ts_ms, success, latency_s, values_json FROM remote_write_queue
             WHERE target = $1 ORDER BY id LIMIT $2",
            &[&target, &(limit as i64)],
        )?;
        rows.iter()
            .map(|r| {
                let values: Option<String> = r.try_get(6)?;
                Ok(super::QueuedSample {
                    id: r.try_get(0)?,
                    check: r.try_get(1)?,
                    agent: r.try_get(2)?,
                    timestamp_ms: r.try_get(3)?,
                    success: r.try_get(4)?,
                    latency_seconds: r.try_get(5)?,
                    values: values.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default(),
                })
            })
            .collect()
    }

    fn remote_write_done(&self, target: &str, ids: &[i64]) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        self.fenced(&mut tx)?;
        // By id, not "up to": a batch committed late with a lower id is still to be sent.
        tx.execute("DELETE FROM remote_write_queue WHERE target = $1 AND id = ANY($2)", &[&target, &ids])?;
        tx.commit()?;
        Ok(())
    }

    fn remote_write_backlog(&self, target: &str) -> Result<(u64, Option<i64>), StoreError> {
        let mut client = self.client()?;
        let r =
            client.query_one("SELECT count(*), min(ts_ms) FROM remote_write_queue WHERE target = $1", &[&target])?;
        Ok((r.try_get::<_, i64>(0)?.max(0) as u64, r.try_get(1)?))
    }

    fn campaign(&self, me: &super::NodeInfo, lease_ms: i64) -> Result<super::Campaign, StoreError> {
        let mut slot = self.campaigner.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(|c| c.client.is_closed()) {
            let mut config = self.pool.config.clone();
            config.application_name("vakt-collector leader election");
            *slot = Some(Campaigner { client: config.connect(NoTls)?, holds_lock: false });
        }
        let Some(client) = slot.as_mut() else { unreachable!("connected above") };
        let result = self.try_campaign(client, me, lease_ms);
        if result.is_err() {
            // A broken connection is opened anew at the next campaign; so is one in doubt.
            *slot = None;
        }
        result
    }

    fn cluster(&self) -> Result<super::ClusterView, StoreError> {
        let mut client = self.client()?;
        let now_ms: i64 =
            client.query_one("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint", &[])?.try_get(0)?;
        let leader = client.query_opt(
            "SELECT node, epoch, (extract(epoch from lease_until) * 1000)::bigint, lease_until > clock_timestamp()
             FROM vakt_leader WHERE id = 1",
            &[],
        )?;
        let (mut view, live) = match leader {
            Some(r) => (
                super::ClusterView {
                    leader: Some(r.try_get(0)?),
                    epoch: Some(r.try_get(1)?),
                    lease_until_ms: Some(r.try_get(2)?),
                    now_ms,
                    nodes: Vec::new(),
                },
                r.try_get::<_, bool>(3)?,
            ),
            None => (super::ClusterView { now_ms, ..Default::default() }, false),
        };
        if !live {
            view.leader = None;
        }
        for r in client.query(
            "SELECT node, version, config_hash, started_ms, seen_ms, clock_offset_ms FROM vakt_nodes ORDER BY node",
            &[],
        )? {
            view.nodes.push(super::NodeRow {
                node: r.try_get(0)?,
                version: r.try_get(1)?,
                config_hash: r.try_get(2)?,
                started_ms: r.try_get(3)?,
                last_seen_ms: r.try_get(4)?,
                clock_offset_ms: r.try_get(5)?,
            });
        }
        Ok(view)
    }

    fn commit_batch(&self, batch: &Batch, received_ms: i64, policies: &Policies) -> Result<IngestOutcome, StoreError> {
        let mut attempt = 1;
        loop {
            match self.try_commit(batch, received_ms, policies) {
                Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                    tracing::debug!(agent = %batch.agent, attempt, error = %e, "batch conflicted with a concurrent one; retrying");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn periods(&self, checks: &[String], from_ms: i64, to_ms: i64) -> Result<Vec<Vec<Period>>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT check_id, status, start_ms, end_ms FROM check_periods
             WHERE check_id = ANY($1) AND start_ms < $3 AND (end_ms IS NULL OR end_ms > $2) ORDER BY start_ms, id",
            &[&checks, &from_ms, &to_ms],
        )?;
        let mut out: Vec<Vec<Period>> = vec![Vec::new(); checks.len()];
        for row in &rows {
            let check: String = row.try_get(0)?;
            let status: String = row.try_get(1)?;
            let period = Period { status: period_status(&status), start_ms: row.try_get(2)?, end_ms: row.try_get(3)? };
            for (i, c) in checks.iter().enumerate() {
                if *c == check {
                    out[i].push(period.clone());
                }
            }
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
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT minute_ms, events, failed, latency FROM rollups
             WHERE check_id = ANY($1) AND minute_ms >= $2 AND minute_ms < $3",
            &[&checks, &from_ms, &to_ms],
        )?;
        let mut by_minute: std::collections::BTreeMap<i64, MinuteEvents> = std::collections::BTreeMap::new();
        for row in &rows {
            let (minute, events, failed): (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let latency: Option<Vec<u8>> = row.try_get(3)?;
            let slow = match (slower_than, latency.as_deref().and_then(crate::core::latency::decode)) {
                (Some(t), Some(h)) => crate::core::latency::count_above(&h, t) as i64,
                _ => 0,
            };
            let e = by_minute.entry(minute).or_insert(MinuteEvents { minute_ms: minute, events: 0, bad_events: 0 });
            e.events += events.max(0) as u64;
            e.bad_events += (failed + slow).clamp(0, events) as u64;
        }
        Ok(by_minute.into_values().collect())
    }

    fn open_incidents(&self, actions: &[Action]) -> Result<Vec<i64>, StoreError> {
        let router = self.router();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        self.fenced(&mut tx)?;
        let open = load_open(&mut tx, plan::keys_of(actions))?;
        let opened = apply(&mut tx, &plan::open_all(actions, open, &router))?;
        tx.commit()?;
        Ok(opened)
    }

    fn expire_checks(&self, checks: &[StaleCheck]) -> Result<Vec<String>, StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        self.fenced(&mut tx)?;
        let mut changed = Vec::new();
        for StaleCheck { check, unknown_from_ms: at_ms, last_received_ms } in checks {
            // Only the state the evaluator read: a batch committed since then is fresher.
            let n = tx.execute(
                "UPDATE check_state SET status = 'unknown', consecutive_failures = 0, consecutive_successes = 0,
                        degraded = false, since_ms = $2
                 WHERE check_id = $1 AND status != 'unknown' AND last_received_ms IS NOT DISTINCT FROM $3",
                &[check, at_ms, last_received_ms],
            )?;
            if n > 0 {
                start_period(&mut tx, check, None, *at_ms)?;
                changed.push(check.clone());
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    fn add_maintenance(&self, w: &crate::core::maintenance::Occurrence) -> Result<i64, StoreError> {
        let mut client = self.client()?;
        let created = w.created.as_ref();
        let row = client.query_one(
            "INSERT INTO maintenance_windows (name, start_ms, end_ms, services, change_id, exclude_from_sla, created_by,
                                              created_ms, retroactive)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &w.name,
                &w.start_ms,
                &w.end_ms,
                &serde_json::to_string(&w.services).unwrap_or_else(|_| "[]".into()),
                &w.change_id,
                &w.exclude_from_sla,
                &created.map_or("", |c| c.by.as_str()),
                &created.map(|c| c.at_ms),
                &created.is_some_and(|c| c.retroactive),
            ],
        )?;
        Ok(row.try_get(0)?)
    }

    fn maintenance(&self, from_ms: i64, to_ms: i64) -> Result<Vec<crate::core::maintenance::Occurrence>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT name, start_ms, end_ms, services, change_id, exclude_from_sla, created_by, created_ms, retroactive
             FROM maintenance_windows WHERE start_ms < $2 AND end_ms > $1 ORDER BY start_ms",
            &[&from_ms, &to_ms],
        )?;
        rows.iter()
            .map(|r| {
                Ok(crate::core::maintenance::Occurrence {
                    name: r.try_get(0)?,
                    start_ms: r.try_get(1)?,
                    end_ms: r.try_get(2)?,
                    services: serde_json::from_str(&r.try_get::<_, String>(3)?).unwrap_or_default(),
                    change_id: r.try_get(4)?,
                    exclude_from_sla: r.try_get(5)?,
                    source: "api",
                    created: Some(crate::core::maintenance::Created {
                        by: r.try_get(6)?,
                        at_ms: r.try_get::<_, Option<i64>>(7)?.unwrap_or(0),
                        retroactive: r.try_get(8)?,
                    }),
                })
            })
            .collect()
    }

    fn size_bytes(&self) -> u64 {
        let size = self.client().ok().and_then(|mut c| {
            c.query_one("SELECT pg_database_size(current_database())", &[])
                .ok()
                .and_then(|r| r.try_get::<_, i64>(0).ok())
        });
        size.map_or(0, |s| u64::try_from(s).unwrap_or(0))
    }

    fn prune(&self, raw_before_ms: i64, rollups_before_ms: i64) -> Result<(u64, u64), StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        self.fenced(&mut tx)?;
        let samples = tx.execute("DELETE FROM samples WHERE ts_ms < $1", &[&raw_before_ms])?;
        let rollups = tx.execute("DELETE FROM rollups WHERE minute_ms < $1", &[&rollups_before_ms])?;
        tx.execute("DELETE FROM check_periods WHERE end_ms IS NOT NULL AND end_ms < $1", &[&rollups_before_ms])?;
        tx.execute("DELETE FROM batches WHERE received_ms < $1", &[&rollups_before_ms])?;
        let old = "SELECT id FROM incidents WHERE status = 'resolved' AND resolved_ms < $1";
        tx.execute(&format!("DELETE FROM notifications WHERE incident_id IN ({old})"), &[&rollups_before_ms])?;
        tx.execute(&format!("DELETE FROM incident_events WHERE incident_id IN ({old})"), &[&rollups_before_ms])?;
        tx.execute(
            &format!("UPDATE incidents SET parent_id = NULL WHERE parent_id IN ({old})"),
            &[&rollups_before_ms],
        )?;
        tx.execute("DELETE FROM incidents WHERE status = 'resolved' AND resolved_ms < $1", &[&rollups_before_ms])?;
        tx.commit()?;
        Ok((samples, rollups))
    }

    fn merged_latency(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<hdrhistogram::Histogram<u64>>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT latency FROM rollups
             WHERE check_id = ANY($1) AND minute_ms >= $2 AND minute_ms < $3 AND latency IS NOT NULL",
            &[&checks, &from_ms, &to_ms],
        )?;
        let mut merged = crate::core::latency::new_histogram();
        for row in &rows {
            if let Some(h) = crate::core::latency::decode(&row.try_get::<_, Vec<u8>>(0)?) {
                let _ = merged.add(&h);
            }
        }
        Ok((!merged.is_empty()).then_some(merged))
    }

    fn add_silence(&self, x: &crate::core::routing::Silence) -> Result<i64, StoreError> {
        let mut client = self.client()?;
        let row = client.query_one(
            "INSERT INTO silences (service, subject, kind, severity, starts_ms, ends_ms, author, comment)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[&x.service, &x.subject, &x.kind, &x.severity, &x.starts_ms, &x.ends_ms, &x.author, &x.comment],
        )?;
        Ok(row.try_get(0)?)
    }

    fn silences(&self, now_ms: i64) -> Result<Vec<crate::core::routing::Silence>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT id, service, subject, kind, severity, starts_ms, ends_ms, author, comment FROM silences
             WHERE ends_ms > $1 ORDER BY starts_ms, id",
            &[&now_ms],
        )?;
        rows.iter()
            .map(|r| {
                Ok(crate::core::routing::Silence {
                    id: r.try_get(0)?,
                    service: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    severity: r.try_get(4)?,
                    starts_ms: r.try_get(5)?,
                    ends_ms: r.try_get(6)?,
                    author: r.try_get(7)?,
                    comment: r.try_get(8)?,
                })
            })
            .collect()
    }

    fn expire_silence(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let mut client = self.client()?;
        let n = client.execute("UPDATE silences SET ends_ms = LEAST(ends_ms, $2) WHERE id = $1", &[&id, &now_ms])?;
        Ok(n > 0)
    }

    fn enqueue_notifications(&self, items: &[(i64, String, String)], at_ms: i64) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        self.fenced(&mut tx)?;
        for (incident, receiver, event) in items {
            tx.execute(
                "INSERT INTO notifications (incident_id, receiver, event, status, next_attempt_ms, created_ms)
                 VALUES ($1, $2, $3, 'pending', $4, $4)",
                &[incident, receiver, event, &at_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn due_notifications(&self, now_ms: i64, limit: usize) -> Result<Vec<PendingNotification>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT id, incident_id, receiver, event, attempts, created_ms FROM notifications
             WHERE status = 'pending' AND next_attempt_ms <= $1 ORDER BY next_attempt_ms, id LIMIT $2",
            &[&now_ms, &(limit as i64)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(PendingNotification {
                    id: r.try_get(0)?,
                    incident_id: r.try_get(1)?,
                    receiver: r.try_get(2)?,
                    event: r.try_get(3)?,
                    attempts: u32::try_from(r.try_get::<_, i64>(4)?).unwrap_or(u32::MAX),
                    created_ms: r.try_get(5)?,
                })
            })
            .collect()
    }

    fn record_notification(&self, id: i64, outcome: &NotificationOutcome, at_ms: i64) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        self.fenced(&mut tx)?;
        match outcome {
            NotificationOutcome::Delivered | NotificationOutcome::DeliveredAs(_) => tx.execute(
                "UPDATE notifications SET status = 'delivered', attempts = attempts + 1, done_ms = $2, last_error = NULL WHERE id = $1",
                &[&id, &at_ms],
            )?,
            NotificationOutcome::Suppressed(why) => tx.execute(
                "UPDATE notifications SET status = 'suppressed', done_ms = $2, last_error = $3 WHERE id = $1",
                &[&id, &at_ms, why],
            )?,
            NotificationOutcome::Retry { next_attempt_ms, error } => tx.execute(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_ms = $2, last_error = $3 WHERE id = $1",
                &[&id, next_attempt_ms, error],
            )?,
            NotificationOutcome::Failed(error) => tx.execute(
                "UPDATE notifications SET status = 'failed', attempts = attempts + 1, done_ms = $2, last_error = $3 WHERE id = $1",
                &[&id, &at_ms, error],
            )?,
        };
        let row = tx.query_opt("SELECT incident_id, receiver, event FROM notifications WHERE id = $1", &[&id])?;
        if let Some(row) = row {
            let (incident, receiver, event): (i64, String, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
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
                add_event(&mut tx, incident, &TimelineEvent { at_ms, kind: kind.into(), message })?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn notifications(&self, incident: Option<i64>) -> Result<Vec<NotificationRow>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT id, incident_id, receiver, event, status, attempts, created_ms, done_ms, last_error FROM notifications
             WHERE $1::bigint IS NULL OR incident_id = $1 ORDER BY id DESC LIMIT 1000",
            &[&incident],
        )?;
        rows.iter()
            .map(|r| {
                Ok(NotificationRow {
                    id: r.try_get(0)?,
                    incident_id: r.try_get(1)?,
                    receiver: r.try_get(2)?,
                    event: r.try_get(3)?,
                    status: r.try_get(4)?,
                    attempts: u32::try_from(r.try_get::<_, i64>(5)?).unwrap_or(u32::MAX),
                    created_ms: r.try_get(6)?,
                    done_ms: r.try_get(7)?,
                    last_error: r.try_get(8)?,
                })
            })
            .collect()
    }

    fn state_changes(&self, check: &str, since_ms: i64) -> Result<i64, StoreError> {
        let mut client = self.client()?;
        let row = client.query_one(
            "SELECT count(*) FROM check_periods WHERE check_id = $1 AND start_ms > $2 AND NOT resumed",
            &[&check, &since_ms],
        )?;
        Ok(row.try_get(0)?)
    }

    fn link_incidents(&self, links: &[(i64, i64, String)], at_ms: i64) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        self.fenced(&mut tx)?;
        for (child, root, why) in links {
            let changed = tx.execute(
                "UPDATE incidents SET parent_id = $2 WHERE id = $1 AND parent_id IS NULL AND status != 'resolved'",
                &[child, root],
            )?;
            if changed > 0 {
                add_event(&mut tx, *child, &TimelineEvent { at_ms, kind: "linked".into(), message: why.clone() })?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn resolve_incidents(&self, resolutions: &[(String, TimelineEvent)]) -> Result<Vec<i64>, StoreError> {
        let router = self.router();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        self.fenced(&mut tx)?;
        let open = load_open(&mut tx, resolutions.iter().map(|(key, _)| key.clone()).collect())?;
        let plan = plan::resolve_all(resolutions, open, &router);
        let new_ids = apply(&mut tx, &plan)?;
        tx.commit()?;
        Ok(plan.written(new_ids).resolved)
    }

    fn manual(&self, id: i64, op: &ManualOp, at_ms: i64) -> Result<Result<Incident, ManualError>, StoreError> {
        let router = self.router();
        {
            let mut client = self.client()?;
            let mut tx = client.transaction()?;
            let incident = load_incident(&mut tx, id)?;
            let plan = match plan::manual(id, incident.as_ref(), op, at_ms, &router) {
                Ok(plan) => plan,
                Err(e) => return Ok(Err(e)),
            };
            apply(&mut tx, &plan)?;
            tx.commit()?;
        }
        Ok(self.incident(id)?.ok_or(ManualError::NotFound(id)))
    }

    fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let mut client = self.client()?;
        let limit = filter.limit.map(|l| l as i64);
        let rows = client.query(
            "SELECT id FROM incidents
             WHERE ($1::text IS NULL OR status = $1 OR ($1 = 'open' AND status = 'acknowledged'))
               AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR subject = $3)
               AND ($5::bigint IS NULL OR (opened_ms < $6 AND (resolved_ms IS NULL OR resolved_ms > $5)))
             ORDER BY opened_ms DESC, id DESC LIMIT $4",
            &[
                &filter.status.map(IncidentStatus::as_str),
                &filter.kind.map(IncidentKind::as_str),
                &filter.subject,
                &limit,
                &filter.overlapping.map(|o| o.0),
                &filter.overlapping.map(|o| o.1),
            ],
        )?;
        let ids: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
        ids.into_iter().filter_map(|id| read_incident(&mut client, id).transpose()).collect()
    }

    fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let mut client = self.client()?;
        read_incident(&mut client, id)
    }

    fn check_states(&self) -> Result<Vec<(String, CheckState)>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(&format!("SELECT {STATE_COLUMNS} FROM check_state ORDER BY check_id"), &[])?;
        rows.iter().map(row_to_state).collect()
    }

    fn agents(&self) -> Result<Vec<AgentSummary>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query(
            "SELECT a.name, a.last_seen_ms, count(b.sequence), coalesce(sum(b.samples), 0)::bigint,
                 coalesce(max(CASE WHEN b.instance = coalesce(a.instance, '') THEN b.sequence END), 0),
                 a.version, a.instance, a.instance_since_ms
             FROM agents a LEFT JOIN batches b ON b.agent = a.name GROUP BY a.name ORDER BY a.name",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AgentSummary {
                    name: r.try_get(0)?,
                    last_seen_ms: r.try_get(1)?,
                    batches: r.try_get::<_, i64>(2)?.try_into().unwrap_or(0),
                    samples: r.try_get::<_, i64>(3)?.try_into().unwrap_or(0),
                    last_sequence: r.try_get::<_, i64>(4)?.try_into().unwrap_or(0),
                    version: r.try_get(5)?,
                    instance: r.try_get(6)?,
                    instance_since_ms: r.try_get(7)?,
                })
            })
            .collect()
    }

    fn probe_write(&self, at_ms: i64) -> Result<(), StoreError> {
        let mut client = self.client()?;
        client.execute(
            "INSERT INTO health (id, probed_ms) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET probed_ms = excluded.probed_ms",
            &[&at_ms],
        )?;
        Ok(())
    }

    fn agent_high_water(&self, agent: &str) -> Result<Option<i64>, StoreError> {
        let mut client = self.client()?;
        let row = client.query_opt("SELECT high_water_ms FROM agents WHERE name = $1", &[&agent])?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => None,
        })
    }

    fn local_checks(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut client = self.client()?;
        let rows = client.query("SELECT check_id, agent FROM local_checks ORDER BY check_id", &[])?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    fn replace_local_checks(
        &self,
        agent: &str,
        checks: &[std::sync::Arc<vakt_config::wire::CheckSpec>],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        tx.execute("DELETE FROM local_checks WHERE agent = $1", &[&agent])?;
        for spec in checks {
            let json = serde_json::to_string(spec.as_ref()).unwrap_or_default();
            tx.execute(
                "INSERT INTO local_checks (check_id, agent, spec_json, announced_ms) VALUES ($1, $2, $3, $4)",
                &[&spec.id, &agent, &json, &at_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn samples(&self, filter: &SampleFilter) -> Result<Vec<StoredSample>, StoreError> {
        let mut client = self.client()?;
        let limit = filter.limit.map(|l| l as i64);
        let dir = if filter.newest { "DESC" } else { "ASC" };
        // Only the conditions that are set, so that a generic plan still uses the index.
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
        if let Some(c) = &filter.check {
            args.push(c);
            clauses.push(format!("check_id = ${}", args.len()));
        }
        if let Some(f) = &filter.from_ms {
            args.push(f);
            clauses.push(format!("ts_ms >= ${}", args.len()));
        }
        if let Some(t) = &filter.to_ms {
            args.push(t);
            clauses.push(format!("ts_ms < ${}", args.len()));
        }
        args.push(&limit);
        let where_ = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let rows = client.query(
            &format!(
                "SELECT check_id, agent, ts_ms, success, latency_s, error, degraded, values_json FROM samples
                 {where_} ORDER BY ts_ms {dir}, id {dir} LIMIT ${}",
                args.len()
            ),
            &args,
        )?;
        let mut list: Vec<StoredSample> = rows
            .iter()
            .map(|r| {
                Ok(StoredSample {
                    check: r.try_get(0)?,
                    agent: r.try_get(1)?,
                    timestamp_ms: r.try_get(2)?,
                    success: r.try_get(3)?,
                    latency_seconds: r.try_get(4)?,
                    error: r.try_get(5)?,
                    degraded: r.try_get(6)?,
                    values: r
                        .try_get::<_, Option<String>>(7)?
                        .and_then(|v| serde_json::from_str(&v).ok())
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        if filter.newest {
            list.reverse();
        }
        Ok(list)
    }

    fn sample_count(&self, check: Option<&str>) -> Result<u64, StoreError> {
        let mut client = self.client()?;
        let row =
            client.query_one("SELECT count(*) FROM samples WHERE $1::text IS NULL OR check_id = $1", &[&check])?;
        Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
    }

    fn add_post(&self, post: &StatusPost, recipients: &[i64]) -> Result<i64, StoreError> {
        status_io::add_post(&mut *self.client()?, post, recipients)
    }

    fn add_post_update(
        &self,
        post_id: i64,
        update: &PostUpdate,
        recipients: &[i64],
    ) -> Result<Option<i64>, StoreError> {
        status_io::add_post_update(&mut *self.client()?, post_id, update, recipients)
    }

    fn set_postmortem(&self, post_id: i64, text: &str) -> Result<bool, StoreError> {
        status_io::set_postmortem(&mut *self.client()?, post_id, text)
    }

    fn posts(&self, between: Option<(i64, i64)>, limit: usize) -> Result<Vec<StatusPost>, StoreError> {
        status_io::posts(&mut *self.client()?, between, limit)
    }

    fn post(&self, id: i64) -> Result<Option<StatusPost>, StoreError> {
        status_io::post(&mut *self.client()?, id)
    }

    fn add_subscriber(&self, s: &Subscriber) -> Result<(i64, bool), StoreError> {
        status_io::add_subscriber(&mut *self.client()?, s)
    }

    fn subscriber(&self, id: i64) -> Result<Option<Subscriber>, StoreError> {
        status_io::subscriber(&mut *self.client()?, id)
    }

    fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>, StoreError> {
        status_io::subscriber_by_token(&mut *self.client()?, token)
    }

    fn update_subscriber(&self, id: i64, change: SubscriberChange, at_ms: i64) -> Result<(), StoreError> {
        status_io::update_subscriber(&mut *self.client()?, id, change, at_ms)
    }

    fn subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        status_io::subscribers(&mut *self.client()?)
    }

    fn enqueue_subscriber_messages(
        &self,
        recipients: &[i64],
        item: &str,
        payload: Option<&str>,
        at_ms: i64,
    ) -> Result<usize, StoreError> {
        status_io::enqueue(&mut *self.client()?, recipients, item, payload, at_ms)
    }

    fn subscriber_item_exists(&self, item: &str) -> Result<bool, StoreError> {
        status_io::item_exists(&mut *self.client()?, item)
    }

    fn due_subscriber_messages(&self, now_ms: i64, limit: usize) -> Result<Vec<SubscriberMessage>, StoreError> {
        status_io::due(&mut *self.client()?, now_ms, limit)
    }

    fn record_subscriber_message(&self, id: i64, outcome: &NotificationOutcome, at_ms: i64) -> Result<(), StoreError> {
        status_io::record(&mut *self.client()?, id, outcome, at_ms)
    }

    fn subscriber_messages(&self, limit: usize) -> Result<Vec<SubscriberMessageRow>, StoreError> {
        status_io::rows(&mut *self.client()?, limit)
    }
}

fn read_incident(client: &mut Client, id: i64) -> Result<Option<Incident>, StoreError> {
    let head = client.query_opt(
        "SELECT dedup_key, subject, title, severity, status, opened_ms, resolved_ms, kind, acked_ms, acked_by,
                priority, parent_id
         FROM incidents WHERE id = $1",
        &[&id],
    )?;
    let Some(r) = head else { return Ok(None) };
    let mut incident = Incident {
        id,
        dedup_key: r.try_get(0)?,
        subject: r.try_get(1)?,
        kind: IncidentKind::parse(&r.try_get::<_, String>(7)?).unwrap_or(IncidentKind::CheckDown),
        title: r.try_get(2)?,
        severity: r.try_get(3)?,
        status: IncidentStatus::parse(&r.try_get::<_, String>(4)?).unwrap_or(IncidentStatus::Open),
        opened_ms: r.try_get(5)?,
        resolved_ms: r.try_get(6)?,
        acknowledged_ms: r.try_get(8)?,
        acknowledged_by: r.try_get(9)?,
        priority: r.try_get(10)?,
        parent_id: r.try_get(11)?,
        timeline: Vec::new(),
    };
    let rows = client
        .query("SELECT at_ms, kind, message FROM incident_events WHERE incident_id = $1 ORDER BY at_ms, id", &[&id])?;
    incident.timeline = rows
        .iter()
        .map(|r| Ok(TimelineEvent { at_ms: r.try_get(0)?, kind: r.try_get(1)?, message: r.try_get(2)? }))
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(incident))
}
