//! The store's conformance suite: every case runs against SQLite (a file in a temp dir) and
//! against a real PostgreSQL (Debian's, started by the test as the `postgres` user with its
//! own data directory, loopback port and socket directory), through the `Store` trait only.
//! Both stores take the core's decisions and write them; the same batches must leave the same
//! states, periods, incidents and notifications in both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use vakt_collector::core::incident::{IncidentKind, IncidentStatus};
use vakt_collector::core::policies::Policies;
use vakt_collector::core::routing::Router;
use vakt_collector::core::state::{Policy, Status};
use vakt_collector::store::{IncidentFilter, NodeInfo, StaleCheck, Store, StoreError};
use vakt_config::wire::{Batch, IngestAck, Sample, PROTOCOL_VERSION};
use vakt_config::CollectorConfig;
use vakt_tests::Postgres as PgServer;

// ------------------------------------------------------------------ the two databases

enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(PgServer),
}

impl Db {
    fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Db {
        Db::Postgres(PgServer::start())
    }

    /// The store as the collector opens it, with `tables` (receivers, routes) in its config.
    fn open_with(&self, tables: &str) -> Arc<dyn Store> {
        let text = match self {
            Db::Sqlite(dir) => format!("data_dir = {:?}\n{tables}", dir.path()),
            Db::Postgres(pg) => format!("[store]\nkind = \"postgres\"\nurl = {{ value = \"{}\" }}\n{tables}", pg.url()),
        };
        let config = Arc::new(CollectorConfig::parse(&text, Path::new("collector.toml")).unwrap());
        let store = vakt_collector::store::open(&config, Router::new(config.clone())).unwrap();
        // The cases act as the leader: time-driven writes are the leader's alone.
        let campaign = store.campaign(&node("test"), 60_000).unwrap();
        assert_eq!(campaign.epoch, Some(1), "the only node is elected");
        store
    }

    fn open(&self) -> Arc<dyn Store> {
        self.open_with("")
    }

    /// Another node's store on the same database, not yet campaigning.
    fn open_with_node_only(&self) -> Arc<dyn Store> {
        let Db::Postgres(pg) = self else { unreachable!("several nodes share PostgreSQL only") };
        let text = format!("[store]\nkind = \"postgres\"\nurl = {{ value = \"{}\" }}\n", pg.url());
        let config = Arc::new(CollectorConfig::parse(&text, Path::new("collector.toml")).unwrap());
        vakt_collector::store::open(&config, Router::new(config.clone())).unwrap()
    }

    /// Marks the schema as written by a newer collector.
    fn claim_schema_version(&self, version: i64) {
        match self {
            Db::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("vakt.db")).unwrap();
                conn.pragma_update(None, "user_version", version).unwrap();
            }
            Db::Postgres(pg) => {
                let mut client = ::postgres::Client::connect(&pg.url(), ::postgres::NoTls).unwrap();
                client.execute("UPDATE vakt_schema SET version = $1", &[&version]).unwrap();
            }
        }
    }
}

/// Each case as two tests: `sqlite::case` and `postgres::case`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { super::$case(&super::Db::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::$case(&super::Db::postgres()) } )*
        }
    };
}

conformance!(
    a_silence_is_unknown_from_where_the_last_result_stopped_vouching,
    a_replayed_batch_is_stored_once,
    incidents_open_resolve_and_survive_reopening,
    a_flapping_check_is_one_incident_not_a_stream,
    six_flaps_in_ten_minutes_are_one_incident_and_one_flapping_update,
    quorum_checks_go_down_only_when_enough_agents_agree,
    a_check_gone_stale_is_unknown_and_its_incident_resolves_on_recovery,
    retention_prunes_raw_samples_before_rollups,
    people_acknowledge_note_and_resolve,
    a_newer_schema_is_refused_with_a_clear_error,
    a_limit_takes_the_newest_or_the_oldest_samples_in_time_order,
    without_raw_samples_states_incidents_and_rollups_are_kept,
    remote_write_queues_each_stored_sample_per_target_until_taken,
    status_posts_keep_their_updates_and_reach_each_subscriber_once,
);

fn node(name: &str) -> NodeInfo {
    NodeInfo {
        node: name.into(),
        holder: format!("{name}#1"),
        version: "test".into(),
        config_hash: "h".into(),
        started_ms: 0,
    }
}

// ------------------------------------------------------------------ the cases

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
                perfdata: Vec::new(),
            })
            .collect(),
    }
}

