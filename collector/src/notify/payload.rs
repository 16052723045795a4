//! The bodies each receiver kind documents: a generic signed webhook, Slack Block Kit, a Teams
//! Adaptive Card, and Alertmanager's webhook payload version 4. One cohesive thing (one message,
//! rendered per kind), hence its length.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::core::incident::{Incident, IncidentStatus};
use crate::core::time::rfc3339;

/// Everything a message needs to say.
#[derive(Clone, Debug)]
pub struct Message {
    /// "firing" or "resolved".
    pub event: String,
    /// A "firing" told again (a repeat while unacknowledged), not the first announcement.
    pub repeat: bool,
    pub incident: Incident,
    pub services: Vec<String>,
    pub customers: Vec<String>,
    pub receiver: String,
    /// Link to the incident's page, when the collector's `public_url` is set.
    pub url: Option<String>,
    /// The labels of what the (first) incident is about: its check's, or its agent's.
    pub labels: std::collections::BTreeMap<String, String>,
    pub external_url: String,
    pub sent_ms: i64,
    /// The message's title (subject, headline): the receiver's template or the default.
    pub title: String,
    /// The message's body text: the receiver's template or the default.
    pub text: String,
    /// Further incidents due for the same receiver at the same time, told in this one message
    /// (see `group_by`); empty for a message about one incident.
    pub more: Vec<Grouped>,
    /// The outbox entries this message delivers: they name it (see [`Message::notification_id`]).
    pub notification_ids: Vec<i64>,
    /// A "note" message's note, as the timeline has it ("alice: restarted the pool").
    pub note: Option<String>,
    /// The display time zone: times in the texts people read are local ("2026-11-29 08:56
    /// CET"); machine fields (JSON timestamps, Alertmanager, pagers) stay RFC 3339 UTC.
    pub tz: jiff::tz::TimeZone,
}

/// One incident of a grouped message.
#[derive(Clone, Debug)]
pub struct Grouped {
    pub incident: Incident,
    pub services: Vec<String>,
    pub customers: Vec<String>,
    pub url: Option<String>,
    /// The labels of what the incident is about (its check's, or its agent's).
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Chat products limit the blocks of one message: at most this many incidents are itemised,
/// the rest counted.
const CHAT_ITEMS: usize = 10;

/// The markup of a chat product, in which text from probes and plugins (incident titles carry
/// their error text) must not act as markup: no mentions, no links, no formatting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Markup {
    /// Slack's mrkdwn: `&`, `<` and `>` escaped (as Slack documents), so `<!channel>` or
    /// `<https://x|click>` stay text.
    SlackMrkdwn,
    /// Markdown (Teams, Discord): every markdown character escaped with a backslash.
    Markdown,
}

