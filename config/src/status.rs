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

/// `[[report_schedules]]`: an SLA report mailed on a schedule, e.g. every month on the 1st at
/// 08:00 Europe/Oslo, the month before for customer X, as HTML with a CSV attachment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSchedule {
    pub name: Spanned<String>,
    /// "week", "month" or "quarter".
    pub every: Spanned<String>,
    /// Weeks: a weekday name (default monday); months and quarters: a day 1–28 (default 1).
    pub day: Option<Spanned<DayValue>>,
    /// Local time, "HH:MM" (default "08:00").
    #[serde(default = "default_at")]
    pub at: Spanned<String>,
    /// The zone of `at` and of the period (default: display_timezone, else the system's).
    pub timezone: Option<Spanned<String>>,
    /// Exactly one: the report's scope.
    pub service: Option<String>,
    pub customer: Option<String>,
    pub vendor: Option<String>,
    /// The email receiver whose SMTP server and `from` send it.
    pub receiver: Spanned<Id>,
    pub to: Vec<Spanned<String>>,
}

/// `day = 1` or `day = "monday"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum DayValue {
    Number(i64),
    Name(String),
}

impl DayValue {
    pub fn as_text(&self) -> String {
        match self {
            DayValue::Number(n) => n.to_string(),
            DayValue::Name(s) => s.clone(),
        }
    }
}

fn default_at() -> Spanned<String> {
    Spanned::new(0..0, "08:00".to_string())
}

/// `[status_pages.NAME]`: a status page for one audience, e.g. a customer's, served at
/// `/p/NAME` and at `/` for the `hosts` pointed at the collector; only its services are shown.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPageConfig {
    pub title: Option<String>,
    /// The services shown: those in this customer's contract (`customers` on a service) ...
    pub customer: Option<String>,
    /// ... and/or these by name.
    #[serde(default)]
    pub services: Vec<Spanned<Id>>,
    /// `Host` header values served this page at `/` (a customer's domain, CNAMEd here).
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    /// A token to read it (HTTP Basic password, any user name, or `?token=`); none: public.
    pub token: Option<crate::notify::Secret>,
    /// A PNG, SVG or JPEG shown at the top (embedded: the page loads nothing from elsewhere).
    pub logo_file: Option<Spanned<std::path::PathBuf>>,
    /// Links in the footer.
    #[serde(default)]
    pub footer_links: Vec<FooterLink>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FooterLink {
    pub text: String,
    pub url: String,
}

pub fn validate_pages(
    pages: &BTreeMap<Id, StatusPageConfig>,
    services: &BTreeMap<Id, crate::slo::ServiceConfig>,
    r: &mut Reporter<'_>,
) {
    let mut hosts = std::collections::BTreeMap::new();
    for (name, p) in pages {
        if p.customer.is_none() && p.services.is_empty() {
            let at = crate::collector::r_source_offset(r, &format!("status_pages.{name}"));
            r.at(
                at,
                format!("status_pages.{name}: shows no service"),
                Some("set customer = \"NAME\" or services = [...]".into()),
            );
        }
        if let Some(c) = p.customer.as_ref().filter(|c| !services.values().any(|s| s.customers.contains(c))) {
            let at = crate::collector::r_source_offset(r, &format!("status_pages.{name}"));
            r.at(
                at,
                format!("status_pages.{name}: no service has customer {c:?}"),
                Some("add it to a service's customers".into()),
            );
        }
        for s in p.services.iter().filter(|s| !services.contains_key(s.get_ref().as_str())) {
            r.span(
                s.span(),
                format!("status_pages.{name}: unknown service {:?}", s.get_ref().as_str()),
                "declare it under [services.NAME]",
            );
        }
        for h in &p.hosts {
            let host = h.get_ref().to_ascii_lowercase();
            if host.is_empty() || host.contains('/') || host.contains(' ') {
                r.span(
                    h.span(),
                    format!("status_pages.{name}: host {:?} is not a host name", h.get_ref()),
                    "e.g. \"status.acme.example\"",
                );
            }
            if let Some(other) = hosts.insert(host.clone(), name.as_str().to_string()) {
                r.span(
                    h.span(),
                    format!("status_pages.{name}: host {host:?} is also status_pages.{other}'s"),
                    "one page per host",
                );
            }
        }
        if let Some(f) = &p.logo_file {
            let ext = f.get_ref().extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
            if !matches!(ext.as_str(), "png" | "svg" | "jpg" | "jpeg") {
                r.span(
                    f.span(),
                    format!("status_pages.{name}: logo_file must be .png, .svg or .jpg"),
                    "the page embeds it",
                );
            }
        }
        for l in &p.footer_links {
            if !(l.url.starts_with("https://") || l.url.starts_with("http://") || l.url.starts_with("mailto:")) {
                let at = crate::collector::r_source_offset(r, &format!("status_pages.{name}"));
                r.at(at, format!("status_pages.{name}: footer link {:?} is not http(s) or mailto", l.url), None);
            }
        }
    }
}