/// Silence is not uptime, figures by hand: results every interval up to T, then nothing for
/// 30 minutes after the last result's interval, then results again. The report counts
/// exactly 30 unknown minutes and no more up time than the results vouch for, at a 10 s, a
/// 1 min and a 5 min interval, whether or not the evaluator declared the check stale in
/// between (it does so only after 3 intervals, at least 30 s).
fn a_silence_is_unknown_from_where_the_last_result_stopped_vouching(db: &Db) {
    const MIN: i64 = 60_000;
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % MIN;
    for (n, interval) in [10_000, MIN, 5 * MIN].into_iter().enumerate() {
        for evaluator_declared_it in [false, true] {
            let store = db.open();
            let check = format!("web{n}{evaluator_declared_it}");
            let on = |b: Batch| Batch {
                samples: b.samples.into_iter().map(|s| Sample { check: check.clone(), ..s }).collect(),
                ..b
            };
            let mut p = Policies::default();
            p.interval.insert(check.clone(), interval);
            // Up from t0: results at t0, t0 + i, ..., up to t (an hour of them).
            let t = t0 + 60 * MIN;
            let before: Vec<(i64, bool)> = (0..=60 * MIN / interval).map(|k| (t0 + k * interval, true)).collect();
            let seq = 10 * n as u64 + 2 * u64::from(evaluator_declared_it);
            store.commit_batch(&on(batch(seq + 1, &before)), t, &p).unwrap();
            let silence_end = t + interval + 30 * MIN;
            if evaluator_declared_it {
                let stale = StaleCheck {
                    check: check.clone(),
                    unknown_from_ms: vakt_collector::core::state::vouched_until(t, Some(interval), 3 * interval),
                    last_received_ms: Some(t),
                };
                assert_eq!(store.expire_checks(&[stale]).unwrap(), std::slice::from_ref(&check));
            }
            let after: Vec<(i64, bool)> = (0..=10).map(|k| (silence_end + k * interval, true)).collect();
            store.commit_batch(&on(batch(seq + 2, &after)), silence_end, &p).unwrap();
            let to = silence_end + 10 * interval;
            let periods = store.periods(std::slice::from_ref(&check), t0, to).unwrap();
            let counts = vakt_collector::core::slo::build_series(t0, to, &periods, &[], &[]).range(t0, to);
            assert_eq!(
                (counts.unknown_ms, counts.down_ms),
                (30 * MIN as u64, 0),
                "interval {interval} ms, declared stale: {evaluator_declared_it}"
            );
            // Unknown to up is a change the state machine made; a resumption after a gap it
            // never declared is not.
            let changes = if evaluator_declared_it { 2 } else { 1 };
            assert_eq!(store.state_changes(&check, t0 - 1).unwrap(), changes, "declared: {evaluator_declared_it}");
        }
    }
}

fn a_replayed_batch_is_stored_once(db: &Db) {
    let store = db.open();
    let p = Policies::default();
    let first = store.commit_batch(&batch(1, &[(1, true), (2, true)]), 10, &p).unwrap();
    assert_eq!(first.ack.unwrap(), IngestAck::new(1, 2, false));
    let again = store.commit_batch(&batch(1, &[(1, true), (2, true)]), 11, &p).unwrap();
    assert_eq!(again.ack.unwrap(), IngestAck::new(1, 0, true));
    assert_eq!(store.sample_count(Some("web")).unwrap(), 2);
    // The same number with other content (a state directory restored from a copy) is a batch.
    let reused = store.commit_batch(&batch(1, &[(3, true)]), 12, &p).unwrap();
    assert!(reused.sequence_reused);
    assert_eq!(store.sample_count(None).unwrap(), 3);
    let agents = store.agents().unwrap();
    assert_eq!((agents[0].name.as_str(), agents[0].batches, agents[0].samples), ("a", 2, 3));
}

fn incidents_open_resolve_and_survive_reopening(db: &Db) {
    let p = Policies::default(); // fail_after 3, recover_after 2
    {
        let store = db.open();
        store.commit_batch(&batch(1, &[(1_000, true), (2_000, false), (3_000, false)]), 0, &p).unwrap();
        assert!(store.incidents(&IncidentFilter::default()).unwrap().is_empty());
        let out = store.commit_batch(&batch(2, &[(4_000, false), (5_000, false)]), 0, &p).unwrap();
        assert_eq!(out.incidents_opened.len(), 1, "one incident however long it keeps failing");
    }
    // Reopen: state and incident are still there; recovery resolves the same incident.
    let store = db.open();
    let open = store.incidents(&IncidentFilter { status: Some(IncidentStatus::Open), ..Default::default() }).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].opened_ms, 2_000, "opened at the first failure");
    let out = store.commit_batch(&batch(3, &[(6_000, true), (7_000, true)]), 0, &p).unwrap();
    assert_eq!(out.incidents_resolved, vec![open[0].id]);
    let inc = store.incident(open[0].id).unwrap().unwrap();
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(inc.resolved_ms, Some(7_000));
    let kinds: Vec<&str> = inc.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "resolved"]);
    assert!(inc.timeline[1].message.ends_with("after 5 s"), "{}", inc.timeline[1].message);
    let overlapping = IncidentFilter { overlapping: Some((6_500, 8_000)), ..Default::default() };
    assert_eq!(store.incidents(&overlapping).unwrap().len(), 1);
    let before = IncidentFilter { overlapping: Some((8_000, 9_000)), ..Default::default() };
    assert!(store.incidents(&before).unwrap().is_empty());
}

