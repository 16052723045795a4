//! Maintenance notices to subscribers with the clock injected: the collector's own planner is
//! asked at chosen instants what is due, on its embedded store. Figures by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use vakt_collector::app::App;
use vakt_collector::core::maintenance::{Created, Occurrence};
use vakt_collector::core::status_post::Subscriber;
use vakt_collector::notify::subscribers::plan_maintenance_notices;
use vakt_config::CollectorConfig;

const H: i64 = 3_600_000;
/// 2026-12-01 00:00 UTC.
const T0: i64 = 1_796_083_200_000;

fn app(dir: &Path) -> App {
    let text = format!(
        "data_dir = {dir:?}\npublic_url = \"https://status.example.test\"\ndisplay_timezone = \"Europe/Oslo\"\n\
         [services.shop]\nchecks = []\n[services.billing]\nchecks = []\n\
         [receivers.mail]\nkind = \"email\"\nsmtp = \"127.0.0.1:25\"\nfrom = \"s@example.test\"\nto = [\"x@example.test\"]\n\
         [subscriptions]\nemail_receiver = \"mail\"\nremind_before = \"24h\"\n"
    );
    App::open(CollectorConfig::parse(&text, Path::new("collector.toml")).unwrap()).unwrap()
}

fn subscriber(app: &App, address: &str, services: &[&str]) -> i64 {
    let s = Subscriber {
        id: 0,
        kind: "email".into(),
        address: address.into(),
        services: services.iter().map(|s| s.to_string()).collect(),
        token: format!("token-{address}"),
        created_ms: T0,
        confirmed_ms: Some(T0),
        unsubscribed_ms: None,
        failed_ms: None,
    };
    app.store.add_subscriber(&s).unwrap().0
}

/// What is queued for `who`, in order.
fn items(app: &App, who: i64) -> Vec<String> {
    let mut rows = app.store.subscriber_messages(100).unwrap();
    rows.reverse();
    rows.into_iter().filter(|r| r.subscriber_id == who).map(|r| r.item).collect()
}

/// A window for the shop made at T0, from T0 + 48 h to T0 + 50 h, reminders 24 h ahead:
/// scheduled at once, the reminder at T0 + 24 h, started at T0 + 48 h, completed at T0 + 50 h —
/// each once, however often the planner runs; the billing subscriber hears nothing of it.
#[test]
fn each_notice_reaches_the_services_subscribers_once_at_its_moment() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let ann = subscriber(&app, "ann@example.test", &["shop"]);
    let bob = subscriber(&app, "bob@example.test", &["billing"]);
    let all = subscriber(&app, "all@example.test", &[]);
    app.store
        .add_maintenance(&Occurrence {
            name: "Database upgrade".into(),
            start_ms: T0 + 48 * H,
            end_ms: T0 + 50 * H,
            services: vec!["shop".into()],
            change_id: None,
            exclude_from_sla: true,
            source: "api",
            created: Some(Created { by: "alice".into(), at_ms: T0, retroactive: false }),
        })
        .unwrap();
    let start = T0 + 48 * H;
    let steps =
        [T0, T0 + H, T0 + 24 * H - 1, T0 + 24 * H, T0 + 30 * H, start, start + H / 2, T0 + 50 * H, T0 + 50 * H + 1];
    for now in steps {
        plan_maintenance_notices(&app, now).unwrap();
        plan_maintenance_notices(&app, now).unwrap(); // twice: nothing new
    }
    let expected: Vec<String> = ["scheduled", "reminder", "started", "completed"]
        .iter()
        .map(|p| format!("maintenance:{start}:{p}:Database upgrade"))
        .collect();
    assert_eq!(items(&app, ann), expected);
    assert_eq!(items(&app, all), expected, "a subscriber to everything hears of it too");
    assert!(items(&app, bob).is_empty(), "billing is not in the window");

    // What Ann reads: the window in Oslo time (T0 + 48 h = 2026-12-03 00:00 UTC = 01:00 CET).
    let s = app.store.subscriber(ann).unwrap().unwrap();
    let o = &vakt_collector::core::maintenance::occurrences_in(
        Some(&app.config),
        &[],
        &app.store.maintenance(start, start + 1).unwrap(),
        start,
        start + 1,
    )[0];
    let letter = vakt_collector::notify::subscribers::maintenance_letter(
        &app,
        o,
        vakt_collector::core::maintenance::NoticePhase::Reminder,
        &s,
    );
    assert_eq!(letter.subject, "[Maintenance reminder] Database upgrade: 2026-12-03 01:00 CET to 2026-12-03 03:00 CET");
    assert!(letter.text.contains("Affected: shop"), "{}", letter.text);
    assert!(
        letter.text.contains("https://status.example.test/status/unsubscribe?token=token-ann@example.test"),
        "{}",
        letter.text
    );
}

