//! What customers are told: message templates for status page posts, and how subscribers are
//! reached (`[subscriptions]`).

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

use crate::check::Id;
use crate::diagnostics::Reporter;
use crate::notify::{ReceiverConfig, ReceiverKind};

/// `[status_templates.NAME]`: a post's words for a situation. `{service}` is the first
/// affected service, `{services}` all of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusTemplate {
    /// The update's status: investigating, identified, monitoring or resolved.
    pub status: Option<Spanned<String>>,
    /// A title for a new post (when none is given).
    pub title: Option<String>,
    pub message: Spanned<String>,
}

/// `[subscriptions]`: customers subscribe on the status page (email, with a confirmation
/// link); admins add webhooks through the API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsConfig {
    /// The email receiver whose SMTP server and `from` address carry subscriber mail.
    pub email_receiver: Spanned<Id>,
    /// Subscribe requests accepted per client address per hour (default 5), and from all
    /// addresses together (default 100): a flood is refused with 429.
    #[serde(default = "default_per_address")]
    pub per_address_per_hour: u32,
    #[serde(default = "default_total")]
    pub total_per_hour: u32,
    /// Subscribers are reminded of planned maintenance this long before it starts (default
    /// "24h"), besides being told when it is scheduled, when it starts and when it ends.
    #[serde(default = "default_remind_before")]
    pub remind_before: crate::duration::HumanDuration,
}

fn default_remind_before() -> crate::duration::HumanDuration {
    crate::duration::HumanDuration::from_secs(86_400)
}

fn default_per_address() -> u32 {
    5
}

fn default_total() -> u32 {
    100
}

const STATUSES: [&str; 4] = ["investigating", "identified", "monitoring", "resolved"];

pub fn validate(
    templates: &BTreeMap<Id, StatusTemplate>,
    subscriptions: Option<&Spanned<SubscriptionsConfig>>,
    receivers: &BTreeMap<Id, ReceiverConfig>,
    public_url: Option<&str>,
    r: &mut Reporter<'_>,
) {
    for (name, t) in templates {
        if let Some(s) = t.status.as_ref().filter(|s| !STATUSES.contains(&s.get_ref().as_str())) {
            r.span(
                s.span(),
                format!("status_templates.{name}: status {:?} is not a post status", s.get_ref()),
                "one of investigating, identified, monitoring, resolved",
            );
        }
        if t.message.get_ref().trim().is_empty() {
            r.span(
                t.message.span(),
                format!("status_templates.{name}: the message is empty"),
                "e.g. message = \"We are investigating reduced performance of {service}.\"",
            );
        }
    }
    let Some(sub) = subscriptions else { return };
    let name = sub.get_ref().email_receiver.get_ref();
    match receivers.get(name.as_str()) {
        Some(rcv) if rcv.kind == ReceiverKind::Email => {}
        Some(_) => r.span(
            sub.get_ref().email_receiver.span(),
            format!("[subscriptions] email_receiver {:?} is not an email receiver", name.as_str()),
            "name a receiver with kind = \"email\" (its SMTP server and from address are used)",
        ),
        None => r.span(
            sub.get_ref().email_receiver.span(),
            format!("[subscriptions] email_receiver {:?} is not a receiver", name.as_str()),
            "declare it under [receivers.NAME] with kind = \"email\"",
        ),
    }
    if public_url.is_none() {
        r.span(
            sub.span(),
            "[subscriptions] needs public_url: confirmation and unsubscribe links point there",
            "set public_url = \"https://status.example.com\" at the top level",
        );
    }
    if sub.get_ref().per_address_per_hour == 0 || sub.get_ref().total_per_hour == 0 {
        r.span(sub.span(), "[subscriptions] limits must be at least 1", "the defaults are 5 and 100 per hour");
    }
}