fn a_flapping_check_is_one_incident_not_a_stream(db: &Db) {
    let store = db.open();
    let mut p = Policies { flap_threshold: 4, ..Policies::default() };
    p.flap.insert("web".into(), Policy { fail_after: 1, recover_after: 1 });
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
/// resolved for the first down, firing for "flapping".
fn six_flaps_in_ten_minutes_are_one_incident_and_one_flapping_update(db: &Db) {
    let store = db.open_with(
        "[receivers.pager]\nkind = \"webhook\"\nurl = { value = \"http://127.0.0.1:9\" }\n\
         [[routes]]\nreceivers = [\"pager\"]\n",
    );
    let mut p = Policies { flap_threshold: 5, flap_window_ms: 600_000, ..Policies::default() };
    p.flap.insert("web".into(), Policy { fail_after: 1, recover_after: 1 });
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
    assert_eq!(sent, vec![(first.id, "firing".into()), (first.id, "resolved".into()), (flapping.id, "firing".into())]);
    let kinds: Vec<&str> = first.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "resolved", "reopened", "resolved", "linked"], "one timeline: {:#?}", first.timeline);
    assert!(flapping
        .timeline
        .iter()
        .any(|e| e.message == format!("folds incident(s) {} of web from the flap window", first.id)));
}

fn quorum_checks_go_down_only_when_enough_agents_agree(db: &Db) {
    let store = db.open();
    let mut p = Policies::default();
    p.flap.insert("web".into(), Policy { fail_after: 1, recover_after: 1 });
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

fn a_check_gone_stale_is_unknown_and_its_incident_resolves_on_recovery(db: &Db) {
    let store = db.open();
    let p = Policies::default();
    store.commit_batch(&batch(1, &[(1_000, true), (2_000, false), (3_000, false), (4_000, false)]), 5_000, &p).unwrap();
    let stale =
        |received: i64| StaleCheck { check: "web".into(), unknown_from_ms: 60_000, last_received_ms: Some(received) };
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

fn retention_prunes_raw_samples_before_rollups(db: &Db) {
    let store = db.open();
    let p = Policies::default();
    store.commit_batch(&batch(1, &[(60_000, true), (3_600_000, true)]), 0, &p).unwrap();
    let (samples, rollups) = store.prune(120_000, 0).unwrap();
    assert_eq!((samples, rollups), (1, 0));
    assert_eq!(store.sample_count(None).unwrap(), 1);
    // The rollup of the pruned minute still counts for SLOs.
    let events = store.minute_events(&["web".into()], 0, 7_200_000, None).unwrap();
    assert_eq!(events.iter().map(|e| e.events).sum::<u64>(), 2);
    assert!(store.merged_latency(&["web".into()], 0, 7_200_000).unwrap().is_some());
    let (_, rollups) = store.prune(120_000, 120_000).unwrap();
    assert_eq!(rollups, 1);
}

/// People's operations through the store: an acknowledgement once (a second changes nothing),
/// a note, a resolution by hand told to the receiver the incident was announced to; a resolved
/// incident refuses another resolution but takes notes.
fn people_acknowledge_note_and_resolve(db: &Db) {
    use vakt_collector::core::incident::{ManualError, ManualOp};
    let store = db.open_with(
        "[receivers.pager]\nkind = \"webhook\"\nurl = { value = \"http://127.0.0.1:9\" }\n\
         [[routes]]\nreceivers = [\"pager\"]\n",
    );
    let p = Policies::default();
    let out = store.commit_batch(&batch(1, &[(1_000, false), (2_000, false), (3_000, false)]), 3_000, &p).unwrap();
    let id = out.incidents_opened[0];
    let ack = ManualOp::Acknowledge { by: "alice".into(), note: None };
    let acked = store.manual(id, &ack, 4_000).unwrap().unwrap();
    assert_eq!((acked.status, acked.acknowledged_by.as_deref()), (IncidentStatus::Acknowledged, Some("alice")));
    let again = store.manual(id, &ManualOp::Acknowledge { by: "bob".into(), note: None }, 5_000).unwrap().unwrap();
    assert_eq!((again.acknowledged_ms, again.acknowledged_by.as_deref()), (Some(4_000), Some("alice")));
    store.manual(id, &ManualOp::Note { by: "alice".into(), text: "restarting".into() }, 6_000).unwrap().unwrap();
    let resolve = ManualOp::Resolve { by: "alice".into(), note: Some("fixed".into()) };
    let done = store.manual(id, &resolve, 7_000).unwrap().unwrap();
    assert_eq!((done.status, done.resolved_ms), (IncidentStatus::Resolved, Some(7_000)));
    let kinds: Vec<&str> = done.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "acknowledged", "note", "resolved"]);
    let mut sent: Vec<String> = store.notifications(Some(id)).unwrap().into_iter().map(|n| n.event).collect();
    sent.sort();
    assert_eq!(sent, ["firing", "resolved"]);
    assert_eq!(store.manual(id, &resolve, 8_000).unwrap().unwrap_err(), ManualError::Resolved(id));
    assert!(store.manual(id, &ManualOp::Note { by: "bob".into(), text: "postmortem".into() }, 9_000).unwrap().is_ok());
    assert_eq!(store.manual(id + 100, &resolve, 9_000).unwrap().unwrap_err(), ManualError::NotFound(id + 100));
}

