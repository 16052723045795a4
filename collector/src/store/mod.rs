//! Where samples, check states and incidents live: SQLite (embedded, the default) or PostgreSQL
//! (shared by several collectors). Both only load and write; the core decides.

pub mod copy;
mod migrations;
mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::{backup, content_hash, Backup, SqliteStore};

use crate::core::policies::Policies;
use crate::core::routing::Router;
use vakt_config::wire::{Batch, IngestAck};

use crate::core::incident::{Action, Incident, IncidentKind, IncidentStatus};

use crate::core::state::CheckState;
use crate::core::status_post::{PostUpdate, StatusPost, Subscriber};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error(
        "database {path}: schema version {found} is newer than this collector knows ({known}); upgrade vakt-collector"
    )]
    TooNew { path: String, found: i64, known: i64 },
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    /// A leader-only write refused: this node does not hold the leadership (any more).
    #[error("not the leader: {0}")]
    NotLeader(String),
    #[error(
        "database {path} is damaged ({detail}): restore the last backup (vakt-collector backup) into the data_dir as vakt.db, or move the file away to start empty"
    )]
    Damaged { path: String, detail: String },
}

/// Opens the store `config` names (`[store]`), writing notifications with `router`.
pub fn open(config: &vakt_config::CollectorConfig, router: Router) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let store = config.store.get_ref();
    Ok(match store.kind {
        vakt_config::collector::StoreKind::Sqlite => {
            let sqlite = SqliteStore::open(&config.data_dir)?;
            sqlite.set_router(router);
            std::sync::Arc::new(sqlite)
        }
        vakt_config::collector::StoreKind::Postgres => {
            let url = store
                .url
                .as_ref()
                .map(|u| u.read())
                .transpose()
                .map_err(|reason| StoreError::Open { path: "[store] url".into(), reason })?
                .flatten()
                .ok_or_else(|| StoreError::Open { path: "[store] url".into(), reason: "not set".into() })?;
            let pg = PostgresStore::open(&url, store.pool_size)?;
            pg.set_router(router);
            std::sync::Arc::new(pg)
        }
    })
}

/// A check whose results stopped coming, as the evaluator read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleCheck {
    pub check: String,
    /// Where its state period ends and "unknown" begins.
    pub unknown_from_ms: i64,
    /// The receipt time the evaluator read: expired only if still the same.
    pub last_received_ms: Option<i64>,
}

/// What committing a batch changed.
#[derive(Clone, Debug, Default)]
pub struct IngestOutcome {
    pub ack: Option<IngestAck>,
    /// The new state of every check the batch touched.
    pub states: Vec<(String, CheckState)>,
    pub incidents_opened: Vec<i64>,
    pub incidents_resolved: Vec<i64>,
    /// The agent pushed under a new instance (its state directory is new): the instance it had
    /// before ("" before instances were sent).
    pub new_instance: Option<String>,
    /// The batch reused a sequence number of its instance with other content (a state
    /// directory restored from a copy): stored as a new batch.
    pub sequence_reused: bool,
}

#[derive(Clone, Debug, Default)]
pub struct IncidentFilter {
    /// `Open` matches acknowledged incidents too: both are unresolved.
    pub status: Option<IncidentStatus>,
    /// Only incidents that overlap `[from, to)` in Unix ms.
    pub overlapping: Option<(i64, i64)>,
    pub kind: Option<IncidentKind>,
    pub subject: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, Default)]
pub struct SampleFilter {
    pub check: Option<String>,
    /// Inclusive, Unix ms.
    pub from_ms: Option<i64>,
    /// Exclusive, Unix ms.
    pub to_ms: Option<i64>,
    pub limit: Option<usize>,
    /// With a limit, the newest samples of the range rather than the oldest. Either way the
    /// answer is in time order.
    pub newest: bool,
}

/// A stored sample, as the API shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StoredSample {
    pub check: String,
    pub agent: String,
    pub timestamp_ms: i64,
    pub success: bool,
    pub degraded: bool,
    pub latency_seconds: Option<f64>,
    pub values: std::collections::BTreeMap<String, f64>,
    pub error: Option<String>,
}

/// A notification due for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingNotification {
    pub id: i64,
    pub incident_id: i64,
    pub receiver: String,
    /// "firing" or "resolved".
    pub event: String,
    pub attempts: u32,
    /// When it was written: a "note" notification carries the note of that moment.
    pub created_ms: i64,
}

