//! Delivers the outbox: due notifications are sent (or recorded as suppressed), failures retried
//! with exponential backoff up to the receiver's `max_attempts`, then marked failed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vakt_config::collector::GroupBy;
use vakt_config::notify::ReceiverKind;
use vakt_config::CollectorConfig;

use super::payload::{self, Message};
use crate::core::incident::{Incident, IncidentStatus};
use crate::core::time::now_ms;
use crate::server::App;
use crate::store::{NotificationOutcome, PendingNotification};

/// A receiver with its secrets read.
#[derive(Clone)]
pub struct Receiver {
    pub name: String,
    pub kind: ReceiverKind,
    pub url: String,
    pub signing_key: Option<String>,
    pub email: Option<Email>,
    pub title_template: Option<String>,
    pub text_template: Option<String>,
    pub max_attempts: u32,
}

/// SMTP settings of an email receiver.
#[derive(Clone)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: vakt_config::notify::SmtpTls,
    pub credentials: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
    /// Extra CA certificates (PEM) to trust for the SMTP server.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL and the key are secrets.
        f.debug_struct("Receiver").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// Reads every receiver's secrets; an error names the receiver and where the secret was
/// looked for, never its value.
pub fn receivers(config: &CollectorConfig) -> Result<HashMap<String, Receiver>, String> {
    let mut out = HashMap::new();
    for (name, r) in &config.receivers {
        let (url, email) = if r.kind == ReceiverKind::Email {
            let smtp = r.smtp.as_ref().map(|s| s.get_ref().clone()).unwrap_or_default();
            let (host, port) =
                smtp.rsplit_once(':').ok_or_else(|| format!("receiver {name:?}: smtp is not host:port"))?;
            let port = port.parse().map_err(|_| format!("receiver {name:?}: smtp port is not a number"))?;
            let password = match &r.password {
                Some(p) => p.read().map_err(|e| format!("receiver {name:?}: password: {e}"))?,
                None => None,
            };
            let credentials = match (&r.username, password) {
                (Some(u), Some(p)) => Some((u.clone(), p)),
                (Some(_), None) => return Err(format!("receiver {name:?}: username without password")),
                _ => None,
            };
            let email =
                Email {
                    host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
                    port,
                    tls: r.smtp_tls,
                    credentials,
                    from: r.from.as_ref().map(|f| f.get_ref().clone()).unwrap_or_default(),
                    to: r.to.iter().map(|t| t.get_ref().clone()).collect(),
                    ca_pem: match &r.smtp_ca_file {
                        Some(path) => Some(std::fs::read(path.get_ref()).map_err(|e| {
                            format!("receiver {name:?}: smtp_ca_file {}: {e}", path.get_ref().display())
                        })?),
                        None => None,
                    },
                };
            (String::new(), Some(email))
        } else {
            let url = r
                .url
                .as_ref()
                .ok_or_else(|| format!("receiver {name:?}: needs url"))?
                .get_ref()
                .read()
                .map_err(|e| format!("receiver {name:?}: url: {e}"))?
                .ok_or_else(|| format!("receiver {name:?}: url has no value"))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("receiver {name:?}: url is not an http(s) URL"));
            }
            (url, None)
        };
        let signing_key = match &r.signing_secret {
            Some(s) => s.read().map_err(|e| format!("receiver {name:?}: signing_secret: {e}"))?,
            None => None,
        };
        out.insert(
            name.to_string(),
            Receiver {
                name: name.to_string(),
                kind: r.kind,
                url,
                signing_key,
                email,
                title_template: r.title.as_ref().map(|t| t.get_ref().clone()),
                text_template: r.text.as_ref().map(|t| t.get_ref().clone()),
                max_attempts: r.max_attempts,
            },
        );
    }
    Ok(out)
}

/// Retry delay after `attempts` failed tries: 1s doubling, at most 5 minutes.
pub fn backoff_ms(attempts: u32) -> i64 {
    (1_000i64 << attempts.min(9)).min(300_000)
}

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
        // A resolution follows its announcement: sent when the announcement was sent.
        let sent = app
            .store
            .notifications(Some(n.incident_id))?
            .into_iter()
            .any(|x| x.receiver == n.receiver && x.event == "firing" && x.status == "delivered");
        if !sent {
            return Ok(Some("its announcement was held back".into()));
        }
    }
    Ok(None)
}

