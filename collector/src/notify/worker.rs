//! Delivers the outbox: due notifications are sent (or recorded as suppressed), failures retried
//! with exponential backoff up to the receiver's `max_attempts`, then marked failed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vakt_config::collector::GroupBy;

use super::payload::{self, Message};
use super::receivers::{send, Receiver, Retry};
use crate::app::App;
use crate::core::incident::{Incident, IncidentStatus};
use crate::core::time::now_ms;
use crate::store::IncidentFilter;
use crate::store::{NotificationOutcome, PendingNotification};
use vakt_config::notify::ReceiverKind;

/// Retry delay after `attempts` failed tries: 1s doubling, at most 5 minutes.
pub fn backoff_ms(attempts: u32) -> i64 {
    (1_000i64 << attempts.min(9)).min(300_000)
}

/// Why an acknowledgement waits: its announcement has not gone out yet.
const WAIT_FOR_ANNOUNCEMENT: &str = "waiting for its announcement to go out first";

/// Whether a notification is held back, and why.
fn suppression(
    app: &App,
    n: &PendingNotification,
    incident: &Incident,
    services: &[String],
    now: i64,
) -> Result<Option<String>, crate::store::StoreError> {
    if n.event == "firing" || n.event == "repeat" {
        if n.event == "repeat" && incident.status != IncidentStatus::Open {
            return Ok(Some("acknowledged or resolved since".into()));
        }
        if let Some(parent) = incident.parent_id {
            return Ok(Some(format!("linked under incident {parent}, which was announced")));
        }
        if incident.status == IncidentStatus::Resolved {
            return Ok(Some("resolved before it was announced".into()));
        }
        let facts = crate::core::routing::Facts {
            kind: incident.kind,
            subject: &incident.subject,
            severity: &incident.severity,
            priority: &incident.priority,
        };
        if let Some(s) = app.store.silences(now)?.iter().find(|s| s.matches(&facts, services, now)) {
            return Ok(Some(format!("silenced by {} ({}): {}", s.author, s.id, s.comment)));
        }
        let created = app.store.maintenance(now, now + 1)?;
        let windows = crate::core::maintenance::occurrences_in(
            Some(&app.config),
            &app.config.maintenance,
            &created,
            now,
            now + 1,
        );
        if let Some(w) = windows.iter().find(|w| services.iter().any(|s| w.covers(s))) {
            return Ok(Some(format!("in maintenance window {:?}", w.name)));
        }
    } else {
        // A resolution follows its announcement: sent when the announcement was sent, and
        // recorded as what became of that announcement otherwise.
        let announcements: Vec<_> = app
            .store
            .notifications(Some(n.incident_id))?
            .into_iter()
            .filter(|x| x.receiver == n.receiver && x.event == "firing")
            .collect();
        if (n.event == "acknowledged" || n.event == "note")
            && announcements.iter().any(|x| x.status == "pending")
            && !announcements.iter().any(|x| x.status == "delivered")
        {
            // Acknowledged within the group wait: the pager hears of the alert first.
            return Ok(Some(WAIT_FOR_ANNOUNCEMENT.into()));
        }
        if !announcements.iter().any(|x| x.status == "delivered") {
            let failed = announcements.iter().find(|x| x.status == "failed");
            return Ok(Some(match failed {
                Some(f) => format!(
                    "its announcement could not be delivered ({})",
                    f.last_error.as_deref().unwrap_or("no reason recorded")
                ),
                None => "its announcement was held back".into(),
            }));
        }
    }
    Ok(None)
}

/// A notification ready to go out, with what its message says.
struct Ready {
    n: PendingNotification,
    item: payload::Grouped,
}

/// The key of the message a notification joins: receiver, what the message says (a repeat says
/// the same as the announcement), and the `group_by` part.
fn group_key(
    group_by: GroupBy,
    one_per_incident: bool,
    n: &PendingNotification,
    item: &payload::Grouped,
) -> (String, String, String) {
    let event = if n.event == "repeat" { "firing" } else { n.event.as_str() };
    let part = match group_by {
        // A pager keeps one alert per incident: its messages are never grouped.
        _ if one_per_incident => n.id.to_string(),
        GroupBy::Receiver => String::new(),
        GroupBy::Service => item.services.first().cloned().unwrap_or_else(|| item.incident.subject.clone()),
        GroupBy::Incident => n.id.to_string(),
    };
    (n.receiver.clone(), event.to_string(), part)
}

