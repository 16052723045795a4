//! Delivers what subscribers are due, from their outbox: a confirmation request, a status
//! post's update, or a maintenance notice (scheduled, reminder, started, completed; planned
//! here from the windows every few seconds) — by email through `[subscriptions]
//! email_receiver`, or as signed JSON to a webhook. A refused or unreachable address is tried
//! again with backoff and, after the last attempt, marked as failing. Mail carries one-click
//! unsubscribe (RFC 8058).

use std::collections::HashMap;
use std::sync::Arc;

use crate::app::App;
use crate::core::maintenance::{notices, occurrences_in, parse_notice_item, NoticePhase, Occurrence, NOTICE_LATE_MS};
use crate::core::status_post::{StatusPost, Subscriber};
use crate::notify::payload::hmac_sha256_hex;
use crate::notify::receivers::{Receiver, NOTIFICATION_ID_HEADER};
use crate::store::{NotificationOutcome, SubscriberChange, SubscriberMessage};

/// Attempts before a subscriber message is given up and its address marked as failing.
pub const MAX_ATTEMPTS: u32 = 8;

/// What a message says, ready for either channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The webhook body (none for a confirmation request: webhooks need none).
    pub json: Option<serde_json::Value>,
    /// A file attached to the mail: name and text (a report's CSV).
    pub attachment: Option<(String, String)>,
}

fn esc(s: &str) -> String {
    crate::core::html::escape(s)
}

/// The collector's public address, without a trailing slash.
fn base(app: &App) -> String {
    app.config.public_url.as_deref().unwrap_or("").trim_end_matches('/').to_string()
}

pub fn unsubscribe_url(app: &App, s: &Subscriber) -> String {
    format!("{}/status/unsubscribe?token={}", base(app), s.token)
}

fn site(app: &App) -> String {
    app.config
        .public_url
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_else(|| "Vakt".into())
}

/// The confirmation request of an email subscription.
pub fn confirmation(app: &App, s: &Subscriber) -> Letter {
    let link = format!("{}/status/subscriptions/confirm?token={}", base(app), s.token);
    let what = if s.services.is_empty() { "every service".to_string() } else { s.services.join(", ") };
    let subject = format!("Confirm your subscription to {} status updates", site(app));
    let text = format!(
        "Someone (we hope you) asked to be told by email about incidents and maintenance of {what} on {}.\n\n\
         To confirm, open this link and press the button:\n{link}\n\n\
         If it was not you, ignore this mail: nothing will be sent without confirmation.\n",
        site(app)
    );
    let html = format!(
        "<p>Someone (we hope you) asked to be told by email about incidents and maintenance of {} on {}.</p>\
         <p><a href=\"{}\">Confirm the subscription</a></p>\
         <p>If it was not you, ignore this mail: nothing will be sent without confirmation.</p>",
        esc(&what),
        esc(&site(app)),
        esc(&link)
    );
    Letter { subject, text, html, json: None, attachment: None }
}

/// A post's update, as a subscriber reads it.
pub fn update_letter(app: &App, post: &StatusPost, update_id: i64, s: &Subscriber) -> Option<Letter> {
    let u = post.updates.iter().find(|u| u.id == update_id)?;
    let t = app.shown(u.at_ms);
    let url = format!("{}/status/incidents/{}", base(app), post.id);
    let affected = crate::core::status_post::affected(&post.services);
    let subject = format!("[{}] {}", u.status.label(), post.title);
    let text = format!(
        "{}\n\n{} — {}\n{}\n\nAffected: {affected} ({})\nFollow it at {url}\n\nUnsubscribe: {}\n",
        post.title,
        u.status.label(),
        t.local(u.at_ms),
        u.message,
        post.impact.label(),
        unsubscribe_url(app, s)
    );
    let html = format!(
        "<h2>{}</h2><p><strong>{}</strong> — {}</p><p style=\"white-space:pre-wrap\">{}</p>\
         <p>Affected: {} ({})</p><p><a href=\"{}\">Follow it on the status page</a></p>\
         <p style=\"font-size:small\"><a href=\"{}\">Unsubscribe</a></p>",
        esc(&post.title),
        esc(u.status.label()),
        esc(&t.local(u.at_ms)),
        esc(&u.message),
        esc(&affected),
        esc(post.impact.label()),
        esc(&url),
        esc(&unsubscribe_url(app, s))
    );
    let json = serde_json::json!({
        "kind": "status_update",
        "post": {
            "id": post.id,
            "title": post.title,
            "impact": post.impact.as_str(),
            "services": post.services,
            "status": post.status.as_str(),
            "url": url,
        },
        "update": {
            "id": u.id,
            "status": u.status.as_str(),
            "message": u.message,
            "at": crate::core::time::rfc3339(u.at_ms),
        },
    });
    Some(Letter { subject, text, html, json: Some(json), attachment: None })
}