/// `limit` with `newest` picks the last samples of the range, without it the first; either way
/// the answer runs forward in time.
fn a_limit_takes_the_newest_or_the_oldest_samples_in_time_order(db: &Db) {
    use vakt_collector::store::SampleFilter;
    let store = db.open();
    let results: Vec<(i64, bool)> = (1..=5).map(|k| (k * 1_000, true)).collect();
    store.commit_batch(&batch(1, &results), 6_000, &Policies::default()).unwrap();
    let times = |newest: bool| -> Vec<i64> {
        let filter = SampleFilter { limit: Some(2), newest, ..Default::default() };
        store.samples(&filter).unwrap().into_iter().map(|s| s.timestamp_ms).collect()
    };
    assert_eq!(times(true), [4_000, 5_000]);
    assert_eq!(times(false), [1_000, 2_000]);
}

fn a_newer_schema_is_refused_with_a_clear_error(db: &Db) {
    drop(db.open());
    db.claim_schema_version(99);
    let text = match db {
        Db::Sqlite(dir) => format!("data_dir = {:?}\n", dir.path()),
        Db::Postgres(pg) => format!("[store]\nkind = \"postgres\"\nurl = {{ value = \"{}\" }}\n", pg.url()),
    };
    let config = CollectorConfig::parse(&text, Path::new("collector.toml")).unwrap();
    let err = vakt_collector::store::open(&config, Router::default()).err().unwrap().to_string();
    assert!(err.contains("schema version 99 is newer"), "{err}");
}

// ------------------------------------------------------------------ several nodes on PostgreSQL

/// Ends the current leader's lease now, as if it had not renewed it for a whole lease.
fn lapse_lease(pg: &PgServer) {
    let mut client = ::postgres::Client::connect(&pg.url(), ::postgres::NoTls).unwrap();
    let n =
        client.execute("UPDATE vakt_leader SET lease_until = clock_timestamp() - interval '1 second'", &[]).unwrap();
    assert_eq!(n, 1);
}