/// What became of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotificationOutcome {
    Delivered,
    /// Delivered, and the receiver's answer is worth keeping on the incident's timeline (the
    /// ticket a service desk opened: "ticket INC0010001").
    DeliveredAs(String),
    /// Held back on purpose (linked under a root cause, in maintenance): recorded, not dropped.
    Suppressed(String),
    Retry {
        next_attempt_ms: i64,
        error: String,
    },
    Failed(String),
}

/// A notification as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NotificationRow {
    pub id: i64,
    pub incident_id: i64,
    pub receiver: String,
    pub event: String,
    /// pending, delivered, suppressed or failed.
    pub status: String,
    pub attempts: u32,
    pub created_ms: i64,
    pub done_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// What the store knows of an agent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AgentSummary {
    pub name: String,
    pub last_seen_ms: i64,
    pub batches: u64,
    pub samples: u64,
    pub last_sequence: u64,
    /// The version the agent last reported.
    pub version: Option<String>,
    /// The instance (run of sequence numbers) it pushes under, and since when.
    pub instance: Option<String>,
    pub instance_since_ms: Option<i64>,
}

/// A sample waiting in a remote-write queue.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedSample {
    /// Its place in the queue.
    pub id: i64,
    pub check: String,
    pub agent: String,
    pub timestamp_ms: i64,
    pub success: bool,
    pub latency_seconds: Option<f64>,
    pub values: std::collections::BTreeMap<String, f64>,
}

/// This collector, as it tells the others sharing the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// `[store] node`.
    pub node: String,
    /// The node and this process's start: a restarted node is a new holder, so it cannot
    /// inherit the term of the process before it.
    pub holder: String,
    pub version: String,
    /// Names the checks this node hands to agents (the configuration generation).
    pub config_hash: String,
    pub started_ms: i64,
}

/// What one campaign for the leadership found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    /// The term this node holds, when it is the leader: its fencing epoch.
    pub epoch: Option<i64>,
    /// Who leads, if anyone holds a lease.
    pub leader: Option<String>,
    /// The database's clock minus this node's (ms), measured at the campaign.
    pub clock_offset_ms: i64,
}

/// A node as the cluster view shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeRow {
    pub node: String,
    pub version: String,
    pub config_hash: String,
    pub started_ms: i64,
    /// Its last heartbeat, on the database's clock.
    pub last_seen_ms: i64,
    pub clock_offset_ms: i64,
}

/// Who leads the nodes sharing a store.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterView {
    pub leader: Option<String>,
    pub epoch: Option<i64>,
    /// The leader's lease ends here (database clock, Unix ms) unless renewed.
    pub lease_until_ms: Option<i64>,
    /// The database's clock now (Unix ms), to read the others against.
    pub now_ms: i64,
    pub nodes: Vec<NodeRow>,
}