enum Item {
    Confirm,
    /// A scheduled report: its content came with the message.
    Report,
    Update {
        post: i64,
        update: i64,
    },
    Maintenance {
        start_ms: i64,
        phase: NoticePhase,
        name: String,
    },
}

fn parse_item(item: &str) -> Option<Item> {
    if let Some((start_ms, phase, name)) = parse_notice_item(item) {
        return Some(Item::Maintenance { start_ms, phase, name });
    }
    if item.starts_with("report:") {
        return Some(Item::Report);
    }
    let mut parts = item.split(':');
    match (parts.next()?, parts.next(), parts.next()) {
        ("confirm", _, None) => Some(Item::Confirm),
        ("update", Some(p), Some(u)) => Some(Item::Update { post: p.parse().ok()?, update: u.parse().ok()? }),
        _ => None,
    }
}

/// What to send for `m`, or why nothing is sent.
fn letter_for(app: &App, m: &SubscriberMessage, s: &Subscriber) -> Result<Letter, String> {
    let item = parse_item(&m.item).ok_or_else(|| format!("unknown item {:?}", m.item))?;
    // Only a confirmation request goes to someone who has not (or no longer) subscribed.
    if !matches!(item, Item::Confirm) && !s.active() {
        return Err(if s.unsubscribed_ms.is_some() { "unsubscribed" } else { "not confirmed" }.into());
    }
    match item {
        Item::Confirm if s.kind == "email" => Ok(confirmation(app, s)),
        Item::Confirm => Err("webhooks need no confirmation".into()),
        Item::Report => {
            let p: serde_json::Value =
                serde_json::from_str(m.payload.as_deref().unwrap_or("")).map_err(|e| format!("report content: {e}"))?;
            let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            Ok(Letter {
                subject: text("subject"),
                text: format!("{}\nUnsubscribe from this report: {}\n", text("text"), unsubscribe_url(app, s)),
                html: text("html"),
                json: None,
                attachment: Some((text("attachment_name"), text("attachment"))),
            })
        }
        Item::Update { post, update } => {
            let post = app.store.post(post).map_err(|e| e.to_string())?.ok_or("the post is gone")?;
            update_letter(app, &post, update, s).ok_or_else(|| "the update is gone".into())
        }
        Item::Maintenance { start_ms, phase, name } => {
            let created = app.store.maintenance(start_ms, start_ms + 1).map_err(|e| e.to_string())?;
            let found = occurrences_in(Some(&app.config), &app.config.maintenance, &created, start_ms, start_ms + 1)
                .into_iter()
                .find(|o| o.start_ms == start_ms && o.name == name)
                .ok_or("the maintenance window is gone")?;
            Ok(maintenance_letter(app, &found, phase, s))
        }
    }
}

/// The email receiver that carries mail to `s`: `[subscriptions]`'s for subscribers, the
/// schedule's for a report's recipients.
fn mail_receiver<'a>(
    app: &App,
    receivers: &'a HashMap<String, Receiver>,
    s: &Subscriber,
) -> Result<&'a Receiver, String> {
    let name = match s.kind.strip_prefix("report:") {
        Some(schedule) => app
            .config
            .report_schedules
            .iter()
            .find(|x| x.name.get_ref() == schedule)
            .map(|x| x.receiver.get_ref().to_string())
            .ok_or_else(|| format!("report schedule {schedule:?} is no longer configured"))?,
        None => app
            .config
            .subscriptions
            .as_ref()
            .map(|c| c.get_ref().email_receiver.get_ref().to_string())
            .ok_or("no [subscriptions] email_receiver is configured")?,
    };
    receivers.get(&name).ok_or_else(|| format!("receiver {name:?} is not configured"))
}