/// Two collectors on one database: one leads at a time; a leader whose lease lapsed (frozen,
/// cut off) and was replaced commits no time-driven write — not an incident, not a
/// notification, not a resolution, not a prune — while the new leader's go through.
#[test]
fn postgres_elects_one_leader_and_fences_the_old_one() {
    let db = Db::postgres();
    let Db::Postgres(pg) = &db else { unreachable!() };
    let a = db.open_with("");
    let b = db.open_with_node_only();
    let (na, nb) = (node("test"), node("b"));
    let lease = 60_000;
    // `a` was elected when opened (term 1); `b` finds it leading.
    let seen = b.campaign(&nb, lease).unwrap();
    assert_eq!((seen.epoch, seen.leader.as_deref()), (None, Some("test")));
    assert!(seen.clock_offset_ms.abs() < 1_000, "one machine, one clock: {}", seen.clock_offset_ms);
    let refused = b.open_incidents(&[open_action("web")]).unwrap_err();
    assert!(matches!(refused, StoreError::NotLeader(_)), "a follower's time-driven write: {refused}");
    // `a` renews: the same term.
    assert_eq!(a.campaign(&na, lease).unwrap().epoch, Some(1));

    // `a` stops renewing; `b` takes over in term 2.
    lapse_lease(pg);
    let won = b.campaign(&nb, lease).unwrap();
    assert_eq!((won.epoch, won.leader.as_deref()), (Some(2), Some("b")));

    // `a` resumes believing it leads: every leader-only write is refused with the reason.
    let err = a.open_incidents(&[open_action("web")]).unwrap_err().to_string();
    assert!(err.contains("not the leader: term 1 is over: b leads in term 2"), "{err}");
    assert!(a.enqueue_notifications(&[(1, "ops".into(), "repeat".into())], 0).is_err());
    assert!(a.resolve_incidents(&[]).is_err());
    assert!(a.prune(0, 0).is_err());
    assert!(a.expire_checks(&[]).is_err());
    assert!(a.record_notification(1, &vakt_collector::store::NotificationOutcome::Delivered, 0).is_err());
    assert!(a.incidents(&IncidentFilter::default()).unwrap().is_empty(), "nothing the old leader tried was committed");
    // …and its campaign does not take the live lease back.
    let back = a.campaign(&na, lease).unwrap();
    assert_eq!((back.epoch, back.leader.as_deref()), (None, Some("b")));

    // The new leader's writes go through.
    assert_eq!(b.open_incidents(&[open_action("web")]).unwrap().len(), 1);

    // Both nodes are listed, with who leads.
    let view = a.cluster().unwrap();
    assert_eq!((view.leader.as_deref(), view.epoch), (Some("b"), Some(2)));
    let names: Vec<&str> = view.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["b", "test"]);

    // A restarted `b` (a new process: another holder) is a new term, not the old one's.
    lapse_lease(pg);
    let restarted = NodeInfo { holder: "b#2".into(), ..nb };
    assert_eq!(b.campaign(&restarted, lease).unwrap().epoch, Some(3));

    // A leader whose session ends (its process died) is replaced at the next campaign, not
    // when its 60 s lease runs out; one that is merely slow is not.
    let c = db.open_with_node_only();
    let nc = node("c");
    assert_eq!(c.campaign(&nc, lease).unwrap().epoch, None, "b is alive and holds its lease");
    drop(b);
    // b's server process ends (releasing its lock) a moment after its connection closes.
    let asked = std::time::Instant::now();
    let took = loop {
        let took = c.campaign(&nc, lease).unwrap();
        if took.epoch.is_some() || asked.elapsed() > std::time::Duration::from_secs(10) {
            break took;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!((took.epoch, took.leader.as_deref()), (Some(4), Some("c")), "long before b's 60 s lease ran out");
    drop(a);
}

fn open_action(check: &str) -> vakt_collector::core::incident::Action {
    let at_ms = 1_700_000_000_000;
    vakt_collector::core::incident::Action::Open {
        kind: IncidentKind::CheckDown,
        subject: check.into(),
        title: format!("{check} is down"),
        severity: "critical".into(),
        priority: "P2".into(),
        opened_ms: at_ms,
        event: vakt_collector::core::incident::TimelineEvent { at_ms, kind: "opened".into(), message: "down".into() },
    }
}

// ------------------------------------------------------------------ moving a site to PostgreSQL

/// `store copy`: a SQLite site with history (an incident opened, acknowledged, noted and
/// resolved with its notifications; a second one still open; samples, periods, rollups, a
/// maintenance window, a silence) reads the same through the PostgreSQL store after the copy;
/// new incidents there continue the numbering; a second copy into the filled database is
/// refused and changes nothing.
#[test]
fn store_copy_moves_a_sqlite_site_to_postgres_whole() {
    use vakt_collector::core::incident::ManualOp;
    let routes = "[receivers.pager]\nkind = \"webhook\"\nurl = { value = \"http://127.0.0.1:9\" }\n\
                  [[routes]]\nreceivers = [\"pager\"]\n";
    let lite = Db::sqlite();
    let p = Policies::default();
    let (first, second) = {
        let store = lite.open_with(routes);
        let out = store.commit_batch(&batch(1, &[(1_000, false), (2_000, false), (3_000, false)]), 3_000, &p).unwrap();
        let first = out.incidents_opened[0];
        store.manual(first, &ManualOp::Acknowledge { by: "alice".into(), note: None }, 4_000).unwrap().unwrap();
        store.manual(first, &ManualOp::Note { by: "alice".into(), text: "restarting".into() }, 5_000).unwrap().unwrap();
        store.commit_batch(&batch(2, &[(6_000, true), (7_000, true)]), 7_000, &p).unwrap();
        // An hour later (past the window in which a recovery reopens the incident before it).
        let out = store
            .commit_batch(&batch(3, &[(3_608_000, false), (3_609_000, false), (3_610_000, false)]), 3_610_000, &p)
            .unwrap();
        store.record_notification(1, &vakt_collector::store::NotificationOutcome::Delivered, 11_000).unwrap();
        let window = vakt_collector::core::maintenance::Occurrence {
            name: "patching".into(),
            start_ms: 20_000,
            end_ms: 30_000,
            services: vec!["shop".into()],
            change_id: Some("CHG-1".into()),
            exclude_from_sla: true,
            source: "api",
            created: None,
        };
        store.add_maintenance(&window).unwrap();
        (first, out.incidents_opened[0])
    };
    let before = lite.open_with(routes);
    let pg = Db::postgres();
    let Db::Sqlite(dir) = &lite else { unreachable!() };
    let Db::Postgres(server) = &pg else { unreachable!() };
    let copied = vakt_collector::store::copy::sqlite_to_postgres(dir.path(), &server.url()).unwrap();
    let rows = |t: &str| copied.tables.iter().find(|(n, _)| n == t).unwrap().1;
    assert_eq!((rows("incidents"), rows("samples"), rows("maintenance_windows")), (2, 8, 1));

    let after = pg.open_with(routes);
    let all = IncidentFilter::default();
    assert_eq!(after.incidents(&all).unwrap(), before.incidents(&all).unwrap(), "incidents with their timelines");
    assert_eq!(after.incident(first).unwrap().unwrap().acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(after.check_states().unwrap(), before.check_states().unwrap());
    let checks = ["web".to_string()];
    assert_eq!(after.periods(&checks, 0, 4_000_000).unwrap(), before.periods(&checks, 0, 4_000_000).unwrap());
    assert_eq!(
        after.minute_events(&checks, 0, 4_000_000, None).unwrap(),
        before.minute_events(&checks, 0, 4_000_000, None).unwrap()
    );
    let samples = vakt_collector::store::SampleFilter::default();
    assert_eq!(after.samples(&samples).unwrap(), before.samples(&samples).unwrap());
    assert_eq!(after.notifications(None).unwrap(), before.notifications(None).unwrap());
    assert_eq!(after.agents().unwrap(), before.agents().unwrap());
    assert_eq!(after.maintenance(0, 100_000).unwrap(), before.maintenance(0, 100_000).unwrap());
    assert_eq!(
        after.merged_latency(&checks, 0, 4_000_000).unwrap(),
        before.merged_latency(&checks, 0, 4_000_000).unwrap()
    );

    // The site goes on in PostgreSQL: the open incident resolves; a new one is numbered after.
    let out = after.commit_batch(&batch(4, &[(3_611_000, true), (3_612_000, true)]), 3_612_000, &p).unwrap();
    assert_eq!(out.incidents_resolved, vec![second]);
    let t = 20_000_000; // hours after: a new outage, not a reopening
    let out =
        after.commit_batch(&batch(5, &[(t, false), (t + 1_000, false), (t + 2_000, false)]), t + 2_000, &p).unwrap();
    assert_eq!(out.incidents_opened, vec![second + 1]);
    let replay = batch(1, &[(1_000, false), (2_000, false), (3_000, false)]);
    assert!(
        after.commit_batch(&replay, t + 3_000, &p).unwrap().ack.unwrap().duplicate,
        "a batch copied over is a duplicate"
    );

    let err = vakt_collector::store::copy::sqlite_to_postgres(dir.path(), &server.url()).unwrap_err().to_string();
    assert!(err.contains("holds") && err.contains("copy into an empty database"), "{err}");
    assert_eq!(after.incidents(&all).unwrap().len(), 3, "the refused copy changed nothing");
}

/// Every state change carries its precondition: eight people on two collectors acknowledging
/// and then resolving the same incident at once leave one acknowledgement, one resolution and
/// one resolution notification.
#[test]
fn postgres_racing_nodes_change_an_incident_once() {
    use vakt_collector::core::incident::ManualOp;
    let routes = "[receivers.pager]\nkind = \"webhook\"\nurl = { value = \"http://127.0.0.1:9\" }\n\
                  [[routes]]\nreceivers = [\"pager\"]\n";
    let db = Db::postgres();
    let (a, b) = (db.open_with(routes), db.open_with(routes));
    let p = Policies::default();
    let id = a
        .commit_batch(&batch(1, &[(1_000, false), (2_000, false), (3_000, false)]), 3_000, &p)
        .unwrap()
        .incidents_opened[0];
    for (at, op) in [
        (4_000, ManualOp::Acknowledge { by: "x".into(), note: None }),
        (5_000, ManualOp::Resolve { by: "x".into(), note: None }),
    ] {
        std::thread::scope(|s| {
            for i in 0..8 {
                let (store, op) = (if i % 2 == 0 { a.clone() } else { b.clone() }, op.clone());
                s.spawn(move || {
                    let _ = store.manual(id, &op, at + i).unwrap();
                });
            }
        });
    }
    let incident = a.incident(id).unwrap().unwrap();
    let kinds: Vec<&str> = incident.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "acknowledged", "resolved"], "{:?}", incident.timeline);
    let mut events: Vec<String> = a.notifications(Some(id)).unwrap().into_iter().map(|n| n.event).collect();
    events.sort();
    assert_eq!(events, ["firing", "resolved"]);
}

