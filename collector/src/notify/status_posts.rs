//! What people tell customers, as operations the API, the on-call forms and the CLI share:
//! write a post (by hand, from a template, or prefilled from an incident), add updates and a
//! postmortem, subscribe (email with a confirmation link; webhooks by admins), confirm and
//! unsubscribe. Each update is queued for every subscriber it reaches in the same transaction
//! that stores it; `subscribers.rs` delivers.

use crate::core::status_post::{
    check_address, check_text, fill, reaches, Impact, NewPost, NewUpdate, PostStatus, PostUpdate, StatusPost,
    Subscriber, MAX_MESSAGE_CHARS, MAX_TITLE_CHARS,
};
use crate::store::Store;
use crate::store::{StoreError, SubscriberChange};
use vakt_config::CollectorConfig;

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The work itself failed (a task that panicked): nobody's mistake in the request.
    #[error("{0}")]
    Failed(String),
}

/// The active subscribers a post about `services` reaches.
pub fn recipients(store: &dyn Store, services: &[String]) -> Result<Vec<i64>, StoreError> {
    Ok(store
        .subscribers()?
        .into_iter()
        .filter(|s| s.active() && reaches(&s.services, services))
        .map(|s| s.id)
        .collect())
}

/// `services` sorted, once each, every one configured.
fn known_services(config: &CollectorConfig, mut services: Vec<String>) -> Result<Vec<String>, PostError> {
    services.sort();
    services.dedup();
    match services.iter().find(|s| !config.services.contains_key(s.as_str())) {
        Some(s) => Err(PostError::Invalid(format!("there is no service {s:?}"))),
        None => Ok(services),
    }
}

/// A template's words, filled for a post's services.
struct Filled {
    status: Option<PostStatus>,
    title: Option<String>,
    message: String,
}

/// `[status_templates.NAME]`, filled for `services`.
fn template(config: &CollectorConfig, name: Option<&str>, services: &[String]) -> Result<Option<Filled>, PostError> {
    let Some(name) = name else { return Ok(None) };
    let t = config.status_templates.get(name).ok_or_else(|| {
        let known: Vec<&str> = config.status_templates.keys().map(|k| k.as_str()).collect();
        PostError::Invalid(format!("there is no status template {name:?} (known: {})", known.join(", ")))
    })?;
    let status = t.status.as_ref().map(|s| PostStatus::parse(s.get_ref())).transpose().map_err(PostError::Invalid)?;
    Ok(Some(Filled {
        status,
        title: t.title.as_ref().map(|x| fill(x, services)),
        message: fill(t.message.get_ref(), services),
    }))
}

/// Writes a new post with its first update and queues that update for its subscribers.
pub fn create(
    store: &dyn Store,
    config: &CollectorConfig,
    req: NewPost,
    by: &str,
    now_ms: i64,
) -> Result<StatusPost, PostError> {
    let mut services = req.services;
    let mut created_ms = now_ms;
    if let Some(id) = req.incident_id {
        let incident = store.incident(id)?.ok_or_else(|| PostError::NotFound(format!("there is no incident {id}")))?;
        if services.is_empty() {
            services = crate::core::catalog::services_of(config, incident.kind, &incident.subject);
        }
        created_ms = incident.opened_ms.min(now_ms);
    }
    let services = known_services(config, services)?;
    let from_template = template(config, req.template.as_deref(), &services)?;
    let (t_status, t_title, t_message) = match from_template {
        Some(f) => (f.status, f.title, Some(f.message)),
        None => (None, None, None),
    };
    let title = match (req.title.trim(), t_title) {
        ("", Some(t)) => t,
        ("", None) if !services.is_empty() => format!("Problems with {}", services.join(", ")),
        (t, _) => t.to_string(),
    };
    let title = check_text("title", &title, MAX_TITLE_CHARS).map_err(PostError::Invalid)?;
    let message = if req.message.trim().is_empty() { t_message.unwrap_or_default() } else { req.message };
    let message = check_text("message", &message, MAX_MESSAGE_CHARS).map_err(PostError::Invalid)?;
    let status = match req.status.as_deref() {
        Some(s) => PostStatus::parse(s).map_err(PostError::Invalid)?,
        None => t_status.unwrap_or(PostStatus::Investigating),
    };
    let impact = match req.impact.as_deref() {
        Some(i) => Impact::parse(i).map_err(PostError::Invalid)?,
        None if req.incident_id.is_some() => Impact::PartialOutage,
        None => Impact::Degraded,
    };
    let mut post = StatusPost {
        id: 0,
        title,
        impact,
        services,
        incident_id: req.incident_id,
        status,
        created_ms,
        resolved_ms: (status == PostStatus::Resolved).then_some(now_ms),
        postmortem: None,
        updates: vec![PostUpdate { id: 0, status, message, at_ms: now_ms, by: by.to_string() }],
    };
    let to = recipients(store, &post.services)?;
    post.id = store.add_post(&post, &to)?;
    store.post(post.id)?.ok_or_else(|| PostError::NotFound(format!("post {} vanished", post.id)))
}