/// A maintenance notice, as a subscriber reads it.
pub fn maintenance_letter(app: &App, o: &Occurrence, phase: NoticePhase, s: &Subscriber) -> Letter {
    let t = app.shown(o.start_ms);
    let when = format!("{} to {}", t.local(o.start_ms), t.local(o.end_ms));
    let affected = crate::core::status_post::affected(&o.services);
    let (tag, lead) = match phase {
        NoticePhase::Scheduled => ("Scheduled maintenance", "Maintenance is scheduled"),
        NoticePhase::Reminder => ("Maintenance reminder", "Maintenance begins soon"),
        NoticePhase::Started => ("Maintenance in progress", "Maintenance has begun"),
        NoticePhase::Completed => ("Maintenance completed", "Maintenance is completed"),
    };
    let subject = format!("[{tag}] {}: {when}", o.name);
    let text = format!(
        "{lead}: {}\n\nWhen: {when}\nAffected: {affected}\nStatus page: {}/\n\nUnsubscribe: {}\n",
        o.name,
        base(app),
        unsubscribe_url(app, s)
    );
    let html = format!(
        "<h2>{}</h2><p>{}: {}</p><p>When: {}<br>Affected: {}</p><p><a href=\"{}/\">Status page</a></p>\
         <p style=\"font-size:small\"><a href=\"{}\">Unsubscribe</a></p>",
        esc(tag),
        esc(lead),
        esc(&o.name),
        esc(&when),
        esc(&affected),
        esc(&base(app)),
        esc(&unsubscribe_url(app, s))
    );
    let json = serde_json::json!({
        "kind": "maintenance",
        "phase": phase.as_str(),
        "maintenance": {
            "name": o.name,
            "starts_at": crate::core::time::rfc3339(o.start_ms),
            "ends_at": crate::core::time::rfc3339(o.end_ms),
            "services": o.services,
        },
    });
    Letter { subject, text, html, json: Some(json), attachment: None }
}

/// How often maintenance notices are planned.
const PLAN_EVERY_MS: i64 = 5_000;

/// Queues the maintenance notices due at `now_ms` for the subscribers each reaches (each
/// notice at most once per subscriber). Returns how many messages were queued.
pub fn plan_maintenance_notices(app: &App, now_ms: i64) -> Result<usize, crate::store::StoreError> {
    let Some(cfg) = app.config.subscriptions.as_ref().map(|c| c.get_ref()) else { return Ok(0) };
    let (from, to) = (now_ms - NOTICE_LATE_MS, now_ms + 30 * 86_400_000);
    let created = app.store.maintenance(from, to)?;
    let occurrences = occurrences_in(Some(&app.config), &app.config.maintenance, &created, from, to);
    let due = notices(&occurrences, now_ms, cfg.remind_before.get().as_millis() as i64);
    if due.is_empty() {
        return Ok(0);
    }
    let subscribers = app.store.subscribers()?;
    let mut queued = 0;
    // A notice once queued is done: it is not offered again every few seconds (nor to those
    // who subscribe after it went out).
    for n in due {
        if app.store.subscriber_item_exists(&n.item)? {
            continue;
        }
        let to: Vec<i64> = subscribers
            .iter()
            .filter(|s| s.active() && crate::core::status_post::reaches(&s.services, &n.services))
            .map(|s| s.id)
            .collect();
        queued += app.store.enqueue_subscriber_messages(&to, &n.item, None, now_ms)?;
    }
    Ok(queued)
}

async fn send_mail(r: &Receiver, s: &Subscriber, letter: &Letter, unsubscribe: &str, id: &str) -> Result<(), String> {
    use lettre::message::header::{HeaderName, HeaderValue};
    use lettre::message::{Mailbox, MultiPart};
    use lettre::AsyncTransport;
    let e = r.email.as_ref().ok_or("the email receiver has no SMTP settings")?;
    let from: Mailbox = e.from.parse().map_err(|err| format!("from: {err}"))?;
    let to: Mailbox = s.address.parse().map_err(|err| format!("to: {err}"))?;
    let body = MultiPart::alternative_plain_html(letter.text.clone(), letter.html.clone());
    let body = match &letter.attachment {
        Some((name, content)) => MultiPart::mixed().multipart(body).singlepart(
            lettre::message::Attachment::new(name.clone())
                .body(content.clone(), "text/csv; charset=utf-8".parse().map_err(|_| "content type")?),
        ),
        None => body,
    };
    let mut mail = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(letter.subject.clone())
        .date_now()
        .multipart(body)
        .map_err(|err| err.to_string())?;
    // RFC 2369 and RFC 8058: mail clients offer "unsubscribe", which posts to the link.
    let headers = mail.headers_mut();
    for (name, value) in [
        ("List-Unsubscribe", format!("<{unsubscribe}>")),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_string()),
        (NOTIFICATION_ID_HEADER, id.to_string()),
    ] {
        headers.insert_raw(HeaderValue::new(HeaderName::new_from_ascii_str(name), value));
    }
    crate::notify::receivers::smtp_transport(&r.name, e)?
        .send(mail)
        .await
        .map(|_| ())
        .map_err(|err| format!("SMTP: {err}"))
}