/// `store_raw_samples = false`: no raw rows, but the same states, incident and per-minute
/// figures as with them (three failures then two successes in one minute: 5 events, 3 bad).
fn without_raw_samples_states_incidents_and_rollups_are_kept(db: &Db) {
    let store = db.open();
    let p = Policies { store_raw_samples: false, ..Policies::default() };
    let t0 = 1_700_000_040_000; // the start of a minute
    let out = store
        .commit_batch(&batch(1, &[(t0, false), (t0 + 1_000, false), (t0 + 2_000, false)]), t0 + 2_000, &p)
        .unwrap();
    assert_eq!(out.incidents_opened.len(), 1);
    store.commit_batch(&batch(2, &[(t0 + 3_000, true), (t0 + 4_000, true)]), t0 + 4_000, &p).unwrap();
    assert_eq!(store.sample_count(None).unwrap(), 0, "no raw samples kept");
    let minutes = store.minute_events(&["web".into()], t0, t0 + 60_000, None).unwrap();
    assert_eq!(minutes.len(), 1);
    assert_eq!((minutes[0].events, minutes[0].bad_events), (5, 3));
    assert!(store.merged_latency(&["web".into()], t0, t0 + 60_000).unwrap().is_some());
    let resolved = store.incidents(&IncidentFilter { status: Some(IncidentStatus::Resolved), ..Default::default() });
    assert_eq!(resolved.unwrap().len(), 1, "the outage opened and resolved as ever");
}

