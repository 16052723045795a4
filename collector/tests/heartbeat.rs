//! Heartbeat checks with the clock injected: the collector's own evaluation, on its embedded
//! store, is asked at chosen instants whether a job is late. Figures by hand in each case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use vakt_collector::app::App;
use vakt_collector::core::heartbeat::Signal;
use vakt_collector::core::incident::IncidentStatus;
use vakt_collector::core::state::Status;
use vakt_collector::evaluate::{evaluate, heartbeat::ping};
use vakt_collector::store::IncidentFilter;
use vakt_config::CollectorConfig;

const MIN: i64 = 60_000;
const KEY: &str = "0f6e3c2a-9d1b-4c53-8a77-5b2f1e9d4c10";

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn app(dir: &Path, check: &str) -> App {
    let text = format!(
        "data_dir = {dir:?}\n[checks.backup]\nkind = \"heartbeat\"\nping_key = {{ value = \"{KEY}\" }}\n{check}"
    );
    App::open(CollectorConfig::parse(&text, Path::new("collector.toml")).unwrap()).unwrap()
}

fn status(app: &App) -> Status {
    app.store.check_states().unwrap().into_iter().find(|(c, _)| c == "backup").map(|(_, s)| s.status).unwrap()
}

fn open_incidents(app: &App) -> Vec<vakt_collector::core::incident::Incident> {
    app.store.incidents(&IncidentFilter { status: Some(IncidentStatus::Open), ..Default::default() }).unwrap()
}

/// `0 2 * * *` in Europe/Oslo with 30 minutes' grace. The job pinged at 02:04 local on
/// Saturday the 28th (01:04 UTC, CET). The next run is due 02:00 local on the 29th = 01:00 UTC,
/// late at 01:30 UTC. At 01:29:59 nothing is wrong; at 01:30:00 the check is down with one
/// incident saying which run was missed; a ping at 01:40 resolves it.
#[test]
fn a_missed_cron_run_opens_an_incident_at_due_plus_grace() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "schedule = \"0 2 * * *\"\ntz = \"Europe/Oslo\"\ngrace = \"30m\"\n");
    assert_eq!(app.heartbeats.check_of(KEY), Some("backup"));
    assert_eq!(app.heartbeats.check_of("0f6e3c2a-9d1b-4c53-8a77-5b2f1e9d4c11"), None);

    // Never pinged: not judged, whatever the time.
    evaluate(&app, ms("2026-11-28T00:00:00Z")).unwrap();
    assert!(app.store.check_states().unwrap().iter().all(|(c, _)| c != "backup"));

    ping(&app, "backup", Signal::Success, b"", ms("2026-11-28T01:04:00Z")).unwrap();
    assert_eq!(status(&app), Status::Up);
    for at in ["2026-11-28T12:00:00Z", "2026-11-29T01:00:00Z", "2026-11-29T01:29:59.999Z"] {
        evaluate(&app, ms(at)).unwrap();
        assert_eq!(status(&app), Status::Up, "at {at}");
    }
    evaluate(&app, ms("2026-11-29T01:30:00Z")).unwrap();
    assert_eq!(status(&app), Status::Down);
    let open = open_incidents(&app);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].opened_ms, ms("2026-11-29T01:30:00Z"), "opened when the run became late");
    assert!(
        open[0]
            .title
            .contains("the run due at 2026-11-29 02:00 CET (0 2 * * * Europe/Oslo) did not ping (30 min grace)"),
        "{}",
        open[0].title
    );
    // Asked again at the same instant and a little later: still one incident, nothing new.
    evaluate(&app, ms("2026-11-29T01:30:00Z")).unwrap();
    evaluate(&app, ms("2026-11-29T01:35:00Z")).unwrap();
    assert_eq!(open_incidents(&app).len(), 1);

    // The late run pings: up again, resolved.
    ping(&app, "backup", Signal::Success, b"", ms("2026-11-29T01:40:00Z")).unwrap();
    assert_eq!(status(&app), Status::Up);
    assert!(open_incidents(&app).is_empty());
}

/// Every hour with 5 minutes' grace: a start at 10:00 and a success at 10:12 record a run of
/// 720 s; the next ping is due 11:12, late at 11:17.
#[test]
fn an_interval_job_has_its_run_timed_and_is_late_after_interval_plus_grace() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "interval = \"1h\"\ngrace = \"5m\"\n");
    let t0 = ms("2026-11-29T10:00:00Z");
    ping(&app, "backup", Signal::Start, b"", t0).unwrap();
    ping(&app, "backup", Signal::Success, b"", t0 + 12 * MIN).unwrap();
    let samples = app
        .store
        .samples(&vakt_collector::store::SampleFilter { check: Some("backup".into()), ..Default::default() })
        .unwrap();
    assert_eq!(samples.len(), 1, "a start is not a result");
    assert_eq!(samples[0].latency_seconds, Some(720.0));
    evaluate(&app, t0 + 77 * MIN - 1).unwrap();
    assert_eq!(status(&app), Status::Up);
    evaluate(&app, t0 + 77 * MIN).unwrap();
    assert_eq!(status(&app), Status::Down);
    assert!(open_incidents(&app)[0].title.contains("no ping within 1 h of the last (5 min grace)"));
}

/// `/fail` and a non-zero exit code are down at once, with the job's output in the incident;
/// exit code 0 is a success.
#[test]
fn a_reported_failure_is_down_at_once_with_the_jobs_output() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), "interval = \"1d\"\n");
    let t0 = ms("2026-11-29T02:00:00Z");
    ping(&app, "backup", Signal::ExitCode(0), b"", t0).unwrap();
    assert_eq!(status(&app), Status::Up);
    ping(&app, "backup", Signal::ExitCode(2), b"rsync: connection unexpectedly closed\n", t0 + MIN).unwrap();
    assert_eq!(status(&app), Status::Down);
    let incident = open_incidents(&app).pop().unwrap();
    assert!(incident.title.contains("the job exited with code 2"), "{}", incident.title);
    let full = app.store.incident(incident.id).unwrap().unwrap();
    assert!(
        full.timeline.iter().any(|e| e.message.contains("rsync: connection unexpectedly closed")),
        "the output is kept for the incident: {:?}",
        full.timeline
    );
    ping(&app, "backup", Signal::Success, b"", t0 + 2 * MIN).unwrap();
    ping(&app, "backup", Signal::Fail, b"", t0 + 3 * MIN).unwrap();
    assert_eq!(status(&app), Status::Down, "/fail is down at once");
}