async fn send_webhook(
    http: &reqwest::Client,
    s: &Subscriber,
    body: &serde_json::Value,
    id: &str,
) -> Result<(), String> {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let resp = http
        .post(&s.address)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(NOTIFICATION_ID_HEADER, id)
        .header("X-Vakt-Signature", format!("sha256={}", hmac_sha256_hex(s.token.as_bytes(), &body)))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", resp.status()))
    }
}

/// Sends one due message and records what became of it.
async fn deliver_one(
    app: &Arc<App>,
    receivers: &HashMap<String, Receiver>,
    http: &reqwest::Client,
    m: SubscriberMessage,
) {
    let now = crate::core::time::now_ms();
    let store_app = app.clone();
    let id = m.subscriber_id;
    let subscriber = tokio::task::spawn_blocking(move || store_app.store.subscriber(id)).await;
    let Ok(Ok(Some(s))) = subscriber else { return };
    let store_app = app.clone();
    let (m2, s2) = (m.clone(), s.clone());
    let letter = tokio::task::spawn_blocking(move || letter_for(&store_app, &m2, &s2)).await;
    let notification_id = format!("vakt-subscriber-message-{}", m.id);
    let outcome = match letter {
        // Nothing to send, on purpose (unsubscribed, not confirmed, gone).
        Ok(Err(why)) => NotificationOutcome::Suppressed(why),
        Err(e) => NotificationOutcome::Suppressed(e.to_string()),
        Ok(Ok(letter)) => {
            let sent = match (s.kind.as_str(), &letter.json) {
                ("webhook", Some(body)) => send_webhook(http, &s, body, &notification_id).await,
                ("webhook", None) => Ok(()),
                _ => match mail_receiver(app, receivers, &s) {
                    Ok(r) => send_mail(r, &s, &letter, &unsubscribe_url(app, &s), &notification_id).await,
                    Err(e) => Err(e),
                },
            };
            match sent {
                Ok(()) => NotificationOutcome::Delivered,
                Err(error) => {
                    tracing::warn!(subscriber = s.id, item = %m.item, error = %error, "a subscriber message was not delivered");
                    if m.attempts + 1 >= MAX_ATTEMPTS {
                        NotificationOutcome::Failed(error)
                    } else {
                        let next_attempt_ms = now + crate::notify::worker::backoff_ms(m.attempts + 1);
                        NotificationOutcome::Retry { next_attempt_ms, error }
                    }
                }
            }
        }
    };
    let kind = if s.kind.starts_with("report:") { "report" } else { s.kind.as_str() };
    let word = match &outcome {
        NotificationOutcome::Delivered | NotificationOutcome::DeliveredAs(_) => "delivered",
        NotificationOutcome::Retry { .. } => "retried",
        NotificationOutcome::Failed(_) => "failed",
        NotificationOutcome::Suppressed(_) => "suppressed",
    };
    app.metrics.subscriber_message(kind, word);
    let store_app = app.clone();
    let failed = matches!(outcome, NotificationOutcome::Failed(_));
    let recorded = tokio::task::spawn_blocking(move || {
        store_app.store.record_subscriber_message(m.id, &outcome, now)?;
        if failed {
            store_app.store.update_subscriber(m.subscriber_id, SubscriberChange::Failed, now)?;
        }
        Ok::<_, crate::store::StoreError>(())
    })
    .await;
    if !matches!(recorded, Ok(Ok(()))) {
        tracing::error!(message = m.id, "recording a subscriber message's outcome failed; it will be sent again");
    }
}

/// Plans maintenance notices (every few seconds) and delivers the subscriber messages due now
/// (the leader's outbox worker calls this).
pub async fn deliver_due(app: &Arc<App>, receivers: &HashMap<String, Receiver>, http: &reqwest::Client) {
    let now = crate::core::time::now_ms();
    if now - app.notices_planned_ms.load(std::sync::atomic::Ordering::Relaxed) >= PLAN_EVERY_MS {
        app.notices_planned_ms.store(now, std::sync::atomic::Ordering::Relaxed);
        let store_app = app.clone();
        match tokio::task::spawn_blocking(move || plan_maintenance_notices(&store_app, now)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "planning maintenance notices failed"),
            Err(e) => tracing::error!(error = %e, "maintenance notice task failed"),
        }
    }
    let store_app = app.clone();
    let due =
        tokio::task::spawn_blocking(move || store_app.store.due_subscriber_messages(crate::core::time::now_ms(), 50))
            .await;
    match due {
        Ok(Ok(list)) => {
            for m in list {
                if !app.leadership.is_leader() {
                    return;
                }
                deliver_one(app, receivers, http, m).await;
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "reading the subscriber outbox failed"),
        Err(e) => tracing::error!(error = %e, "subscriber outbox task failed"),
    }
}