/// Each stored sample is queued once per remote-write target, in order, and stays queued until
/// taken off; a replayed batch queues nothing more.
fn remote_write_queues_each_stored_sample_per_target_until_taken(db: &Db) {
    let store = db.open();
    let p = Policies { remote_write: vec!["prom".into(), "vm".into()], ..Policies::default() };
    let b = batch(1, &[(1_000, true), (2_000, false)]);
    store.commit_batch(&b, 2_000, &p).unwrap();
    store.commit_batch(&b, 3_000, &p).unwrap(); // a replay
    for target in ["prom", "vm"] {
        let queued = store.remote_write_queue(target, 10).unwrap();
        let got: Vec<(i64, bool)> = queued.iter().map(|q| (q.timestamp_ms, q.success)).collect();
        assert_eq!(got, [(1_000, true), (2_000, false)], "{target}");
        assert_eq!(queued[0].latency_seconds, Some(0.01));
        assert_eq!(store.remote_write_backlog(target).unwrap(), (2, Some(1_000)));
    }
    let first = store.remote_write_queue("prom", 1).unwrap();
    store.remote_write_done("prom", &[first[0].id]).unwrap();
    assert_eq!(store.remote_write_backlog("prom").unwrap(), (1, Some(2_000)));
    assert_eq!(store.remote_write_backlog("vm").unwrap(), (2, Some(1_000)), "each target has its own queue");
    assert!(store.remote_write_queue("nobody", 10).unwrap().is_empty());
}

/// A batch costs the same statements on PostgreSQL whether it carries one check or twenty: the
/// loads, the samples, the rollups, the states and the periods each go in one statement for the
/// whole batch, not one per check (counted by the server itself, `pg_stat_statements`). Twice:
/// for checks seen the first time (each starts a period) and for steady ones.
#[test]
fn postgres_a_batch_costs_the_same_statements_for_one_check_or_twenty() {
    let pg = PgServer::start_with("-c shared_preload_libraries=pg_stat_statements");
    let db = Db::Postgres(pg);
    let store = db.open();
    let Db::Postgres(pg) = &db else { unreachable!() };
    let mut stats = ::postgres::Client::connect(&pg.url(), ::postgres::NoTls).unwrap();
    stats.batch_execute("CREATE EXTENSION pg_stat_statements").unwrap();
    let p = Policies::default();
    let mut statements = |agent: &str, checks: usize, seq: u64, at: i64| -> i64 {
        let b = Batch {
            agent: agent.into(),
            sequence: seq,
            samples: (0..checks)
                .flat_map(|c| {
                    let mut ok = batch(seq, &[(at, true), (at + 500, true)]).samples;
                    for s in &mut ok {
                        s.check = format!("{agent}-c{c}");
                    }
                    ok
                })
                .collect(),
            ..batch(seq, &[])
        };
        stats.execute("SELECT pg_stat_statements_reset()", &[]).unwrap();
        let outcome = store.commit_batch(&b, at + 1_000, &p).unwrap();
        assert_eq!(outcome.ack.unwrap().accepted, checks * 2);
        let row = stats
            .query_one(
                "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'",
                &[],
            )
            .unwrap();
        row.get(0)
    };
    let (first_one, first_twenty) = (statements("one", 1, 1, 10_000), statements("twenty", 20, 1, 10_000));
    let (steady_one, steady_twenty) = (statements("one", 1, 2, 20_000), statements("twenty", 20, 2, 20_000));
    assert!(first_one > 5 && steady_one > 5, "the count sees the batch: {first_one}, {steady_one}");
    assert_eq!(first_twenty, first_one, "new checks: twenty cost what one costs");
    assert_eq!(steady_twenty, steady_one, "steady checks: twenty cost what one costs");
    assert_eq!(db_states(&store, "twenty-c"), 20);
}

fn db_states(store: &Arc<dyn Store>, prefix: &str) -> usize {
    store.check_states().unwrap().iter().filter(|(c, _)| c.starts_with(prefix)).count()
}

