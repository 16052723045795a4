//! The receivers: each with its secrets read at start, and how one message is delivered to it
//! (HTTP POST, signed when it has a key; email over SMTP). No outbox here: `worker` decides
//! what is due and records what became of it.

use std::collections::HashMap;
use std::time::Duration;
use vakt_config::notify::ReceiverKind;
use vakt_config::CollectorConfig;

use super::paging;
use super::payload::{self, Message};
use crate::core::incident::{Incident, IncidentStatus};

/// A receiver with its secrets read.
#[derive(Clone)]
pub struct Receiver {
    pub name: String,
    pub kind: ReceiverKind,
    pub url: String,
    pub signing_key: Option<String>,
    /// PagerDuty's routing key or Opsgenie's API key.
    pub key: Option<String>,
    /// A service desk's settings (ServiceNow, Jira).
    pub desk: Option<super::tickets::Desk>,
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

/// A receiver's optional secret `field`, read; an error names the receiver, the field and where
/// it was looked for, never the value.
fn secret(name: &str, field: &str, s: Option<&vakt_config::notify::Secret>) -> Result<Option<String>, String> {
    match s {
        Some(s) => s.read().map_err(|e| format!("receiver {name:?}: {field}: {e}")),
        None => Ok(None),
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
            let password = secret(name.as_str(), "password", r.password.as_ref())?;
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
            let url = match (&r.url, r.kind.default_url()) {
                (None, Some(default)) => default.to_string(),
                (url, _) => url
                    .as_ref()
                    .ok_or_else(|| format!("receiver {name:?}: needs url"))?
                    .get_ref()
                    .read()
                    .map_err(|e| format!("receiver {name:?}: url: {e}"))?
                    .ok_or_else(|| format!("receiver {name:?}: url has no value"))?,
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("receiver {name:?}: url is not an http(s) URL"));
            }
            (url, None)
        };
        let signing_key = secret(name.as_str(), "signing_secret", r.signing_secret.as_ref())?;
        let field = r.kind.key_field().unwrap_or("key");
        let key = match secret(name.as_str(), field, r.routing_key.as_ref().or(r.api_key.as_ref()))? {
            Some(v) if v.is_empty() => return Err(format!("receiver {name:?}: {field} is empty")),
            other => other,
        };
        let desk = if r.kind.is_service_desk() {
            let password = secret(name.as_str(), "password", r.password.as_ref())?;
            let (Some(user), Some(password)) = (r.username.clone(), password) else {
                return Err(format!("receiver {name:?}: needs username and password"));
            };
            Some(super::tickets::Desk {
                user,
                password,
                project: r.project.clone().unwrap_or_default(),
                issue_type: r.issue_type.clone().unwrap_or_else(|| "Incident".into()),
                resolve_transition: r.resolve_transition.clone().unwrap_or_else(|| "Resolve".into()),
                close_code: r.close_code.clone().unwrap_or_else(|| "Solution provided".into()),
                fields: r.fields.clone(),
                owners: config
                    .services
                    .iter()
                    .filter_map(|(s, c)| c.owner.clone().map(|o| (s.to_string(), o)))
                    .collect(),
            })
        } else {
            None
        };
        out.insert(
            name.to_string(),
            Receiver {
                name: name.to_string(),
                kind: r.kind,
                url,
                signing_key,
                key,
                desk,
                email,
                title_template: r.title.as_ref().map(|t| t.get_ref().clone()),
                text_template: r.text.as_ref().map(|t| t.get_ref().clone()),
                max_attempts: r.max_attempts,
            },
        );
    }
    Ok(out)
}

/// Why a delivery failed, and when it may be tried again.
#[derive(Clone, Debug)]
pub struct SendError {
    pub message: String,
    pub retry: Retry,
}

/// When a failed delivery may be tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// After the usual backoff.
    Backoff,
    /// Not before this many milliseconds (the receiver said so: 429 with `Retry-After`).
    After(i64),
    /// Never: the receiver refused the request itself (a 4xx from a pager's API), and the
    /// same request would be refused again.
    Never,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for SendError {
    fn from(message: String) -> SendError {
        SendError { message, retry: Retry::Backoff }
    }
}

async fn post(http: &reqwest::Client, r: &Receiver, body: Vec<u8>, notification_id: &str) -> Result<(), SendError> {
    post_to(http, r, &r.url, body, notification_id, None).await
}

/// Alertmanager's alerts endpoint under a receiver's URL (`http://am:9093` or the endpoint
/// itself).
pub fn alertmanager_alerts_url(url: &str) -> String {
    let base = url.trim_end_matches('/');
    if base.ends_with("/api/v2/alerts") {
        base.to_string()
    } else {
        format!("{base}/api/v2/alerts")
    }
}

/// The header naming a notification for receivers to deduplicate on.
pub const NOTIFICATION_ID_HEADER: &str = "X-Vakt-Notification-Id";

/// `Retry-After` in seconds (the form rate limiters use), as milliseconds.
pub(super) fn retry_after_ms(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let secs: f64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).min(3_600_000.0) as i64)
}