pub trait Store: Send + Sync + 'static {
    /// Renews this node's leadership, or takes it when nobody holds a live lease, for
    /// `lease_ms` on the database's clock; records the node's heartbeat. A node that wins
    /// after another held it gets the next epoch, and leader-only writes carry that epoch from
    /// then on ([`StoreError::NotLeader`] once it is no longer the current one). A store only
    /// one collector can use (SQLite) always elects it.
    fn campaign(&self, me: &NodeInfo, lease_ms: i64) -> Result<Campaign, StoreError>;
    /// The nodes sharing this store and who leads them.
    fn cluster(&self) -> Result<ClusterView, StoreError>;
    /// The oldest `limit` samples queued for the remote-write `target`, in queue order.
    fn remote_write_queue(&self, target: &str, limit: usize) -> Result<Vec<QueuedSample>, StoreError>;
    /// Takes the samples with `ids` off `target`'s queue (sent, or refused for good by the
    /// receiver). Leader-only.
    fn remote_write_done(&self, target: &str, ids: &[i64]) -> Result<(), StoreError>;
    /// How many samples wait for `target`, and the time of the oldest.
    fn remote_write_backlog(&self, target: &str) -> Result<(u64, Option<i64>), StoreError>;
    /// Stores the batch and applies its samples to check states and incidents, all in one
    /// transaction. A batch already stored (same agent and sequence) changes nothing and is
    /// acknowledged as a duplicate.
    fn commit_batch(&self, batch: &Batch, received_ms: i64, policies: &Policies) -> Result<IngestOutcome, StoreError>;
    /// Opens the incidents of `actions` (only `Action::Open` is meaningful here) unless one with
    /// the same key is open already. Returns the ids opened.
    /// Each check's state periods overlapping `[from_ms, to_ms)`, sorted by start; one list
    /// per check, in the order of `checks`.
    fn periods(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Vec<crate::core::slo::Period>>, StoreError>;
    /// Probe counts per minute in `[from_ms, to_ms)`, summed over `checks`. With `slower_than`
    /// (seconds), answers slower than that count as bad too.
    fn minute_events(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
        slower_than: Option<f64>,
    ) -> Result<Vec<crate::core::slo::MinuteEvents>, StoreError>;
    fn open_incidents(&self, actions: &[Action]) -> Result<Vec<i64>, StoreError>;
    /// Marks checks whose results stopped coming as unknown from the given time (their open
    /// state period ends there), each only if no result arrived since the evaluator read it.
    /// Returns the checks changed.
    fn expire_checks(&self, checks: &[StaleCheck]) -> Result<Vec<String>, StoreError>;
    /// Stores a maintenance window created through the API or CLI; returns its id.
    /// The window's `created` says who made it, when, and whether retroactively.
    fn add_maintenance(&self, window: &crate::core::maintenance::Occurrence) -> Result<i64, StoreError>;
    /// Maintenance windows created through the API or CLI that overlap `[from_ms, to_ms)`.
    fn maintenance(&self, from_ms: i64, to_ms: i64) -> Result<Vec<crate::core::maintenance::Occurrence>, StoreError>;
    /// Bytes the store takes on disk.
    fn size_bytes(&self) -> u64;
    /// Deletes raw samples before `raw_before_ms`, and rollups, ended state periods, resolved
    /// incidents (with their timeline and notifications) and batch records before
    /// `rollups_before_ms`. Returns (samples, rollups) deleted.
    fn prune(&self, raw_before_ms: i64, rollups_before_ms: i64) -> Result<(u64, u64), StoreError>;
    /// The latency histograms of `checks` in `[from_ms, to_ms)`, merged.
    fn merged_latency(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Option<hdrhistogram::Histogram<u64>>, StoreError>;
    fn add_silence(&self, silence: &crate::core::routing::Silence) -> Result<i64, StoreError>;
    /// Silences that have not ended by `now_ms`.
    fn silences(&self, now_ms: i64) -> Result<Vec<crate::core::routing::Silence>, StoreError>;
    /// Ends a silence at `now_ms`; false when there is none with that id.
    fn expire_silence(&self, id: i64, now_ms: i64) -> Result<bool, StoreError>;
    /// Adds follow-up notifications (repeats, escalations) to the outbox, due at once.
    fn enqueue_notifications(&self, items: &[(i64, String, String)], at_ms: i64) -> Result<(), StoreError>;
    /// Outbox notifications due at `now_ms`.
    fn due_notifications(&self, now_ms: i64, limit: usize) -> Result<Vec<PendingNotification>, StoreError>;
    fn record_notification(&self, id: i64, outcome: &NotificationOutcome, at_ms: i64) -> Result<(), StoreError>;
    /// The outbox, newest first, for one incident or all.
    fn notifications(&self, incident: Option<i64>) -> Result<Vec<NotificationRow>, StoreError>;
    /// How many times the check changed state after `since_ms`.
    fn state_changes(&self, check: &str, since_ms: i64) -> Result<i64, StoreError>;
    /// Links each child incident under its root cause, with the reason in its timeline.
    fn link_incidents(&self, links: &[(i64, i64, String)], at_ms: i64) -> Result<(), StoreError>;
    /// Resolves the open incident with each dedup key, with its event. Returns the ids resolved.
    fn resolve_incidents(
        &self,
        resolutions: &[(String, crate::core::incident::TimelineEvent)],
    ) -> Result<Vec<i64>, StoreError>;
    /// Acknowledge, note or resolve by hand, with a timeline entry.
    fn manual(
        &self,
        id: i64,
        op: &crate::core::incident::ManualOp,
        at_ms: i64,
    ) -> Result<Result<Incident, crate::core::incident::ManualError>, StoreError>;
    fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError>;
    fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError>;
    fn check_states(&self) -> Result<Vec<(String, CheckState)>, StoreError>;
    /// Every agent that ever pushed, with what it pushed.
    fn agents(&self) -> Result<Vec<AgentSummary>, StoreError>;
    /// Writes (and syncs) a small record: whether the store can take writes at all (a full
    /// disk, a damaged or read-only file say no).
    fn probe_write(&self, at_ms: i64) -> Result<(), StoreError>;
    /// The newest sample time stored from `agent` (its clock), for the backfill floor.
    fn agent_high_water(&self, agent: &str) -> Result<Option<i64>, StoreError>;
    /// Every announced local check: (check, agent).
    fn local_checks(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Replaces the local checks `agent` announced with `checks`.
    fn replace_local_checks(
        &self,
        agent: &str,
        checks: &[std::sync::Arc<vakt_config::wire::CheckSpec>],
        at_ms: i64,
    ) -> Result<(), StoreError>;
    /// Raw samples, oldest first.
    fn samples(&self, filter: &SampleFilter) -> Result<Vec<StoredSample>, StoreError>;
    /// Number of stored samples, for one check or all.
    fn sample_count(&self, check: Option<&str>) -> Result<u64, StoreError>;

    // What customers are told: status page posts, subscribers and their outbox.

    /// Stores a new post with its first update, and queues that update for `recipients` (the
    /// subscribers it reaches), in one transaction. Returns the post's id.
    fn add_post(&self, post: &StatusPost, recipients: &[i64]) -> Result<i64, StoreError>;
    /// Adds an update to post `post_id` (its status becomes the update's; resolved sets its
    /// end, another status after that reopens it) and queues it for `recipients`, in one
    /// transaction. `None` when there is no such post.
    fn add_post_update(&self, post_id: i64, update: &PostUpdate, recipients: &[i64])
        -> Result<Option<i64>, StoreError>;
    /// Sets a post's postmortem; false when there is no such post.
    fn set_postmortem(&self, post_id: i64, text: &str) -> Result<bool, StoreError>;
    /// Posts open at some time in `[from_ms, to_ms)` (all when `None`), newest first, each
    /// with its updates, at most `limit`.
    fn posts(&self, between: Option<(i64, i64)>, limit: usize) -> Result<Vec<StatusPost>, StoreError>;
    fn post(&self, id: i64) -> Result<Option<StatusPost>, StoreError>;
    /// Records a subscriber unless one of the same kind and address exists (then returns that
    /// one's id and false).
    fn add_subscriber(&self, s: &Subscriber) -> Result<(i64, bool), StoreError>;
    fn subscriber(&self, id: i64) -> Result<Option<Subscriber>, StoreError>;
    fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>, StoreError>;
    /// Confirms (`confirmed`), unsubscribes (`unsubscribed`) or marks as failing (`failed`).
    fn update_subscriber(&self, id: i64, change: SubscriberChange, at_ms: i64) -> Result<(), StoreError>;
    /// Every subscriber, confirmed or not.
    fn subscribers(&self) -> Result<Vec<Subscriber>, StoreError>;
    /// Queues `item` for each of `recipients`, with its content when it was made at queue time
    /// (`payload`: a scheduled report); an item a subscriber already has is not queued twice.
    /// Returns how many were queued.
    fn enqueue_subscriber_messages(
        &self,
        recipients: &[i64],
        item: &str,
        payload: Option<&str>,
        at_ms: i64,
    ) -> Result<usize, StoreError>;
    /// Whether `item` was ever queued for anyone.
    fn subscriber_item_exists(&self, item: &str) -> Result<bool, StoreError>;
    fn due_subscriber_messages(&self, now_ms: i64, limit: usize) -> Result<Vec<SubscriberMessage>, StoreError>;
    fn record_subscriber_message(&self, id: i64, outcome: &NotificationOutcome, at_ms: i64) -> Result<(), StoreError>;
    /// Each subscriber message, newest first (for the API and tests).
    fn subscriber_messages(&self, limit: usize) -> Result<Vec<SubscriberMessageRow>, StoreError>;
}

/// What changes about a subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriberChange {
    Confirmed,
    Unsubscribed,
    Failed,
}

/// A message due to a subscriber: `item` names what it tells ("confirm:HOUR", "update:POST:UPDATE").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberMessage {
    pub id: i64,
    pub subscriber_id: i64,
    pub item: String,
    pub attempts: u32,
    pub created_ms: i64,
    /// The content made at queue time (a scheduled report), as JSON.
    pub payload: Option<String>,
}

/// A subscriber message as the API shows it (without the address).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SubscriberMessageRow {
    pub id: i64,
    pub subscriber_id: i64,
    pub item: String,
    /// pending, delivered, suppressed or failed.
    pub status: String,
    pub attempts: u32,
    pub created_ms: i64,
    pub done_ms: Option<i64>,
    pub last_error: Option<String>,
}
