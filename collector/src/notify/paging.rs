//! Pagers that keep an alert of their own per incident: PagerDuty (Events API v2) and Opsgenie
//! (Alert API, also Jira Service Management's alerts). Each incident is one alert there, named
//! by a key stable for the incident's life (`dedup_key`, `alias`): a repeat, a second delivery
//! after a failover or a restart names the same alert, so nobody is paged twice. Vakt tells them
//! of the incident's opening, its acknowledgement and its resolution.
//!
//! The bodies follow the vendors' documentation:
//! - PagerDuty: `POST /v2/enqueue` with `routing_key`, `event_action` (trigger, acknowledge,
//!   resolve), `dedup_key`, and for a trigger `payload` (summary, source, severity, timestamp,
//!   component, group, class, custom_details), `links`, `client`, `client_url`.
//! - Opsgenie: `POST /v2/alerts` (message, alias, description, tags, details, entity, source,
//!   priority), `POST /v2/alerts/{alias}/acknowledge?identifierType=alias` and `/close`, with
//!   `Authorization: GenieKey <key>`.

use serde_json::{json, Value};

use super::payload::Message;
use crate::core::time::rfc3339;

/// The alert's key at the pager for an incident: the same for every message about it.
pub fn dedup_key(incident_id: i64) -> String {
    format!("vakt-incident-{incident_id}")
}

/// PagerDuty's severity for Vakt's priority: P1 critical, P2 error, P3 warning, P4-P5 info.
pub fn pagerduty_severity(priority: &str) -> &'static str {
    match priority {
        "P1" => "critical",
        "P2" => "error",
        "P3" => "warning",
        _ => "info",
    }
}

/// What the pager is asked to do with the incident's alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Trigger,
    Acknowledge,
    Resolve,
}

impl Lifecycle {
    pub fn of(event: &str) -> Lifecycle {
        match event {
            "resolved" => Lifecycle::Resolve,
            "acknowledged" => Lifecycle::Acknowledge,
            // "firing", and repeats and escalations of it.
            _ => Lifecycle::Trigger,
        }
    }
}

/// Cuts `s` to at most `max` characters (the vendors' field limits), marking the cut.
fn at_most(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The incident's latest timeline text of `kind` (the acknowledgement with its note, the
/// resolution), or `default`.
pub(super) fn said(m: &Message, kind: &str, default: &str) -> String {
    m.incident.timeline.iter().rev().find(|e| e.kind == kind).map_or_else(|| default.to_string(), |e| e.message.clone())
}

/// The Events API v2 body for the message's (single) incident.
pub fn pagerduty(m: &Message, routing_key: &str) -> Value {
    let i = &m.incident;
    let action = match Lifecycle::of(&m.event) {
        Lifecycle::Trigger => "trigger",
        Lifecycle::Acknowledge => "acknowledge",
        Lifecycle::Resolve => "resolve",
    };
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(i.id),
    });
    if action != "trigger" {
        return body;
    }
    body["payload"] = json!({
        "summary": at_most(&m.title, 1024),
        "source": i.subject,
        "severity": pagerduty_severity(&i.priority),
        "timestamp": rfc3339(i.opened_ms),
        "component": i.subject,
        "group": m.services.join(", "),
        "class": i.kind.as_str(),
        "custom_details": {
            "incident_id": i.id,
            "priority": i.priority,
            "severity": i.severity,
            "services": m.services,
            "customers": m.customers,
            "labels": m.labels,
            "details": m.text,
            "notification_id": m.notification_id(),
        },
    });
    if let Some(url) = &m.url {
        body["links"] = json!([{ "href": url, "text": format!("Incident {} in Vakt", i.id) }]);
    }
    body["client"] = json!("Vakt");
    if !m.external_url.is_empty() {
        body["client_url"] = json!(m.external_url);
    }
    body
}

/// The Opsgenie request for the message's (single) incident: the path under the API's base
/// URL and the body.
pub fn opsgenie(m: &Message) -> (String, Value) {
    let i = &m.incident;
    let alias = dedup_key(i.id);
    match Lifecycle::of(&m.event) {
        Lifecycle::Trigger => {
            let mut tags: Vec<String> = vec!["vakt".into(), i.kind.as_str().into()];
            tags.extend(m.services.iter().cloned());
            let mut details = serde_json::Map::new();
            details.insert("incident_id".into(), json!(i.id.to_string()));
            details.insert("severity".into(), json!(i.severity));
            if !m.services.is_empty() {
                details.insert("services".into(), json!(m.services.join(", ")));
            }
            if !m.customers.is_empty() {
                details.insert("customers".into(), json!(m.customers.join(", ")));
            }
            if let Some(url) = &m.url {
                details.insert("url".into(), json!(url));
            }
            details.insert("notification_id".into(), json!(m.notification_id()));
            let body = json!({
                "message": at_most(&m.title, 130),
                "alias": alias,
                "description": at_most(&m.text, 15_000),
                "tags": tags,
                "details": details,
                "entity": i.subject,
                "source": "Vakt",
                "priority": if ["P1", "P2", "P3", "P4", "P5"].contains(&i.priority.as_str()) { i.priority.as_str() } else { "P3" },
            });
            ("/v2/alerts".into(), body)
        }
        Lifecycle::Acknowledge => {
            let by = m.incident.acknowledged_by.clone().unwrap_or_else(|| "Vakt".into());
            let note = said(m, "acknowledged", &format!("acknowledged by {by} in Vakt"));
            let body = json!({ "user": by, "source": "Vakt", "note": at_most(&note, 25_000) });
            (format!("/v2/alerts/{alias}/acknowledge?identifierType=alias"), body)
        }
        Lifecycle::Resolve => {
            let note = said(m, "resolved", "resolved in Vakt");
            let body = json!({ "source": "Vakt", "note": at_most(&note, 25_000) });
            (format!("/v2/alerts/{alias}/close?identifierType=alias"), body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_follow_priority_one_to_one() {
        let got: Vec<&str> = ["P1", "P2", "P3", "P4", "P5"].iter().map(|p| pagerduty_severity(p)).collect();
        assert_eq!(got, ["critical", "error", "warning", "info", "info"]);
    }

    #[test]
    fn long_titles_are_cut_to_the_field_limit() {
        let s = "x".repeat(200);
        let cut = at_most(&s, 130);
        assert_eq!(cut.chars().count(), 130);
        assert!(cut.ends_with('…'));
        assert_eq!(at_most("short", 130), "short");
    }

    #[test]
    fn events_map_to_actions() {
        assert_eq!(Lifecycle::of("firing"), Lifecycle::Trigger);
        assert_eq!(Lifecycle::of("acknowledged"), Lifecycle::Acknowledge);
        assert_eq!(Lifecycle::of("resolved"), Lifecycle::Resolve);
    }
}