async fn post_to(
    http: &reqwest::Client,
    r: &Receiver,
    url: &str,
    body: Vec<u8>,
    notification_id: &str,
    authorization: Option<String>,
) -> Result<(), SendError> {
    let mut req = http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json");
    if !notification_id.is_empty() {
        req = req.header(NOTIFICATION_ID_HEADER, notification_id);
    }
    if let Some(auth) = authorization {
        req = req.header(reqwest::header::AUTHORIZATION, auth);
    }
    if let Some(key) = &r.signing_key {
        req = req.header("X-Vakt-Signature", format!("sha256={}", payload::hmac_sha256_hex(key.as_bytes(), &body)));
    }
    match req.body(body).send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(refused(r, resp).await),
        Err(e) => Err(unreachable(r, &e)),
    }
}

/// A receiver's refusal: what it said (briefly), and when to try again — after `Retry-After`
/// for a 429, never for another 4xx from an API that follows incidents (the same request would
/// be refused again), after the backoff otherwise.
pub(super) async fn refused(r: &Receiver, resp: reqwest::Response) -> SendError {
    let status = resp.status();
    let retry = if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        retry_after_ms(resp.headers()).map_or(Retry::Backoff, Retry::After)
    } else if r.kind.follows_lifecycle() && status.is_client_error() && status != reqwest::StatusCode::REQUEST_TIMEOUT {
        Retry::Never
    } else {
        Retry::Backoff
    };
    // What the remote side says is wrong (Alertmanager explains a 400), briefly.
    let said: String = resp.text().await.unwrap_or_default().chars().take(200).collect();
    let said = said.trim();
    let message = if said.is_empty() {
        format!("{} answered {status}", r.name)
    } else {
        format!("{} answered {status}: {said}", r.name)
    };
    SendError { message, retry }
}

/// A receiver that could not be reached. The URL may hold a token: say which receiver, not
/// where.
pub(super) fn unreachable(r: &Receiver, e: &reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    format!("{}: {what}", r.name).into()
}

/// `List-Id` (RFC 2919): one list per receiver, so people can filter Vakt's mail.
#[derive(Clone)]
struct ListId(String);