const STATUSES: [&str; 4] = ["investigating", "identified", "monitoring", "resolved"];

/// Checks `[[report_schedules]]`: what `parse` needs is left to the collector (the schedule's
/// own rules), here the names, scope, receiver and addresses.
pub fn validate_reports(
    schedules: &[ReportSchedule],
    receivers: &BTreeMap<Id, ReceiverConfig>,
    services: &BTreeMap<Id, crate::slo::ServiceConfig>,
    r: &mut Reporter<'_>,
) {
    let mut names = std::collections::BTreeSet::new();
    for s in schedules {
        let name = s.name.get_ref();
        if !names.insert(name.clone()) {
            r.span(s.name.span(), format!("two [[report_schedules]] are named {name:?}"), "give each its own name");
        }
        if name.is_empty() || name.len() > 100 || name.contains(':') {
            r.span(s.name.span(), format!("report schedule name {name:?}"), "1 to 100 characters, no ':'");
        }
        if !matches!(s.every.get_ref().as_str(), "week" | "month" | "quarter") {
            r.span(
                s.every.span(),
                format!("every {:?} is not week, month or quarter", s.every.get_ref()),
                "e.g. every = \"month\"",
            );
        }
        let at = s.at.get_ref();
        let at_ok = at.split_once(':').is_some_and(|(h, m)| {
            h.parse::<u8>().is_ok_and(|h| h < 24) && m.len() == 2 && m.parse::<u8>().is_ok_and(|m| m < 60)
        });
        if !at_ok {
            r.span(s.at.span(), format!("report schedule {name:?}: at {at:?} is not HH:MM"), "e.g. at = \"08:00\"");
        }
        if let Some(d) = &s.day {
            let weekly = s.every.get_ref() == "week";
            let ok = match d.get_ref() {
                DayValue::Number(n) => !weekly && (1..=28).contains(n),
                DayValue::Name(w) => {
                    weekly
                        && ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
                            .contains(&w.to_ascii_lowercase().as_str())
                }
            };
            if !ok {
                r.span(
                    d.span(),
                    format!(
                        "report schedule {name:?}: day {:?} does not fit every = {:?}",
                        d.get_ref().as_text(),
                        s.every.get_ref()
                    ),
                    "a weekday name for weeks (day = \"monday\"); 1 to 28 for months and quarters",
                );
            }
        }
        let scopes = [s.service.is_some(), s.customer.is_some(), s.vendor.is_some()].iter().filter(|x| **x).count();
        if scopes != 1 {
            r.span(
                s.name.span(),
                format!("report schedule {name:?}: give exactly one of service, customer, vendor"),
                "e.g. customer = \"acme\"",
            );
        }
        if let Some(svc) = s.service.as_ref().filter(|x| !services.contains_key(x.as_str())) {
            r.span(
                s.name.span(),
                format!("report schedule {name:?}: unknown service {svc:?}"),
                "declare it under [services.NAME]",
            );
        }
        if let Some(c) = s.customer.as_ref().filter(|c| !services.values().any(|v| v.customers.contains(c))) {
            r.span(
                s.name.span(),
                format!("report schedule {name:?}: no service has customer {c:?}"),
                "add it to a service's customers",
            );
        }
        if let Some(v) = s.vendor.as_ref().filter(|v| !services.values().any(|x| x.vendor.as_ref() == Some(v))) {
            r.span(
                s.name.span(),
                format!("report schedule {name:?}: no service has vendor {v:?}"),
                "set vendor on a service",
            );
        }
        if let Some(tz) = s.timezone.as_ref().filter(|t| jiff::tz::TimeZone::get(t.get_ref()).is_err()) {
            r.span(
                tz.span(),
                format!("report schedule {name:?}: unknown time zone {:?}", tz.get_ref()),
                "an IANA name, e.g. \"Europe/Oslo\"",
            );
        }
        match receivers.get(s.receiver.get_ref().as_str()) {
            Some(rcv) if rcv.kind == ReceiverKind::Email => {}
            _ => r.span(
                s.receiver.span(),
                format!(
                    "report schedule {name:?}: receiver {:?} is not an email receiver",
                    s.receiver.get_ref().as_str()
                ),
                "name a receiver with kind = \"email\"",
            ),
        }
        if s.to.is_empty() {
            r.span(
                s.name.span(),
                format!("report schedule {name:?}: nobody to send it to"),
                "to = [\"sla@customer.example\"]",
            );
        }
        for a in &s.to {
            let t = a.get_ref();
            let ok = t.len() <= 254
                && t.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                && !t.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'));
            if !ok {
                r.span(
                    a.span(),
                    format!("report schedule {name:?}: {t:?} is not an email address"),
                    "name@domain, one per entry",
                );
            }
        }
    }
}

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