/// Adds an update to a post and queues it for the post's subscribers. The internal incident
/// is not touched unless the update asks (`resolve_incident` with a resolved update).
pub fn update(
    store: &dyn Store,
    config: &CollectorConfig,
    post_id: i64,
    req: NewUpdate,
    by: &str,
    now_ms: i64,
) -> Result<StatusPost, PostError> {
    let post = store.post(post_id)?.ok_or_else(|| PostError::NotFound(format!("there is no status post {post_id}")))?;
    let from_template = template(config, req.template.as_deref(), &post.services)?;
    let message = match (req.message.trim(), from_template) {
        ("", Some(f)) => f.message,
        (m, _) => m.to_string(),
    };
    let message = check_text("message", &message, MAX_MESSAGE_CHARS).map_err(PostError::Invalid)?;
    let status = PostStatus::parse(&req.status).map_err(PostError::Invalid)?;
    if req.resolve_incident && (status != PostStatus::Resolved || post.incident_id.is_none()) {
        return Err(PostError::Invalid(
            "resolve_incident goes with a resolved update of a post written from an incident".into(),
        ));
    }
    let u = PostUpdate { id: 0, status, message: message.clone(), at_ms: now_ms, by: by.to_string() };
    let to = recipients(store, &post.services)?;
    store.add_post_update(post_id, &u, &to)?;
    // Asked for: the internal incident is resolved too, with the update as its note.
    if let (true, Some(incident)) = (req.resolve_incident, post.incident_id) {
        let op = crate::core::incident::ManualOp::Resolve { by: by.to_string(), note: Some(message) };
        match store.manual(incident, &op, now_ms)? {
            Ok(_) | Err(crate::core::incident::ManualError::Resolved(_)) => {}
            Err(e) => return Err(PostError::NotFound(e.to_string())),
        }
    }
    store.post(post_id)?.ok_or_else(|| PostError::NotFound(format!("post {post_id} vanished")))
}

/// Sets the postmortem of a resolved post.
pub fn postmortem(store: &dyn Store, post_id: i64, text: &str) -> Result<StatusPost, PostError> {
    let post = store.post(post_id)?.ok_or_else(|| PostError::NotFound(format!("there is no status post {post_id}")))?;
    if post.is_open() {
        return Err(PostError::Invalid("a postmortem follows the resolution: resolve the post first".into()));
    }
    let text = check_text("postmortem", text, MAX_MESSAGE_CHARS * 5).map_err(PostError::Invalid)?;
    store.set_postmortem(post_id, &text)?;
    store.post(post_id)?.ok_or_else(|| PostError::NotFound(format!("post {post_id} vanished")))
}

/// Records an email subscription and queues its confirmation request. The answer never says
/// whether the address was known: an address already confirmed gets nothing new, one not yet
/// confirmed is asked again (at most once an hour).
pub fn subscribe_email(
    store: &dyn Store,
    config: &CollectorConfig,
    address: &str,
    services: &[String],
    now_ms: i64,
) -> Result<(), PostError> {
    let address = check_address(address).map_err(PostError::Invalid)?;
    let services = known_services(config, services.to_vec())?;
    let s = Subscriber {
        id: 0,
        kind: "email".into(),
        address,
        services,
        token: crate::auth::secret(),
        created_ms: now_ms,
        confirmed_ms: None,
        unsubscribed_ms: None,
        failed_ms: None,
    };
    // The hour in the item: a second request within the hour asks nothing new.
    let item = format!("confirm:{}", now_ms / 3_600_000);
    let (id, created) = store.add_subscriber(&s)?;
    let active = !created && store.subscriber(id)?.is_some_and(|k| k.active());
    if !active {
        store.enqueue_subscriber_messages(&[id], &item, None, now_ms)?;
    }
    Ok(())
}

/// A webhook subscription, made by an admin (a public one would let anyone make the collector
/// post to addresses of their choosing). Active at once; its token signs each post.
pub fn add_webhook(
    store: &dyn Store,
    config: &CollectorConfig,
    url: &str,
    services: &[String],
    now_ms: i64,
) -> Result<Subscriber, PostError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| PostError::Invalid(format!("url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(PostError::Invalid("the url must be http or https".into()));
    }
    let services = known_services(config, services.to_vec())?;
    let s = Subscriber {
        id: 0,
        kind: "webhook".into(),
        address: url.to_string(),
        services,
        token: crate::auth::secret(),
        created_ms: now_ms,
        confirmed_ms: Some(now_ms),
        unsubscribed_ms: None,
        failed_ms: None,
    };
    let (id, created) = store.add_subscriber(&s)?;
    if !created {
        store.update_subscriber(id, SubscriberChange::Confirmed, now_ms)?;
    }
    store.subscriber(id)?.ok_or_else(|| PostError::NotFound(format!("subscriber {id} vanished")))
}

/// Confirms the subscription whose link carries `token`; `None` for an unknown token.
pub fn confirm(store: &dyn Store, token: &str, now_ms: i64) -> Result<Option<Subscriber>, StoreError> {
    let Some(s) = store.subscriber_by_token(token)? else { return Ok(None) };
    store.update_subscriber(s.id, SubscriberChange::Confirmed, now_ms)?;
    store.subscriber(s.id)
}

/// Ends the subscription whose link carries `token`: nothing more is sent to it, not even
/// what was queued. `None` for an unknown token.
pub fn unsubscribe(store: &dyn Store, token: &str, now_ms: i64) -> Result<Option<Subscriber>, StoreError> {
    let Some(s) = store.subscriber_by_token(token)? else { return Ok(None) };
    store.update_subscriber(s.id, SubscriberChange::Unsubscribed, now_ms)?;
    store.subscriber(s.id)
}