/// A post with updates, subscribers who confirm and leave, and their outbox: each update is
/// queued once per subscriber it reaches, in the same transaction as the update; queuing the
/// same item again adds nothing; an unsubscribed address gets nothing more, not even what was
/// already queued.
fn status_posts_keep_their_updates_and_reach_each_subscriber_once(db: &Db) {
    use vakt_collector::core::status_post::{Impact, PostStatus, PostUpdate, StatusPost, Subscriber};
    use vakt_collector::store::{NotificationOutcome, SubscriberChange};
    let store = db.open();
    let sub = |address: &str, token: &str| Subscriber {
        id: 0,
        kind: "email".into(),
        address: address.into(),
        services: vec!["shop".into()],
        token: token.into(),
        created_ms: 1_000,
        confirmed_ms: None,
        unsubscribed_ms: None,
        failed_ms: None,
    };
    let (ann, created) = store.add_subscriber(&sub("ann@example.com", "tok-ann")).unwrap();
    assert!(created);
    store.enqueue_subscriber_messages(&[ann], "confirm", None, 1_000).unwrap();
    let (again, created) = store.add_subscriber(&sub("ann@example.com", "tok-other")).unwrap();
    assert_eq!((again, created), (ann, false), "the same address is the same subscriber");
    store.enqueue_subscriber_messages(&[again], "confirm", None, 1_000).unwrap();
    let (bob, _) = store.add_subscriber(&sub("bob@example.com", "tok-bob")).unwrap();
    let due = store.due_subscriber_messages(2_000, 10).unwrap();
    assert_eq!(due.len(), 1, "one confirmation, not two: {due:?}");
    assert_eq!((due[0].subscriber_id, due[0].item.as_str()), (ann, "confirm"));
    store.record_subscriber_message(due[0].id, &NotificationOutcome::Delivered, 2_000).unwrap();
    store.update_subscriber(ann, SubscriberChange::Confirmed, 3_000).unwrap();
    store.update_subscriber(bob, SubscriberChange::Confirmed, 3_000).unwrap();
    assert_eq!(store.subscriber_by_token("tok-ann").unwrap().unwrap().confirmed_ms, Some(3_000));
    assert!(store.subscriber_by_token("tok-other").unwrap().is_none(), "the second request changed nothing");

    let update = |status: PostStatus, message: &str, at_ms: i64| PostUpdate {
        id: 0,
        status,
        message: message.into(),
        at_ms,
        by: "alice".into(),
    };
    let post = StatusPost {
        id: 0,
        title: "Shop is slow".into(),
        impact: Impact::Degraded,
        services: vec!["shop".into()],
        incident_id: Some(7),
        status: PostStatus::Investigating,
        created_ms: 10_000,
        resolved_ms: None,
        postmortem: None,
        updates: vec![update(PostStatus::Investigating, "Looking into it", 10_000)],
    };
    let id = store.add_post(&post, &[ann, bob]).unwrap();
    let u2 = store.add_post_update(id, &update(PostStatus::Identified, "A full disk", 20_000), &[ann, bob]).unwrap();
    assert!(u2.is_some());
    assert_eq!(store.add_post_update(id + 100, &update(PostStatus::Resolved, "x", 1), &[ann]).unwrap(), None);
    let due = store.due_subscriber_messages(20_000, 10).unwrap();
    let items: Vec<(i64, &str)> = due.iter().map(|m| (m.subscriber_id, m.item.as_str())).collect();
    assert_eq!(items.len(), 4, "two updates × two subscribers: {items:?}");
    assert_eq!(store.enqueue_subscriber_messages(&[ann, bob], &due[0].item, None, 21_000).unwrap(), 0, "never twice");
    assert!(store.subscriber_item_exists(&due[0].item).unwrap());
    assert!(!store.subscriber_item_exists("report:none:2026-11").unwrap());
    // Content made at queue time travels with the message.
    assert_eq!(store.enqueue_subscriber_messages(&[ann], "report:m:2026-11", Some("{\"s\":1}"), 20_000).unwrap(), 1);
    let with = store.due_subscriber_messages(20_000, 10).unwrap();
    let report = with.iter().find(|m| m.item == "report:m:2026-11").unwrap();
    assert_eq!(report.payload.as_deref(), Some("{\"s\":1}"));
    store.record_subscriber_message(report.id, &NotificationOutcome::Delivered, 20_000).unwrap();

    store.update_subscriber(bob, SubscriberChange::Unsubscribed, 21_000).unwrap();
    let due = store.due_subscriber_messages(21_000, 10).unwrap();
    assert!(due.iter().all(|m| m.subscriber_id == ann), "bob's queued messages are dropped: {due:?}");
    store
        .record_subscriber_message(
            due[0].id,
            &NotificationOutcome::Retry { next_attempt_ms: 60_000, error: "421 try later".into() },
            21_000,
        )
        .unwrap();
    assert_eq!(store.due_subscriber_messages(21_000, 10).unwrap().len(), 1, "the retried one waits");
    let rows = store.subscriber_messages(10).unwrap();
    assert_eq!(rows.iter().filter(|r| r.status == "suppressed").count(), 2, "{rows:?}");

    store.add_post_update(id, &update(PostStatus::Resolved, "Fixed", 30_000), &[]).unwrap();
    assert!(store.set_postmortem(id, "The disk filled with logs.").unwrap());
    let p = store.post(id).unwrap().unwrap();
    assert_eq!((p.status, p.resolved_ms, p.incident_id), (PostStatus::Resolved, Some(30_000), Some(7)));
    assert_eq!(
        p.updates.iter().map(|u| u.message.as_str()).collect::<Vec<_>>(),
        ["Looking into it", "A full disk", "Fixed"]
    );
    assert_eq!(p.postmortem.as_deref(), Some("The disk filled with logs."));
    // Open 10 s to 30 s: found by a window overlapping that, not by one after it.
    assert_eq!(store.posts(Some((25_000, 26_000)), 10).unwrap().len(), 1);
    assert!(store.posts(Some((30_001, 40_000)), 10).unwrap().is_empty());
    assert_eq!(store.posts(None, 10).unwrap()[0].updates.len(), 3);
}