/// Splits notifications into messages by key, keeping the order in which each key first
/// appears and the order within each message. Pure.
fn into_groups<K: PartialEq, T>(items: Vec<(K, T)>) -> Vec<Vec<T>> {
    let mut keys: Vec<K> = Vec::new();
    let mut groups: Vec<Vec<T>> = Vec::new();
    for (k, t) in items {
        match keys.iter().position(|x| *x == k) {
            Some(i) => groups[i].push(t),
            None => {
                keys.push(k);
                groups.push(vec![t]);
            }
        }
    }
    groups
}

async fn record(app: &Arc<App>, n: PendingNotification, outcome: NotificationOutcome, now: i64) {
    let label = match &outcome {
        NotificationOutcome::Delivered | NotificationOutcome::DeliveredAs(_) => "delivered",
        NotificationOutcome::Suppressed(_) => "suppressed",
        NotificationOutcome::Retry { .. } => "retried",
        NotificationOutcome::Failed(_) => "failed",
    };
    app.metrics.notification(&n.receiver, label);
    match &outcome {
        NotificationOutcome::Failed(e) => {
            tracing::error!(receiver = %n.receiver, incident = n.incident_id, error = %e, "notification failed")
        }
        NotificationOutcome::Retry { error, .. } => {
            tracing::warn!(receiver = %n.receiver, incident = n.incident_id, error = %error, "notification will be retried")
        }
        NotificationOutcome::Suppressed(why) => {
            tracing::info!(receiver = %n.receiver, incident = n.incident_id, event = %n.event, reason = %why, "notification suppressed")
        }
        NotificationOutcome::Delivered | NotificationOutcome::DeliveredAs(_) => {
            tracing::info!(receiver = %n.receiver, incident = n.incident_id, event = %n.event, outcome = label, "notification")
        }
    }
    let store_app = app.clone();
    let _ = tokio::task::spawn_blocking(move || store_app.store.record_notification(n.id, &outcome, now)).await;
}

/// Decides what becomes of one notification: recorded at once when held back or when its
/// receiver is gone, otherwise ready to be sent.
async fn prepare(
    app: &Arc<App>,
    receivers: &HashMap<String, Receiver>,
    n: PendingNotification,
    now: i64,
) -> Option<Ready> {
    let store_app = app.clone();
    let id = n.incident_id;
    let Ok(Ok(Some(incident))) = tokio::task::spawn_blocking(move || store_app.store.incident(id)).await else {
        tracing::warn!(notification = n.id, "notification for a missing incident");
        return None;
    };
    if !receivers.contains_key(&n.receiver) {
        let why = format!("receiver {:?} is not configured any more", n.receiver);
        record(app, n, NotificationOutcome::Failed(why), now).await;
        return None;
    }
    let item = grouped(app, incident);
    let held = {
        let (a, n2, i2, s2) = (app.clone(), n.clone(), item.incident.clone(), item.services.clone());
        tokio::task::spawn_blocking(move || suppression(&a, &n2, &i2, &s2, now)).await
    };
    if let Ok(Ok(Some(why))) = held {
        let outcome = if why == WAIT_FOR_ANNOUNCEMENT {
            NotificationOutcome::Retry { next_attempt_ms: now + backoff_ms(n.attempts), error: why }
        } else {
            NotificationOutcome::Suppressed(why)
        };
        record(app, n, outcome, now).await;
        return None;
    }
    Some(Ready { n, item })
}

/// What a message says of one incident: its services, customers, labels and page.
fn grouped(app: &App, incident: Incident) -> payload::Grouped {
    let services = crate::core::catalog::services_of(&app.config, incident.kind, &incident.subject);
    payload::Grouped {
        url: incident_page(app, incident.id),
        labels: crate::core::catalog::labels_of(&app.config, incident.kind, &incident.subject),
        customers: crate::core::catalog::customers_of(&app.config, &services),
        services,
        incident,
    }
}

/// How often the open incidents announced to an Alertmanager are posted to it again.
pub const ALERTMANAGER_REPOST_MS: i64 = 60_000;

