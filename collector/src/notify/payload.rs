//! The bodies each receiver kind documents: a generic signed webhook, Slack Block Kit, a Teams
//! Adaptive Card, and Alertmanager's webhook payload version 4.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::incident::{Incident, IncidentStatus};
use crate::time::rfc3339;

/// Everything a message needs to say.
#[derive(Clone, Debug)]
pub struct Message {
    /// "firing" or "resolved".
    pub event: String,
    pub incident: Incident,
    pub services: Vec<String>,
    pub customers: Vec<String>,
    pub receiver: String,
    /// Link to the incident, when the collector's `public_url` is set.
    pub url: Option<String>,
    pub external_url: String,
    pub sent_ms: i64,
    /// The message's title (subject, headline): the receiver's template or the default.
    pub title: String,
    /// The message's body text: the receiver's template or the default.
    pub text: String,
}

impl Message {
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

    fn template_context(&self) -> Value {
        let i = &self.incident;
        json!({
            "event": self.event,
            "incident": {
                "id": i.id,
                "kind": i.kind.as_str(),
                "subject": i.subject,
                "title": i.title,
                "severity": i.severity,
                "priority": i.priority,
                "status": i.status.as_str(),
                "opened_at": rfc3339(i.opened_ms),
                "resolved_at": i.resolved_ms.map(rfc3339),
                "duration": i.resolved_ms.map(|r| crate::time::human_duration_ms(r - i.opened_ms)),
            },
            "services": self.services,
            "customers": self.customers,
            "url": self.url,
        })
    }

    fn default_text(&self) -> String {
        let i = &self.incident;
        let mut text = format!(
            "Priority: {}\nSeverity: {}\nSince: {}\nImpact: {}\n",
            i.priority,
            i.severity,
            rfc3339(i.opened_ms),
            self.impact()
        );
        if let Some(r) = i.resolved_ms {
            text.push_str(&format!(
                "Resolved: {} (after {})\n",
                rfc3339(r),
                crate::time::human_duration_ms(r - i.opened_ms)
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
        let i = &self.incident;
        if self.resolved() {
            let took = i.resolved_ms.map(|r| crate::time::human_duration_ms(r - i.opened_ms)).unwrap_or_default();
            format!("[RESOLVED] {} (after {took})", i.title)
        } else {
            format!("[{}] {}", i.priority, i.title)
        }
    }

    fn impact(&self) -> String {
        let mut parts = Vec::new();
        if !self.services.is_empty() {
            parts.push(format!("services: {}", self.services.join(", ")));
        }
        if !self.customers.is_empty() {
            parts.push(format!("customers: {}", self.customers.join(", ")));
        }
        if parts.is_empty() {
            "no service mapped".into()
        } else {
            parts.join("; ")
        }
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
pub fn webhook(m: &Message) -> Value {
    let i = &m.incident;
    json!({
        "version": "1",
        "event": m.event,
        "incident": {
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
            "services": m.services,
            "customers": m.customers,
            "url": m.url,
        },
        "title": m.title,
        "text": m.text,
        "sent_at": rfc3339(m.sent_ms),
    })
}

/// Slack incoming webhook: `text` as the notification fallback, Block Kit blocks for the body.
pub fn slack(m: &Message) -> Value {
    let i = &m.incident;
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&m.title, 150), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&m.text, 3000)}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Priority*\n{}", i.priority)},
            {"type": "mrkdwn", "text": format!("*Severity*\n{}", i.severity)},
            {"type": "mrkdwn", "text": format!("*Since*\n{}", rfc3339(i.opened_ms))},
            {"type": "mrkdwn", "text": format!("*Impact*\n{}", m.impact())},
        ]}),
    ];
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
                {"title": "Since", "value": rfc3339(i.opened_ms)},
                {"title": "Impact", "value": m.impact()},
            ]},
        ],
    });
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
    let i = &m.incident;
    let status = if i.status == IncidentStatus::Resolved || m.resolved() { "resolved" } else { "firing" };
    let labels = json!({
        "alertname": format!("vakt_{}", i.kind.as_str()),
        "subject": i.subject,
        "severity": i.severity,
        "priority": i.priority,
        "service": m.services.first().cloned().unwrap_or_default(),
    });
    let annotations = json!({"summary": i.title, "description": m.text, "impact": m.impact()});
    let fingerprint = hex::encode(&Sha256::digest(i.dedup_key.as_bytes())[..8]);
    let group_labels = json!({"alertname": format!("vakt_{}", i.kind.as_str())});
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"vakt_{}\", subject=\"{}\"}}", i.kind.as_str(), i.subject),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": m.receiver,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": m.external_url,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(i.opened_ms),
            "endsAt": i.resolved_ms.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "generatorURL": m.url.clone().unwrap_or_else(|| m.external_url.clone()),
            "fingerprint": fingerprint,
        }],
    })
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
            {"name": "Since", "value": rfc3339(i.opened_ms), "inline": true},
            {"name": "Impact", "value": truncate(&m.impact(), 1024), "inline": false},
        ],
    });
    if let Some(url) = &m.url {
        embed["url"] = json!(url);
    }
    json!({"content": truncate(&m.title, 2000), "embeds": [embed]})
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
            kind: crate::incident::IncidentKind::CheckDown,
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
            url: None,
            external_url: String::new(),
            sent_ms: 0,
            title: String::new(),
            text: String::new(),
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
        let m = message().with_texts(Some("{{ incident.nope.deeper }}"), None);
        assert!(m.title.starts_with("[P1] web is down"), "a broken template still sends: {}", m.title);
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