impl Markup {
    pub fn escape(self, text: &str) -> String {
        match self {
            Markup::SlackMrkdwn => text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
            Markup::Markdown => {
                let mut out = String::with_capacity(text.len());
                for c in text.chars() {
                    if "\\`*_[]()<>|~@".contains(c) {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out
            }
        }
    }
}

impl Message {
    /// `ms` in the display time zone, as people read it.
    pub fn local(&self, ms: i64) -> String {
        crate::core::time::Shown { tz: self.tz.clone(), now_ms: self.sent_ms }.local(ms)
    }

    /// A stable name for this message, the same at every delivery attempt and on whichever
    /// collector delivers it (a repeat after a failover carries the id of the first try), for
    /// receivers to deduplicate on. Sent as the `X-Vakt-Notification-Id` header and the
    /// `notification_id` field; empty for messages outside the outbox (tests, re-posts).
    pub fn notification_id(&self) -> String {
        if self.notification_ids.is_empty() {
            return String::new();
        }
        let ids: Vec<String> = self.notification_ids.iter().map(i64::to_string).collect();
        format!("vakt-{}", ids.join("-"))
    }

    /// The message with the text that came from probes (incident titles carry their error
    /// text) made inert in `markup`; templates and the defaults are then rendered from it.
    /// Subjects are ids (letters, digits, '-', '_', '.') and stay as they are.
    pub fn escaped_for(mut self, markup: Markup) -> Message {
        let esc = |i: &mut Incident| i.title = markup.escape(&i.title);
        esc(&mut self.incident);
        for g in &mut self.more {
            esc(&mut g.incident);
        }
        self
    }

    /// Every incident of the message, the first one first.
    pub fn all(&self) -> Vec<Grouped> {
        let first = Grouped {
            incident: self.incident.clone(),
            services: self.services.clone(),
            customers: self.customers.clone(),
            url: self.url.clone(),
            labels: self.labels.clone(),
        };
        std::iter::once(first).chain(self.more.iter().cloned()).collect()
    }

    fn grouped(&self) -> bool {
        !self.more.is_empty()
    }
    /// Fills `title` and `text` from the receiver's templates, or with the defaults. A template
    /// that fails to render falls back to the default and says why in the text: the message
    /// still goes out.
    pub fn with_texts(mut self, title: Option<&str>, text: Option<&str>) -> Message {
        let default_title = self.headline();
        let default_text = self.default_text();
        let ctx = self.template_context();
        let render = |tpl: Option<&str>, default: String| -> String {
            let Some(tpl) = tpl else { return default };
            let env = minijinja::Environment::new();
            match env.render_str(tpl, &ctx) {
                Ok(s) => s,
                Err(e) => format!("{default}\n(template error: {e})"),
            }
        };
        self.title = render(title, default_title);
        self.text = render(text, default_text);
        self
    }

    pub(crate) fn template_context(&self) -> Value {
        let incident = |g: &Grouped| {
            let i = &g.incident;
            json!({
                "id": i.id,
                "kind": i.kind.as_str(),
                "subject": i.subject,
                "title": i.title,
                "severity": i.severity,
                "priority": i.priority,
                "status": i.status.as_str(),
                "opened_at": rfc3339(i.opened_ms),
                "resolved_at": i.resolved_ms.map(rfc3339),
                "opened_local": self.local(i.opened_ms),
                "resolved_local": i.resolved_ms.map(|r| self.local(r)),
                "duration": i.resolved_ms.map(|r| crate::core::time::human_span(r - i.opened_ms)),
                "services": g.services,
                "customers": g.customers,
                "url": g.url,
            })
        };
        let all = self.all();
        json!({
            "event": self.event,
            "incident": incident(&all[0]),
            "incidents": all.iter().map(incident).collect::<Vec<_>>(),
            "count": all.len(),
            "services": self.services,
            "customers": self.customers,
            "url": self.url,
        })
    }

    fn default_text(&self) -> String {
        if self.grouped() {
            let mut text = String::new();
            for g in self.all() {
                let i = &g.incident;
                text.push_str(&format!("• [{}] {}\n  Since: {}", i.priority, i.title, self.local(i.opened_ms)));
                if let Some(r) = i.resolved_ms {
                    text.push_str(&format!(
                        ", resolved {} (after {})",
                        self.local(r),
                        crate::core::time::human_span(r - i.opened_ms)
                    ));
                }
                text.push_str(&format!("\n  Impact: {}\n", impact(&g.services, &g.customers)));
                if let Some(url) = &g.url {
                    text.push_str(&format!("  {url}\n"));
                }
            }
            return text;
        }
        let i = &self.incident;
        let mut text = format!(
            "Priority: {}\nSeverity: {}\nSince: {}\nImpact: {}\n",
            i.priority,
            i.severity,
            self.local(i.opened_ms),
            self.impact()
        );
        if let Some(r) = i.resolved_ms {
            text.push_str(&format!(
                "Resolved: {} (after {})\n",
                self.local(r),
                crate::core::time::human_span(r - i.opened_ms)
            ));
        }
        if let Some(url) = &self.url {
            text.push_str(&format!("{url}\n"));
        }
        text
    }

    fn resolved(&self) -> bool {
        self.event == "resolved"
    }

    fn headline(&self) -> String {
        if self.grouped() {
            let all = self.all();
            let n = all.len();
            if self.resolved() {
                return format!("[RESOLVED] {n} incidents: {}", subjects(&all));
            }
            let top = all
                .iter()
                .map(|g| g.incident.priority.as_str())
                .min_by_key(|p| crate::core::routing::priority_rank(p))
                .unwrap_or("P5");
            return format!("[{top}] {n} incidents: {}", subjects(&all));
        }
        let i = &self.incident;
        if self.resolved() {
            let took = i.resolved_ms.map(|r| crate::core::time::human_span(r - i.opened_ms)).unwrap_or_default();
            format!("[RESOLVED] {} (after {took})", i.title)
        } else {
            format!("[{}] {}", i.priority, i.title)
        }
    }

    fn impact(&self) -> String {
        if self.grouped() {
            let mut services: Vec<String> = self.all().into_iter().flat_map(|g| g.services).collect();
            let mut customers: Vec<String> = self.all().into_iter().flat_map(|g| g.customers).collect();
            services.sort();
            services.dedup();
            customers.sort();
            customers.dedup();
            return impact(&services, &customers);
        }
        impact(&self.services, &self.customers)
    }
}

fn impact(services: &[String], customers: &[String]) -> String {
    let mut parts = Vec::new();
    if !services.is_empty() {
        parts.push(format!("services: {}", services.join(", ")));
    }
    if !customers.is_empty() {
        parts.push(format!("customers: {}", customers.join(", ")));
    }
    if parts.is_empty() {
        "no service mapped".into()
    } else {
        parts.join("; ")
    }
}

/// "web, db and 3 more": the subjects of a grouped message, shortened.
fn subjects(all: &[Grouped]) -> String {
    const SHOWN: usize = 3;
    let names: Vec<&str> = all.iter().take(SHOWN).map(|g| g.incident.subject.as_str()).collect();
    if all.len() > SHOWN {
        format!("{} and {} more", names.join(", "), all.len() - SHOWN)
    } else {
        names.join(", ")
    }
}

/// HMAC-SHA256 (RFC 2104) of `body` under `key`, hex.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK { Sha256::digest(key).to_vec() } else { key.to_vec() };
    k.resize(BLOCK, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(body).finalize();
    let outer = Sha256::new().chain_update(&opad).chain_update(inner).finalize();
    hex::encode(outer)
}

/// The generic webhook body.
///
/// `incident` is the first (or only) incident, `incidents` all of them (a grouped message
/// carries several).
pub fn webhook(m: &Message) -> Value {
    let incident = |g: &Grouped| {
        let i = &g.incident;
        json!({
            "id": i.id,
            "kind": i.kind,
            "subject": i.subject,
            "title": i.title,
            "severity": i.severity,
            "priority": i.priority,
            "status": i.status,
            "opened_at": rfc3339(i.opened_ms),
            "acknowledged_at": i.acknowledged_ms.map(rfc3339),
            "resolved_at": i.resolved_ms.map(rfc3339),
            "duration_seconds": i.resolved_ms.map(|r| (r - i.opened_ms) as f64 / 1000.0),
            "services": g.services,
            "customers": g.customers,
            "url": g.url,
        })
    };
    let all = m.all();
    json!({
        "version": "1",
        "event": m.event,
        "incident": incident(&all[0]),
        "incidents": all.iter().map(incident).collect::<Vec<_>>(),
        "title": m.title,
        "text": m.text,
        "sent_at": rfc3339(m.sent_ms),
        "notification_id": m.notification_id(),
    })
}

/// Slack incoming webhook: `text` as the notification fallback, Block Kit blocks for the body.
pub fn slack(m: &Message) -> Value {
    let i = &m.incident;
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&m.title, 150), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&m.text, 3000)}}),
    ];
    if m.grouped() {
        let all = m.all();
        for g in all.iter().take(CHAT_ITEMS) {
            let mut section = json!({"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*{}*\n{} · {}", g.incident.subject, g.incident.priority, g.incident.severity)},
                {"type": "mrkdwn", "text": format!("*Since*\n{}", m.local(g.incident.opened_ms))},
            ]});
            if let Some(url) = &g.url {
                section["accessory"] =
                    json!({"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": url});
            }
            blocks.push(section);
        }
        if all.len() > CHAT_ITEMS {
            blocks.push(json!({"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("and {} more", all.len() - CHAT_ITEMS)}
            ]}));
        }
        return json!({"text": m.title, "blocks": blocks});
    }
    blocks.push(json!({"type": "section", "fields": [
        {"type": "mrkdwn", "text": format!("*Priority*\n{}", i.priority)},
        {"type": "mrkdwn", "text": format!("*Severity*\n{}", i.severity)},
        {"type": "mrkdwn", "text": format!("*Since*\n{}", m.local(i.opened_ms))},
        {"type": "mrkdwn", "text": format!("*Impact*\n{}", m.impact())},
    ]}));
    if let Some(url) = &m.url {
        blocks.push(json!({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open incident"}, "url": url}
        ]}));
    }
    json!({"text": m.title, "blocks": blocks})
}