/// Alertmanager resolves an alert that is not posted again before its `endsAt`: the open
/// incidents announced to each Alertmanager receiver are posted again every minute, as
/// Prometheus does. Not an incident event: nothing is written; a failure is logged and tried
/// again at the next round (the announcement and the resolution go through the outbox).
async fn repost_to_alertmanagers(
    app: &Arc<App>,
    receivers: &HashMap<String, Receiver>,
    http: &reqwest::Client,
    now: i64,
) {
    let names: Vec<String> =
        receivers.values().filter(|r| r.kind == ReceiverKind::Alertmanager).map(|r| r.name.clone()).collect();
    if names.is_empty() {
        return;
    }
    let store_app = app.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<(String, Incident)>, crate::store::StoreError> {
        let store = store_app.store.as_ref();
        let mut out = Vec::new();
        for i in store.incidents(&IncidentFilter { status: Some(IncidentStatus::Open), ..Default::default() })? {
            let sent = store.notifications(Some(i.id))?;
            for name in &names {
                if sent.iter().any(|x| x.receiver == *name && x.event == "firing" && x.status == "delivered") {
                    out.push((name.clone(), i.clone()));
                }
            }
        }
        Ok(out)
    })
    .await;
    let found = match found {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return tracing::warn!(error = %e, "reading the incidents to post to Alertmanager again failed"),
        Err(e) => return tracing::warn!(error = %e, "Alertmanager re-post task failed"),
    };
    for r in receivers.values().filter(|r| r.kind == ReceiverKind::Alertmanager) {
        let items = found.iter().filter(|(name, _)| *name == r.name).map(|(_, i)| grouped(app, i.clone()));
        let Some(message) = message_of(app, r, "firing", true, items, now) else { continue };
        if let Err(e) = send(http, r, &message).await {
            tracing::warn!(receiver = %r.name, error = %e, "posting open incidents to Alertmanager again failed; next try in a minute");
        }
    }
}

/// The incident's page for people (not the JSON API), when `public_url` is set.
fn incident_page(app: &App, id: i64) -> Option<String> {
    app.config.public_url.as_ref().map(|u| format!("{}/incidents/{id}", u.trim_end_matches('/')))
}

/// One message to `r` about `items` (the first is the message's own incident); `None` without
/// any.
fn message_of(
    app: &App,
    r: &Receiver,
    event: &str,
    repeat: bool,
    mut items: impl Iterator<Item = payload::Grouped>,
    now: i64,
) -> Option<Message> {
    let first = items.next()?;
    Some(Message {
        event: event.to_string(),
        repeat,
        incident: first.incident,
        services: first.services,
        customers: first.customers,
        url: first.url,
        labels: first.labels,
        external_url: app.config.public_url.clone().unwrap_or_default(),
        receiver: r.name.clone(),
        sent_ms: now,
        title: String::new(),
        text: String::new(),
        more: items.collect(),
        notification_ids: Vec::new(),
        note: None,
        tz: app.display_tz.clone(),
    })
}

/// Sends one message for a group of notifications to the same receiver and records the
/// outcome of each.
async fn send_group(app: &Arc<App>, r: &Receiver, http: &reqwest::Client, group: Vec<Ready>, now: i64) {
    let Some(n) = group.first().map(|g| &g.n) else { return };
    let repeat = n.event == "repeat";
    let event = if repeat { "firing" } else { n.event.as_str() };
    let items = group.iter().map(|g| g.item.clone());
    let Some(mut message) = message_of(app, r, event, repeat, items, now) else { return };
    message.notification_ids = group.iter().map(|g| g.n.id).collect();
    if n.event == "note" {
        // The note written when this notification was.
        message.note = message
            .incident
            .timeline
            .iter()
            .find(|e| e.kind == "note" && e.at_ms == n.created_ms)
            .map(|e| e.message.clone());
    }
    let sent = send(http, r, &message).await;
    let attempts = group.iter().map(|g| g.n.attempts).max().unwrap_or(0);
    for g in group {
        let outcome = match &sent {
            Ok(None) => NotificationOutcome::Delivered,
            Ok(Some(what)) => NotificationOutcome::DeliveredAs(what.clone()),
            Err(e) if e.retry == Retry::Never || attempts + 1 >= r.max_attempts => {
                NotificationOutcome::Failed(e.message.clone())
            }
            Err(e) => NotificationOutcome::Retry {
                next_attempt_ms: now
                    + match e.retry {
                        Retry::After(ms) => ms.max(backoff_ms(attempts)),
                        _ => backoff_ms(attempts),
                    },
                error: e.message.clone(),
            },
        };
        record(app, g.n, outcome, now).await;
    }
}

/// Delivers a batch of due notifications: each held back one is recorded, the rest go out
/// grouped into messages as `group_by` says.
pub async fn deliver(
    app: &Arc<App>,
    receivers: &HashMap<String, Receiver>,
    http: &reqwest::Client,
    due: Vec<PendingNotification>,
) {
    let now = now_ms();
    let mut ready = Vec::new();
    for n in due {
        if let Some(r) = prepare(app, receivers, n, now).await {
            let one_per_incident = receivers.get(&r.n.receiver).is_some_and(|x| x.kind.follows_lifecycle());
            ready.push((group_key(app.config.group_by, one_per_incident, &r.n, &r.item), r));
        }
    }
    for group in into_groups(ready) {
        if !app.leadership.is_leader() {
            // The term ended (or this process was frozen past its lease): the new leader
            // delivers what is left; nothing more leaves from here.
            tracing::warn!("no longer the leader: leaving the rest of the outbox to the new one");
            return;
        }
        if let Some(r) = receivers.get(&group[0].n.receiver) {
            send_group(app, r, http, group, now).await;
        }
    }
}