async fn post(http: &reqwest::Client, r: &Receiver, body: Vec<u8>) -> Result<(), String> {
    let mut req = http.post(&r.url).header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(key) = &r.signing_key {
        req = req.header("X-Vakt-Signature", format!("sha256={}", payload::hmac_sha256_hex(key.as_bytes(), &body)));
    }
    match req.body(body).send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("{} answered {}", r.name, resp.status())),
        // The URL may hold a token: say which receiver, not where.
        Err(e) => Err(format!(
            "{}: {}",
            r.name,
            if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            }
        )),
    }
}

async fn send_email(r: &Receiver, e: &Email, m: &Message) -> Result<(), String> {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let (subject, text, html) = payload::email(m);
    let from: Mailbox = e.from.parse().map_err(|err| format!("{}: from: {err}", r.name))?;
    let mut builder = lettre::Message::builder().from(from).subject(subject);
    for to in &e.to {
        builder = builder.to(to.parse::<Mailbox>().map_err(|err| format!("{}: to {to:?}: {err}", r.name))?);
    }
    let mail =
        builder.multipart(MultiPart::alternative_plain_html(text, html)).map_err(|err| format!("{}: {err}", r.name))?;
    let mut transport = match e.tls {
        vakt_config::notify::SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.host),
        vakt_config::notify::SmtpTls::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.host).map_err(|err| format!("{}: {err}", r.name))?
        }
        vakt_config::notify::SmtpTls::Implicit => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&e.host).map_err(|err| format!("{}: {err}", r.name))?
        }
    }
    .port(e.port)
    .timeout(Some(Duration::from_secs(10)));
    if let (Some(pem), true) = (&e.ca_pem, e.tls != vakt_config::notify::SmtpTls::None) {
        use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
        let ca = Certificate::from_pem(pem).map_err(|err| format!("{}: smtp_ca_file: {err}", r.name))?;
        let params = TlsParameters::builder(e.host.clone())
            .add_root_certificate(ca)
            .build_rustls()
            .map_err(|err| format!("{}: TLS: {err}", r.name))?;
        transport = transport.tls(match e.tls {
            vakt_config::notify::SmtpTls::Implicit => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if let Some((user, pass)) = &e.credentials {
        transport = transport.credentials(Credentials::new(user.clone(), pass.clone()));
    }
    transport.build().send(mail).await.map(|_| ()).map_err(|err| format!("{}: SMTP: {err}", r.name))
}

/// Sends one message to one receiver, in the receiver's format.
pub async fn send(http: &reqwest::Client, r: &Receiver, message: &Message) -> Result<(), String> {
    let message = match r.kind {
        ReceiverKind::Slack => message.clone().escaped_for(payload::Markup::SlackMrkdwn),
        ReceiverKind::Teams | ReceiverKind::Discord => message.clone().escaped_for(payload::Markup::Markdown),
        ReceiverKind::Email | ReceiverKind::Webhook | ReceiverKind::Alertmanager => message.clone(),
    };
    let message = &message.with_texts(r.title_template.as_deref(), r.text_template.as_deref());
    match (r.kind, &r.email) {
        (ReceiverKind::Email, Some(email)) => send_email(r, email, message).await,
        (kind, _) => {
            let body = match kind {
                ReceiverKind::Slack => payload::slack(message),
                ReceiverKind::Teams => payload::teams(message),
                ReceiverKind::Alertmanager => payload::alertmanager(message),
                ReceiverKind::Discord => payload::discord(message),
                ReceiverKind::Webhook | ReceiverKind::Email => payload::webhook(message),
            };
            post(http, r, serde_json::to_vec(&body).unwrap_or_default()).await
        }
    }
}

/// A test message for `vakt-collector notify-test`: a made-up incident, clearly labelled.
pub fn test_message(config: &CollectorConfig, receiver: &str, now: i64) -> Message {
    let incident = Incident {
        id: 0,
        dedup_key: "test".into(),
        kind: crate::core::incident::IncidentKind::CheckDown,
        subject: "vakt-test".into(),
        title: "Test notification from Vakt: nothing is down".into(),
        severity: "info".into(),
        status: IncidentStatus::Open,
        opened_ms: now,
        acknowledged_ms: None,
        acknowledged_by: None,
        resolved_ms: None,
        priority: "P5".into(),
        parent_id: None,
        timeline: Vec::new(),
    };
    Message {
        event: "firing".into(),
        incident,
        services: Vec::new(),
        customers: Vec::new(),
        receiver: receiver.to_string(),
        url: config.public_url.clone(),
        external_url: config.public_url.clone().unwrap_or_default(),
        sent_ms: now,
        title: String::new(),
        text: String::new(),
        more: Vec::new(),
    }
}

/// A notification ready to go out, with what its message says.
struct Ready {
    n: PendingNotification,
    item: payload::Grouped,
}

/// The key of the message a notification joins: receiver, what the message says (a repeat says
/// the same as the announcement), and the `group_by` part.
fn group_key(group_by: GroupBy, n: &PendingNotification, item: &payload::Grouped) -> (String, String, String) {
    let event = if n.event == "repeat" { "firing" } else { n.event.as_str() };
    let part = match group_by {
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
        NotificationOutcome::Delivered => "delivered",
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
        NotificationOutcome::Delivered => {
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
    let services = crate::core::catalog::services_of(&app.config, incident.kind, &incident.subject);
    if !receivers.contains_key(&n.receiver) {
        let why = format!("receiver {:?} is not configured any more", n.receiver);
        record(app, n, NotificationOutcome::Failed(why), now).await;
        return None;
    }
    let held = {
        let (a, n2, i2, s2) = (app.clone(), n.clone(), incident.clone(), services.clone());
        tokio::task::spawn_blocking(move || suppression(&a, &n2, &i2, &s2, now)).await
    };
    if let Ok(Ok(Some(why))) = held {
        record(app, n, NotificationOutcome::Suppressed(why), now).await;
        return None;
    }
    let url =
        app.config.public_url.as_ref().map(|u| format!("{}/api/v1/incidents/{}", u.trim_end_matches('/'), incident.id));
    let item = payload::Grouped {
        customers: crate::core::catalog::customers_of(&app.config, &services),
        services,
        url,
        incident,
    };
    Some(Ready { n, item })
}

/// Sends one message for a group of notifications to the same receiver and records the
/// outcome of each.
async fn send_group(app: &Arc<App>, r: &Receiver, http: &reqwest::Client, group: Vec<Ready>, now: i64) {
    let mut items = group.iter().map(|g| g.item.clone());
    let Some(first) = items.next() else { return };
    let event = if group[0].n.event == "repeat" { "firing".to_string() } else { group[0].n.event.clone() };
    let message = Message {
        event,
        incident: first.incident,
        services: first.services,
        customers: first.customers,
        url: first.url,
        external_url: app.config.public_url.clone().unwrap_or_default(),
        receiver: r.name.clone(),
        sent_ms: now,
        title: String::new(),
        text: String::new(),
        more: items.collect(),
    };
    let sent = send(http, r, &message).await;
    let attempts = group.iter().map(|g| g.n.attempts).max().unwrap_or(0);
    for g in group {
        let outcome = match &sent {
            Ok(()) => NotificationOutcome::Delivered,
            Err(e) if attempts + 1 >= r.max_attempts => NotificationOutcome::Failed(e.clone()),
            Err(e) => NotificationOutcome::Retry { next_attempt_ms: now + backoff_ms(attempts), error: e.clone() },
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
            ready.push((group_key(app.config.group_by, &r.n, &r.item), r));
        }
    }
    for group in into_groups(ready) {
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
    loop {
        let store_app = app.clone();
        let due = tokio::task::spawn_blocking(move || due_with_joiners(&store_app, now_ms())).await;
        match due {
            Ok(Ok(list)) => deliver(&app, &receivers, &http, list).await,
            Ok(Err(e)) => tracing::error!(error = %e, "reading the outbox failed"),
            Err(e) => tracing::error!(error = %e, "outbox task failed"),
        }
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
            }
        };
        let (a, b) = (item("web", Some("shop")), item("db", Some("billing")));
        assert_eq!(
            group_key(GroupBy::Receiver, &n(1, "firing"), &a),
            group_key(GroupBy::Receiver, &n(2, "repeat"), &b)
        );
        assert_ne!(
            group_key(GroupBy::Receiver, &n(1, "firing"), &a),
            group_key(GroupBy::Receiver, &n(2, "resolved"), &b)
        );
        assert_ne!(group_key(GroupBy::Service, &n(1, "firing"), &a), group_key(GroupBy::Service, &n(2, "firing"), &b));
        assert_ne!(
            group_key(GroupBy::Incident, &n(1, "firing"), &a),
            group_key(GroupBy::Incident, &n(2, "firing"), &a)
        );
    }
}