/// Microsoft Teams Workflows webhook: a message with one Adaptive Card attachment.
pub fn teams(m: &Message) -> Value {
    let i = &m.incident;
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": m.title, "weight": "Bolder", "size": "Medium", "wrap": true,
             "color": if m.resolved() { "Good" } else { "Attention" }},
            {"type": "TextBlock", "text": m.text, "wrap": true},
            {"type": "FactSet", "facts": [
                {"title": "Priority", "value": i.priority},
                {"title": "Severity", "value": i.severity},
                {"title": "Since", "value": m.local(i.opened_ms)},
                {"title": "Impact", "value": m.impact()},
            ]},
        ],
    });
    if m.grouped() {
        let facts: Vec<Value> = m
            .all()
            .iter()
            .map(|g| json!({"title": g.incident.priority, "value": format!("{} (since {})", g.incident.title, m.local(g.incident.opened_ms))}))
            .collect();
        card["body"][2] = json!({"type": "FactSet", "facts": facts});
    }
    if let Some(url) = &m.url {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open incident", "url": url}]);
    }
    json!({
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}],
    })
}

/// Alertmanager's webhook payload, version 4: one alert per incident.
pub fn alertmanager(m: &Message) -> Value {
    let all = m.all();
    let alerts: Vec<Value> = all
        .iter()
        .map(|g| {
            let i = &g.incident;
            let status = if i.status == IncidentStatus::Resolved || m.resolved() { "resolved" } else { "firing" };
            json!({
                "status": status,
                "labels": alert_labels(g),
                "annotations": {"summary": i.title, "description": if m.grouped() { String::new() } else { m.text.clone() }, "impact": impact(&g.services, &g.customers)},
                "startsAt": rfc3339(i.opened_ms),
                "endsAt": i.resolved_ms.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                "generatorURL": g.url.clone().unwrap_or_else(|| m.external_url.clone()),
                "fingerprint": hex::encode(&Sha256::digest(i.dedup_key.as_bytes())[..8]),
            })
        })
        .collect();
    let status = if alerts.iter().any(|a| a["status"] == "firing") { "firing" } else { "resolved" };
    let common = |field: &str| -> serde_json::Map<String, Value> {
        let Some(first) = alerts[0][field].as_object() else { return Default::default() };
        first
            .iter()
            .filter(|(k, v)| alerts.iter().all(|a| a[field].get(k.as_str()) == Some(v)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let common_labels = common("labels");
    let mut common_annotations = common("annotations");
    if !m.grouped() {
        common_annotations.insert("description".into(), json!(m.text));
    }
    // Grouped by receiver: the group's labels are those all its alerts share, of the ones
    // Alertmanager users group by.
    let group_labels: serde_json::Map<String, Value> = common_labels
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "alertname" | "service" | "subject"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": m.receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": m.external_url,
        "alerts": alerts,
    })
}

/// An alert's labels: what routing in Alertmanager needs. The incident's own (alertname,
/// kind, the check or agent as `subject` and `check`/`agent`, severity, priority, its services,
/// each `service` and all as `services`) over the labels of its check or agent; never an empty
/// value.
fn alert_labels(g: &Grouped) -> Value {
    let i = &g.incident;
    let mut labels: serde_json::Map<String, Value> =
        g.labels.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut set = |k: &str, v: &str| {
        if !v.is_empty() {
            labels.insert(k.into(), json!(v));
        }
    };
    set("alertname", &format!("vakt_{}", i.kind.as_str()));
    set("kind", i.kind.as_str());
    set("subject", &i.subject);
    match i.kind {
        crate::core::incident::IncidentKind::CheckDown
        | crate::core::incident::IncidentKind::Flapping
        | crate::core::incident::IncidentKind::CheckWarning => set("check", &i.subject),
        crate::core::incident::IncidentKind::AgentSilent => set("agent", &i.subject),
        crate::core::incident::IncidentKind::SloBurn => set("slo", &i.subject),
    }
    set("severity", &i.severity);
    set("priority", &i.priority);
    set("service", g.services.first().map_or("", String::as_str));
    set("services", &g.services.join(","));
    Value::Object(labels)
}

/// How long a firing alert posted to Alertmanager's API stays firing without being posted again
/// (Vakt posts it again every minute while the incident lasts, as Prometheus does).
pub const ALERTMANAGER_ENDS_AFTER_MS: i64 = 5 * 60_000;

/// The body of a POST to Alertmanager's `/api/v2/alerts`: one alert per incident, firing ones
/// ending `ALERTMANAGER_ENDS_AFTER_MS` after `now_ms` unless posted again, resolved ones ending
/// at their resolution.
pub fn alertmanager_api(m: &Message, now_ms: i64) -> Value {
    let alerts: Vec<Value> = m
        .all()
        .iter()
        .map(|g| {
            let i = &g.incident;
            let resolved = i.status == IncidentStatus::Resolved || m.resolved();
            let ends = match (resolved, i.resolved_ms) {
                (true, Some(r)) => r,
                (true, None) => now_ms,
                (false, _) => now_ms + ALERTMANAGER_ENDS_AFTER_MS,
            };
            let description = if m.grouped() {
                format!("{} (impact: {})", i.title, impact(&g.services, &g.customers))
            } else {
                m.text.clone()
            };
            let mut annotations = json!({"summary": i.title, "description": description});
            if let Some(url) = &g.url {
                annotations["incident"] = json!(url);
            }
            json!({
                "labels": alert_labels(g),
                "annotations": annotations,
                "startsAt": rfc3339(i.opened_ms),
                "endsAt": rfc3339(ends),
                "generatorURL": g.url.clone().unwrap_or_else(|| m.external_url.clone()),
            })
        })
        .collect();
    Value::Array(alerts)
}

/// Discord webhook: a short `content` line and an embed.
pub fn discord(m: &Message) -> Value {
    let i = &m.incident;
    let mut embed = json!({
        "title": truncate(&m.title, 256),
        "description": truncate(&m.text, 4096),
        "color": if m.resolved() { 0x2e7d32 } else { 0xc62828 },
        "fields": [
            {"name": "Priority", "value": i.priority, "inline": true},
            {"name": "Severity", "value": i.severity, "inline": true},
            {"name": "Since", "value": m.local(i.opened_ms), "inline": true},
            {"name": "Impact", "value": truncate(&m.impact(), 1024), "inline": false},
        ],
    });
    if let Some(url) = &m.url {
        embed["url"] = json!(url);
    }
    if m.grouped() {
        // Discord takes at most 10 embeds: one per incident.
        let embeds: Vec<Value> = m
            .all()
            .iter()
            .take(CHAT_ITEMS)
            .map(|g| {
                let mut e = json!({
                    "title": truncate(&format!("[{}] {}", g.incident.priority, g.incident.title), 256),
                    "color": if m.resolved() { 0x2e7d32 } else { 0xc62828 },
                    "fields": [
                        {"name": "Severity", "value": g.incident.severity, "inline": true},
                        {"name": "Since", "value": m.local(g.incident.opened_ms), "inline": true},
                        {"name": "Impact", "value": truncate(&impact(&g.services, &g.customers), 1024), "inline": false},
                    ],
                });
                if let Some(url) = &g.url {
                    e["url"] = json!(url);
                }
                e
            })
            .collect();
        return json!({"content": truncate(&format!("{}\n{}", m.title, m.text), 2000), "embeds": embeds,
            "allowed_mentions": {"parse": []}});
    }
    // No @everyone, @here or role mention from whatever text a probe reported.
    json!({"content": truncate(&m.title, 2000), "embeds": [embed], "allowed_mentions": {"parse": []}})
}

/// An email: subject, plain text and HTML bodies.
pub fn email(m: &Message) -> (String, String, String) {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let link = m.url.as_ref().map(|u| format!("<p><a href=\"{}\">Open incident</a></p>", esc(u))).unwrap_or_default();
    let html = format!(
        "<html><body><h2>{}</h2><pre style=\"font-family: inherit\">{}</pre>{link}</body></html>",
        esc(&m.title),
        esc(&m.text)
    );
    (m.title.clone(), format!("{}\n\n{}", m.title, m.text), html)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        let incident = Incident {
            id: 7,
            dedup_key: "check:web".into(),
            kind: crate::core::incident::IncidentKind::CheckDown,
            subject: "web".into(),
            title: "web is down: status 500".into(),
            severity: "critical".into(),
            status: IncidentStatus::Open,
            opened_ms: 0,
            acknowledged_ms: None,
            acknowledged_by: None,
            resolved_ms: None,
            priority: "P1".into(),
            parent_id: None,
            timeline: Vec::new(),
        };
        Message {
            event: "firing".into(),
            incident,
            services: vec!["shop".into()],
            customers: vec!["acme".into()],
            receiver: "r".into(),
            labels: Default::default(),
            repeat: false,
            url: None,
            external_url: String::new(),
            sent_ms: 0,
            title: String::new(),
            text: String::new(),
            more: Vec::new(),
            notification_ids: vec![7],
            note: None,
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    #[test]
    fn templates_render_and_fall_back_to_defaults() {
        let m = message().with_texts(None, None);
        assert_eq!(m.title, "[P1] web is down: status 500");
        assert!(m.text.contains("Impact: services: shop; customers: acme"), "{}", m.text);
        let m = message().with_texts(
            Some("{{ incident.priority }} {{ incident.subject }} for {{ customers | join(', ') }}"),
            Some("{{ event }}"),
        );
        assert_eq!((m.title.as_str(), m.text.as_str()), ("P1 web for acme", "firing"));
        // People read local times and durations in words; the template keeps the UTC instant.
        // Opened at 0 (1970-01-01 00:00 UTC) is 01:00 in Oslo (CET, UTC+1); resolved 3 h 20 min
        // and 5 s later.
        let mut oslo = message();
        oslo.tz = jiff::tz::TimeZone::get("Europe/Oslo").unwrap();
        oslo.event = "resolved".into();
        oslo.incident.resolved_ms = Some((3 * 3600 + 20 * 60 + 5) * 1000);
        let m = oslo.with_texts(None, Some("{{ incident.opened_at }} = {{ incident.opened_local }}"));
        assert_eq!(m.title, "[RESOLVED] web is down: status 500 (after 3 h 20 min)");
        assert_eq!(m.text, "1970-01-01T00:00:00Z = 1970-01-01 01:00 CET");
        let m = Message { tz: jiff::tz::TimeZone::get("Europe/Oslo").unwrap(), ..message() }.with_texts(None, None);
        assert!(m.text.contains("Since: 1970-01-01 01:00 CET\n"), "{}", m.text);
        let m = message().with_texts(Some("{{ incident.nope.deeper }}"), None);
        assert!(m.title.starts_with("[P1] web is down"), "a broken template still sends: {}", m.title);
    }

    fn grouped() -> Message {
        let mut m = message();
        let mut db = m.incident.clone();
        db.id = 8;
        db.dedup_key = "check:db".into();
        db.subject = "db".into();
        db.title = "db is down: connection refused".into();
        db.priority = "P2".into();
        m.more.push(Grouped {
            incident: db,
            services: vec!["billing".into()],
            customers: vec![],
            url: None,
            labels: Default::default(),
        });
        m.with_texts(None, None)
    }

    /// Alertmanager's API takes a list of alerts: one per incident, labelled for routing (the
    /// check's own labels under Vakt's, no empty value: db has no service), firing ones ending
    /// five minutes after they are posted unless posted again, resolved ones at their end.
    #[test]
    fn alertmanager_api_alerts_carry_routing_labels_and_end_as_told() {
        let mut m = grouped();
        m.labels.insert("tier".into(), "frontend".into());
        m.labels.insert("severity".into(), "mine".into());
        m.url = Some("https://vakt.example/incidents/7".into());
        let now = 1_800_000_000_000;
        let alerts = alertmanager_api(&m, now);
        let web = &alerts[0];
        assert_eq!(web["labels"]["alertname"], "vakt_check_down");
        assert_eq!((web["labels"]["check"].as_str(), web["labels"]["tier"].as_str()), (Some("web"), Some("frontend")));
        assert_eq!(web["labels"]["severity"], "critical", "Vakt's own labels win");
        assert_eq!(web["annotations"]["incident"], "https://vakt.example/incidents/7");
        assert_eq!(web["endsAt"], rfc3339(now + 300_000));
        let db = &alerts[1];
        assert!(db["labels"].get("service").is_none_or(|s| s != ""), "{db}");
        assert!(db["labels"].as_object().unwrap().values().all(|v| v.as_str().is_some_and(|s| !s.is_empty())), "{db}");
        assert!(db["annotations"]["description"].as_str().unwrap().starts_with("db is down"), "{db}");
        let mut resolved = message();
        resolved.event = "resolved".into();
        resolved.incident.status = IncidentStatus::Resolved;
        resolved.incident.resolved_ms = Some(now - 60_000);
        assert_eq!(alertmanager_api(&resolved, now)[0]["endsAt"], rfc3339(now - 60_000));
    }

    #[test]
    fn a_grouped_message_tells_of_every_incident_in_each_format() {
        let m = grouped();
        assert_eq!(m.title, "[P1] 2 incidents: web, db");
        assert!(m.text.contains("[P1] web is down: status 500") && m.text.contains("[P2] db is down"), "{}", m.text);
        let w = webhook(&m);
        assert_eq!(w["incident"]["subject"], "web", "the first incident, as for one");
        let subjects: Vec<&str> =
            w["incidents"].as_array().unwrap().iter().map(|i| i["subject"].as_str().unwrap()).collect();
        assert_eq!(subjects, ["web", "db"]);
        assert_eq!(w["incidents"][1]["services"], json!(["billing"]));
        let a = alertmanager(&m);
        assert_eq!(a["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(a["alerts"][1]["labels"]["subject"], "db");
        assert_eq!(
            a["commonLabels"],
            json!({"alertname": "vakt_check_down", "kind": "check_down", "severity": "critical"})
        );
        assert_eq!(a["groupLabels"], json!({"alertname": "vakt_check_down"}));
        assert_eq!(a["groupKey"], "{}:{alertname=\"vakt_check_down\"}");
        assert_ne!(a["alerts"][0]["fingerprint"], a["alerts"][1]["fingerprint"]);
        let s = slack(&m);
        assert_eq!(s["blocks"].as_array().unwrap().len(), 4, "header, text, one section per incident: {s}");
        assert!(s["blocks"][3]["fields"][0]["text"].as_str().unwrap().contains("*db*"));
        assert_eq!(discord(&m)["embeds"].as_array().unwrap().len(), 2);
        let t = teams(&m);
        assert_eq!(t["attachments"][0]["content"]["body"][2]["facts"].as_array().unwrap().len(), 2);
        let (subject, text, _) = email(&m);
        assert_eq!(subject, "[P1] 2 incidents: web, db");
        assert!(text.contains("db is down"));
    }

    #[test]
    fn one_incident_alone_keeps_the_single_message_shape() {
        let m = message().with_texts(None, None);
        let a = alertmanager(&m);
        assert_eq!(a["groupKey"], "{}:{alertname=\"vakt_check_down\", service=\"shop\", subject=\"web\"}");
        assert_eq!(a["commonAnnotations"]["description"], json!(m.text));
        assert_eq!(webhook(&m)["incidents"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn probe_text_cannot_act_as_chat_markup() {
        assert_eq!(
            Markup::SlackMrkdwn.escape("down: <!channel> <https://evil.example|click> & more"),
            "down: &lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; more"
        );
        assert_eq!(
            Markup::Markdown.escape("[click](https://e.x) *now* @everyone"),
            "\\[click\\]\\(https://e.x\\) \\*now\\* \\@everyone"
        );
        let mut m = message();
        m.incident.title = "web is down: <!channel> [x](https://e.x)".into();
        let slack =
            serde_json::to_string(&slack(&m.clone().escaped_for(Markup::SlackMrkdwn).with_texts(None, None))).unwrap();
        assert!(!slack.contains("<!channel>") && slack.contains("&lt;!channel&gt;"), "{slack}");
        let discord = discord(&m.clone().escaped_for(Markup::Markdown).with_texts(None, None));
        assert_eq!(discord["allowed_mentions"], json!({"parse": []}));
        assert!(!discord.to_string().contains("[x](https"), "{discord}");
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