/// The due notifications, and those still in their group wait that will join a message going
/// out now (Alertmanager's group_wait: what arrives during the wait goes with the first flush).
fn due_with_joiners(app: &App, now: i64) -> Result<Vec<PendingNotification>, crate::store::StoreError> {
    let mut due = app.store.due_notifications(now, 100)?;
    if app.config.group_by == GroupBy::Incident || due.is_empty() {
        return Ok(due);
    }
    let horizon = now + app.router.group_wait_ms();
    let joiners: Vec<PendingNotification> = app
        .store
        .due_notifications(horizon, 200)?
        .into_iter()
        .filter(|j| j.attempts == 0 && !due.iter().any(|d| d.id == j.id))
        .filter(|j| due.iter().any(|d| d.receiver == j.receiver && d.attempts == 0 && d.event == j.event))
        .collect();
    due.extend(joiners);
    Ok(due)
}

/// Delivers due notifications until shutdown.
pub async fn run(app: Arc<App>, receivers: HashMap<String, Receiver>, shutdown: CancellationToken) {
    let http = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the notification HTTP client");
            return;
        }
    };
    let mut last_repost = now_ms();
    loop {
        if !app.leadership.is_leader() {
            // Followers deliver nothing: the leader's outbox worker does.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
            }
        }
        let store_app = app.clone();
        let due = tokio::task::spawn_blocking(move || due_with_joiners(&store_app, now_ms())).await;
        if now_ms() - last_repost >= ALERTMANAGER_REPOST_MS {
            last_repost = now_ms();
            repost_to_alertmanagers(&app, &receivers, &http, last_repost).await;
        }
        match due {
            Ok(Ok(list)) => deliver(&app, &receivers, &http, list).await,
            Ok(Err(e)) => tracing::error!(error = %e, "reading the outbox failed"),
            Err(e) => tracing::error!(error = %e, "outbox task failed"),
        }
        super::subscribers::deliver_due(&app, &receivers, &http).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = app.outbox_wakeup.notified() => {
                // New notifications are due after the group wait.
                tokio::time::sleep(Duration::from_millis(u64::try_from(app.router.group_wait_ms()).unwrap_or(0))).await;
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::receivers::test_message;
    use vakt_config::CollectorConfig;

    #[test]
    fn groups_keep_first_appearance_order() {
        let items = vec![("ops", 1), ("mail", 2), ("ops", 3), ("chat", 4), ("mail", 5)];
        assert_eq!(into_groups(items), vec![vec![1, 3], vec![2, 5], vec![4]]);
    }

    #[test]
    fn group_keys_follow_group_by() {
        let n = |id, event: &str| PendingNotification {
            id,
            incident_id: id,
            receiver: "ops".into(),
            event: event.into(),
            attempts: 0,
            created_ms: 0,
        };
        let config = CollectorConfig::parse("", std::path::Path::new("t.toml")).unwrap();
        let item = |subject: &str, service: Option<&str>| {
            let mut incident = test_message(&config, "ops", 0).incident;
            incident.subject = subject.into();
            payload::Grouped {
                incident,
                services: service.into_iter().map(String::from).collect(),
                customers: Vec::new(),
                url: None,
                labels: Default::default(),
            }
        };
        let (a, b) = (item("web", Some("shop")), item("db", Some("billing")));
        assert_eq!(
            group_key(GroupBy::Receiver, false, &n(1, "firing"), &a),
            group_key(GroupBy::Receiver, false, &n(2, "repeat"), &b)
        );
        assert_ne!(
            group_key(GroupBy::Receiver, false, &n(1, "firing"), &a),
            group_key(GroupBy::Receiver, false, &n(2, "resolved"), &b)
        );
        assert_ne!(
            group_key(GroupBy::Service, false, &n(1, "firing"), &a),
            group_key(GroupBy::Service, false, &n(2, "firing"), &b)
        );
        assert_ne!(
            group_key(GroupBy::Incident, false, &n(1, "firing"), &a),
            group_key(GroupBy::Incident, false, &n(2, "firing"), &a)
        );
    }
}