/// A webhook subscriber whose address refuses every connection: each attempt is recorded and
/// tried again later; after the last one (the eighth) the message is given up and the address
/// marked as failing, which the API shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_address_is_retried_then_marked() {
    use vakt_collector::notify::subscribers::{deliver_due, MAX_ATTEMPTS};
    use vakt_collector::store::NotificationOutcome;
    let dir = tempfile::tempdir().unwrap();
    let app = std::sync::Arc::new(app(dir.path()));
    // Nothing listens on a port just freed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let hook = vakt_collector::notify::status_posts::add_webhook(
        app.store.as_ref(),
        &app.config,
        &format!("http://{closed}/hook"),
        &[],
        T0,
    )
    .unwrap();
    let now = vakt_collector::core::time::now_ms();
    let req =
        serde_json::from_value(serde_json::json!({"title": "Shop down", "services": ["shop"], "message": "Looking."}))
            .unwrap();
    vakt_collector::notify::status_posts::create(app.store.as_ref(), &app.config, req, "alice", now).unwrap();
    let receivers = vakt_collector::notify::receivers::receivers(&app.config).unwrap();
    let http = reqwest::Client::new();
    let row = |app: &App| {
        app.store.subscriber_messages(10).unwrap().into_iter().find(|r| r.item.starts_with("update:")).unwrap()
    };

    deliver_due(&app, &receivers, &http).await;
    let first = row(&app);
    assert_eq!((first.status.as_str(), first.attempts), ("pending", 1), "tried once, to be tried again: {first:?}");
    assert!(first.last_error.as_deref().unwrap_or("").contains("unreachable"), "{first:?}");
    // Six more failures as the backoff would bring them (made due at once here).
    let id = first.id;
    for _ in 0..(MAX_ATTEMPTS - 2) {
        app.store
            .record_subscriber_message(
                id,
                &NotificationOutcome::Retry { next_attempt_ms: 0, error: "refused".into() },
                now,
            )
            .unwrap();
    }
    assert_eq!(row(&app).attempts, MAX_ATTEMPTS - 1);
    deliver_due(&app, &receivers, &http).await;
    let last = row(&app);
    assert_eq!((last.status.as_str(), last.attempts), ("failed", MAX_ATTEMPTS), "{last:?}");
    let marked = app.store.subscriber(hook.id).unwrap().unwrap();
    assert!(marked.failed_ms.is_some(), "the address is marked as failing: {marked:?}");
    let metrics = app.metrics.render();
    assert!(metrics.contains("vakt_subscriber_messages_total{kind=\"webhook\",outcome=\"retried\"} 1"), "{metrics}");
    assert!(metrics.contains("vakt_subscriber_messages_total{kind=\"webhook\",outcome=\"failed\"} 1"), "{metrics}");
}

/// A post written from an incident takes its services and start; its updates leave the incident
/// alone, unless a resolved update asks to resolve it too.
#[test]
fn a_post_from_an_incident_resolves_it_only_when_asked() {
    use vakt_collector::core::incident::{Action, IncidentKind, IncidentStatus, TimelineEvent};
    use vakt_collector::core::status_post::{NewPost, NewUpdate};
    use vakt_collector::notify::status_posts::{create, update};
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "data_dir = {:?}\n[agents.edge]\ntoken_hash = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n[checks.shop-web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nagents = [\"edge\"]\n[services.shop]\nchecks = [\"shop-web\"]\n",
        dir.path()
    );
    let app = App::open(CollectorConfig::parse(&text, Path::new("collector.toml")).unwrap()).unwrap();
    let opened = T0 - 20 * 60_000;
    let event = TimelineEvent { at_ms: opened, kind: "opened".into(), message: "shop-web is down".into() };
    let open = Action::Open {
        kind: IncidentKind::CheckDown,
        subject: "shop-web".into(),
        title: "shop-web is down: connection refused".into(),
        severity: "critical".into(),
        priority: "P2".into(),
        opened_ms: opened,
        event,
    };
    let id = app.store.open_incidents(&[open]).unwrap()[0];
    let req = NewPost {
        title: String::new(),
        impact: None,
        services: vec![],
        incident_id: Some(id),
        status: None,
        message: "We are looking into it.".into(),
        template: None,
    };
    let post = create(app.store.as_ref(), &app.config, req, "alice", T0).unwrap();
    assert_eq!(post.services, ["shop"], "the incident's services");
    assert_eq!(post.created_ms, opened, "the incident's start");
    assert_eq!(post.title, "Problems with shop");
    let status = |app: &App| app.store.incident(id).unwrap().unwrap().status;
    let said = |status: &str, resolve_incident: bool| NewUpdate {
        status: status.into(),
        message: "Fixed.".into(),
        template: None,
        resolve_incident,
    };
    update(app.store.as_ref(), &app.config, post.id, said("monitoring", false), "alice", T0 + 60_000).unwrap();
    assert!(update(app.store.as_ref(), &app.config, post.id, said("monitoring", true), "alice", T0).is_err());
    update(app.store.as_ref(), &app.config, post.id, said("resolved", false), "alice", T0 + 120_000).unwrap();
    assert_eq!(status(&app), IncidentStatus::Open, "the post's resolution leaves the incident alone");
    update(app.store.as_ref(), &app.config, post.id, said("resolved", true), "alice", T0 + 180_000).unwrap();
    assert_eq!(status(&app), IncidentStatus::Resolved, "asked: resolved too");
}