impl lettre::message::header::Header for ListId {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Id")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListId(s.to_string()))
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `X-Vakt-Notification-Id`: the same name a webhook carries, for mail filters and tools.
#[derive(Clone)]
struct NotificationId(String);

impl lettre::message::header::Header for NotificationId {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str(NOTIFICATION_ID_HEADER)
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(NotificationId(s.to_string()))
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// How a mail about incidents threads in mail clients (RFC 5322): the first announcement of an
/// incident is the thread's root, `<vakt.incident.ID@DOMAIN>`; every later mail about it
/// (resolution, repeat, escalation) has its own id and refers to that root, as do grouped
/// mails to each incident's root.
pub struct Threading {
    pub message_id: String,
    /// The roots this mail refers to (empty for an incident's first announcement).
    pub references: Vec<String>,
    pub list_id: String,
}

pub fn threading(m: &Message, receiver: &str, domain: &str) -> Threading {
    let all = m.all();
    let roots: Vec<String> = all.iter().map(|g| format!("<vakt.incident.{}@{domain}>", g.incident.id)).collect();
    let ids: Vec<String> = all.iter().map(|g| g.incident.id.to_string()).collect();
    let list_id = format!("Vakt {receiver} <{receiver}.vakt.{domain}>");
    if m.event == "firing" && !m.repeat && roots.len() == 1 {
        return Threading { message_id: roots[0].clone(), references: Vec::new(), list_id };
    }
    let what = if m.repeat { "repeat" } else { m.event.as_str() };
    // Named by its outbox entries: a mail delivered again (after a failover) has the same id,
    // and mail clients show it once.
    let unique = match m.notification_id() {
        id if id.is_empty() => m.sent_ms.to_string(),
        id => id,
    };
    let message_id = format!("<vakt.incident.{}.{what}.{unique}@{domain}>", ids.join("-"));
    Threading { message_id, references: roots, list_id }
}

/// The SMTP transport of email receiver `name` (its server, TLS, CA and login).
pub(super) fn smtp_transport(
    name: &str,
    e: &Email,
) -> Result<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>, String> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    let mut transport = match e.tls {
        vakt_config::notify::SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.host),
        vakt_config::notify::SmtpTls::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.host).map_err(|err| format!("{}: {err}", name))?
        }
        vakt_config::notify::SmtpTls::Implicit => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&e.host).map_err(|err| format!("{}: {err}", name))?
        }
    }
    .port(e.port)
    .timeout(Some(Duration::from_secs(10)));
    if let (Some(pem), true) = (&e.ca_pem, e.tls != vakt_config::notify::SmtpTls::None) {
        use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
        let ca = Certificate::from_pem(pem).map_err(|err| format!("{}: smtp_ca_file: {err}", name))?;
        let params = TlsParameters::builder(e.host.clone())
            .add_root_certificate(ca)
            .build_rustls()
            .map_err(|err| format!("{}: TLS: {err}", name))?;
        transport = transport.tls(match e.tls {
            vakt_config::notify::SmtpTls::Implicit => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if let Some((user, pass)) = &e.credentials {
        transport = transport.credentials(Credentials::new(user.clone(), pass.clone()));
    }
    Ok(transport.build())
}

async fn send_email(r: &Receiver, e: &Email, m: &Message) -> Result<(), String> {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::AsyncTransport;
    let (subject, text, html) = payload::email(m);
    let from: Mailbox = e.from.parse().map_err(|err| format!("{}: from: {err}", r.name))?;
    let domain = from.email.domain().to_string();
    let thread = threading(m, &r.name, &domain);
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(subject)
        .date_now()
        .message_id(Some(thread.message_id))
        .header(ListId(thread.list_id));
    if !m.notification_id().is_empty() {
        builder = builder.header(NotificationId(m.notification_id()));
    }
    if !thread.references.is_empty() {
        builder = builder.in_reply_to(thread.references.join(" ")).references(thread.references.join(" "));
    }
    for to in &e.to {
        builder = builder.to(to.parse::<Mailbox>().map_err(|err| format!("{}: to {to:?}: {err}", r.name))?);
    }
    let mail =
        builder.multipart(MultiPart::alternative_plain_html(text, html)).map_err(|err| format!("{}: {err}", r.name))?;
    smtp_transport(&r.name, e)?.send(mail).await.map(|_| ()).map_err(|err| format!("{}: SMTP: {err}", r.name))
}

/// Sends one message to one receiver, in the receiver's format. `Some` says what the receiver
/// made of it, worth keeping on the incident (the ticket a service desk opened).
pub async fn send(http: &reqwest::Client, r: &Receiver, message: &Message) -> Result<Option<String>, SendError> {
    match &r.desk {
        Some(desk) => {
            let message = message.clone().with_texts(r.title_template.as_deref(), r.text_template.as_deref());
            super::tickets::send(http, r, desk, &message).await
        }
        None => send_message(http, r, message).await.map(|()| None),
    }
}

async fn send_message(http: &reqwest::Client, r: &Receiver, message: &Message) -> Result<(), SendError> {
    let message = match r.kind {
        ReceiverKind::Slack => message.clone().escaped_for(payload::Markup::SlackMrkdwn),
        ReceiverKind::Teams | ReceiverKind::Discord => message.clone().escaped_for(payload::Markup::Markdown),
        ReceiverKind::Email
        | ReceiverKind::Webhook
        | ReceiverKind::Alertmanager
        | ReceiverKind::AlertmanagerWebhook
        | ReceiverKind::PagerDuty
        | ReceiverKind::Opsgenie
        | ReceiverKind::ServiceNow
        | ReceiverKind::Jira => message.clone(),
    };
    let message = &message.with_texts(r.title_template.as_deref(), r.text_template.as_deref());
    match (r.kind, &r.email) {
        (ReceiverKind::Email, Some(email)) => send_email(r, email, message).await.map_err(SendError::from),
        (ReceiverKind::PagerDuty, _) => {
            let body = paging::pagerduty(message, r.key.as_deref().unwrap_or_default());
            post(http, r, serde_json::to_vec(&body).unwrap_or_default(), &message.notification_id()).await
        }
        (ReceiverKind::Opsgenie, _) => {
            let (path, body) = paging::opsgenie(message);
            let url = format!("{}{path}", r.url.trim_end_matches('/'));
            let auth = format!("GenieKey {}", r.key.as_deref().unwrap_or_default());
            post_to(
                http,
                r,
                &url,
                serde_json::to_vec(&body).unwrap_or_default(),
                &message.notification_id(),
                Some(auth),
            )
            .await
        }
        (kind, _) => {
            let body = match kind {
                ReceiverKind::Slack => payload::slack(message),
                ReceiverKind::Teams => payload::teams(message),
                ReceiverKind::AlertmanagerWebhook => payload::alertmanager(message),
                ReceiverKind::Alertmanager => {
                    let body = payload::alertmanager_api(message, message.sent_ms);
                    return post_to(
                        http,
                        r,
                        &alertmanager_alerts_url(&r.url),
                        serde_json::to_vec(&body).unwrap_or_default(),
                        &message.notification_id(),
                        None,
                    )
                    .await;
                }
                ReceiverKind::Discord => payload::discord(message),
                ReceiverKind::Webhook
                | ReceiverKind::Email
                | ReceiverKind::PagerDuty
                | ReceiverKind::Opsgenie
                | ReceiverKind::ServiceNow
                | ReceiverKind::Jira => payload::webhook(message),
            };
            post(http, r, serde_json::to_vec(&body).unwrap_or_default(), &message.notification_id()).await
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
        labels: Default::default(),
        repeat: false,
        url: config.public_url.clone(),
        external_url: config.public_url.clone().unwrap_or_default(),
        sent_ms: now,
        title: String::new(),
        text: String::new(),
        more: Vec::new(),
        notification_ids: Vec::new(),
        note: None,
        tz: crate::core::time::display_zone(config.display_timezone.as_ref().map(|t| t.get_ref().as_str())),
    }
}
