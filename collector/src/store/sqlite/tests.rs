//! The SQLite store against a real database file: batches, incidents, flapping, quorum,
//! staleness, retention and schema versions.

use super::*;
use crate::core::state::Status;
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
    assert_eq!(sent, vec![(first.id, "firing".into()), (first.id, "resolved".into()), (flapping.id, "firing".into())]);
    let kinds: Vec<&str> = first.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "resolved", "reopened", "resolved", "linked"], "one timeline: {:#?}", first.timeline);
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
