//! Where notifications go: receivers and the routes that pick them.

use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

use crate::diagnostics::Reporter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverKind {
    /// JSON POST with an HMAC-SHA256 signature header over the body.
    Webhook,
    /// Slack incoming webhook, Block Kit message.
    Slack,
    /// Microsoft Teams Workflows webhook, Adaptive Card.
    Teams,
    /// Alertmanager's API: alerts posted to `{url}/api/v2/alerts` (firing with `startsAt`,
    /// re-posted every minute while firing, resolved with `endsAt`).
    Alertmanager,
    /// A webhook in the shape Alertmanager sends its own webhook receivers (version 4 payload),
    /// for consumers of Alertmanager webhooks.
    AlertmanagerWebhook,
    /// Discord webhook, with an embed.
    Discord,
    /// Email over SMTP: plain text and HTML.
    Email,
    /// PagerDuty Events API v2: trigger on open, acknowledge, resolve, one `dedup_key` per
    /// incident. `routing_key` is the integration key of a PagerDuty service.
    #[serde(rename = "pagerduty")]
    PagerDuty,
    /// Opsgenie (and Jira Service Management's alerts) API: create, acknowledge, close, the
    /// incident's alias as the dedup key. `api_key` is an API integration key.
    Opsgenie,
    /// ServiceNow's Table API: one `incident` ticket per Vakt incident (found again by its
    /// `correlation_id`), work notes for acknowledgements and notes, resolved with a close code.
    #[serde(rename = "servicenow")]
    ServiceNow,
    /// Jira (Service Management) issues: one per Vakt incident (found again by its label),
    /// comments for acknowledgements and notes, a transition on resolution.
    Jira,
}

impl ReceiverKind {
    /// Receivers that keep an alert of their own per incident: they get one message per
    /// incident (never a group) and are told of acknowledgements as well as openings and
    /// resolutions.
    pub fn follows_lifecycle(self) -> bool {
        matches!(self, ReceiverKind::PagerDuty | ReceiverKind::Opsgenie | ReceiverKind::ServiceNow | ReceiverKind::Jira)
    }

    /// Service desks: they keep a ticket per incident and take people's notes on it.
    pub fn is_service_desk(self) -> bool {
        matches!(self, ReceiverKind::ServiceNow | ReceiverKind::Jira)
    }

    /// The kind as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            ReceiverKind::Webhook => "webhook",
            ReceiverKind::Slack => "slack",
            ReceiverKind::Teams => "teams",
            ReceiverKind::Alertmanager => "alertmanager",
            ReceiverKind::AlertmanagerWebhook => "alertmanager_webhook",
            ReceiverKind::Discord => "discord",
            ReceiverKind::Email => "email",
            ReceiverKind::PagerDuty => "pagerduty",
            ReceiverKind::Opsgenie => "opsgenie",
            ReceiverKind::ServiceNow => "servicenow",
            ReceiverKind::Jira => "jira",
        }
    }

    /// Where the receiver's API is when no `url` is given.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            ReceiverKind::PagerDuty => Some("https://events.pagerduty.com/v2/enqueue"),
            ReceiverKind::Opsgenie => Some("https://api.opsgenie.com"),
            _ => None,
        }
    }

    /// The secret field the receiver authenticates with, if it has one of its own.
    pub fn key_field(self) -> Option<&'static str> {
        match self {
            ReceiverKind::PagerDuty => Some("routing_key"),
            ReceiverKind::Opsgenie => Some("api_key"),
            _ => None,
        }
    }
}

/// How email reaches the SMTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: for a relay on the same host or network only.
    None,
}

/// A secret given inline, by environment variable, or in a file (surrounding whitespace
/// ignored). Never logged.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl Secret {
    pub fn is_set(&self) -> bool {
        self.value.is_some() || self.env.is_some() || self.file.is_some()
    }

    /// The secret's value; the error names where it was looked for, never the value.
    pub fn read(&self) -> Result<Option<String>, String> {
        if let Some(v) = &self.value {
            return Ok(Some(v.clone()));
        }
        if let Some(var) = &self.env {
            return std::env::var(var).map(Some).map_err(|_| format!("environment variable {var} is not set"));
        }
        if let Some(path) = &self.file {
            return std::fs::read_to_string(path)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|e| format!("cannot read {}: {e}", path.display()));
        }
        Ok(None)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub kind: ReceiverKind,
    /// The URL to POST to (often a secret itself: Slack and Teams URLs carry a token).
    #[serde(default)]
    pub url: Option<Spanned<Secret>>,
    /// Email: the SMTP server as host:port.
    #[serde(default)]
    pub smtp: Option<Spanned<String>>,
    #[serde(default)]
    pub smtp_tls: SmtpTls,
    /// Email: a PEM file of CA certificates to trust for the SMTP server (for a private CA),
    /// in addition to the system's roots.
    #[serde(default)]
    pub smtp_ca_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Email: the sender, e.g. "Vakt <vakt@example.com>".
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// Email: the recipients.
    #[serde(default)]
    pub to: Vec<Spanned<String>>,
    /// Webhook: the HMAC-SHA256 key for the `X-Vakt-Signature` header.
    #[serde(default)]
    pub signing_secret: Option<Secret>,
    /// PagerDuty: the service's Events API v2 integration key.
    #[serde(default)]
    pub routing_key: Option<Secret>,
    /// Opsgenie: the API integration key (sent as `Authorization: GenieKey ...`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Jira: the project the issues go to (its key, e.g. "OPS").
    #[serde(default)]
    pub project: Option<String>,
    /// Jira: the issue type (default "Incident").
    #[serde(default)]
    pub issue_type: Option<String>,
    /// Jira: the transition that resolves an issue (default "Resolve").
    #[serde(default)]
    pub resolve_transition: Option<String>,
    /// ServiceNow: the close code of a resolved ticket (default "Solution provided").
    #[serde(default)]
    pub close_code: Option<String>,
    /// Service desks: fields of a new ticket, each a minijinja template over the message
    /// (the same variables as `title`); a value that renders as JSON (an object, a list) is
    /// sent as such, an empty one leaves the field out. These override Vakt's own.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
    /// A minijinja template for the message's title (email subject, chat headline). Variables:
    /// `event` ("firing" or "resolved"), `incident` (`id`, `kind`, `subject`, `title`,
    /// `severity`, `priority`, `status`, `opened_at`, `resolved_at`, `duration`), `services`,
    /// `customers`, `url`. Default: "[P2] shop-home is down: status 500".
    #[serde(default)]
    pub title: Option<Spanned<String>>,
    /// A minijinja template for the message's body text (same variables).
    #[serde(default)]
    pub text: Option<Spanned<String>>,
    /// Attempts before a notification is marked failed (default 10).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_max_attempts() -> u32 {
    10
}

/// A route: incidents it matches go to its receivers. Routes are tried in order; the first
/// that matches ends the search unless it says `continue = true`. An empty matcher matches all.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Services touched by the incident (any of them).
    #[serde(default)]
    pub services: Vec<Spanned<String>>,
    /// Incident kinds: check_down, agent_silent, slo_burn, flapping, check_warning. A route
    /// takes check_warning incidents only when it names that kind or the severity "warning".
    #[serde(default)]
    pub kinds: Vec<Spanned<String>>,
    /// Labels of the incident's check (or agent) that must all be present with these values.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Severities: critical, page, ticket, warning.
    #[serde(default)]
    pub severities: Vec<String>,
    /// Only incidents of this priority or higher ("P2" matches P1 and P2).
    #[serde(default)]
    pub min_priority: Option<Spanned<String>>,
    pub receivers: Vec<Spanned<String>>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Not acknowledged within this long: notify `escalate_to` as well.
    #[serde(default)]
    pub escalate_after: Option<crate::HumanDuration>,
    #[serde(default)]
    pub escalate_to: Vec<Spanned<String>>,
}

pub const INCIDENT_KINDS: &[&str] = &["check_down", "agent_silent", "slo_burn", "flapping", "check_warning"];

impl RouteConfig {
    pub fn validate(
        &self,
        i: usize,
        receivers: &std::collections::BTreeMap<crate::Id, ReceiverConfig>,
        services: &std::collections::BTreeMap<crate::Id, crate::slo::ServiceConfig>,
        r: &mut Reporter<'_>,
    ) {
        if self.escalate_after.is_some() == self.escalate_to.is_empty() {
            let at = self.receivers.first().map(|r| r.span().start).unwrap_or(0);
            r.at(
                at,
                format!("route {}: escalate_after and escalate_to go together", i + 1),
                Some("e.g. escalate_after = \"15m\", escalate_to = [\"duty-manager\"]".into()),
            );
        }
        for rcv in self.receivers.iter().chain(&self.escalate_to) {
            if !receivers.contains_key(rcv.get_ref().as_str()) {
                r.span(
                    rcv.span(),
                    format!("route {}: unknown receiver {:?}", i + 1, rcv.get_ref()),
                    "declare it under [receivers.NAME]",
                );
            }
        }
        for s in &self.services {
            if !services.contains_key(s.get_ref().as_str()) {
                r.span(
                    s.span(),
                    format!("route {}: unknown service {:?}", i + 1, s.get_ref()),
                    "declare it under [services.NAME]",
                );
            }
        }
        for k in &self.kinds {
            if !INCIDENT_KINDS.contains(&k.get_ref().as_str()) {
                r.span(
                    k.span(),
                    format!("route {}: unknown incident kind {:?}", i + 1, k.get_ref()),
                    format!("use one of {}", INCIDENT_KINDS.join(", ")),
                );
            }
        }
        if let Some(p) = &self.min_priority {
            if !matches!(p.get_ref().as_str(), "P1" | "P2" | "P3" | "P4" | "P5") {
                r.span(
                    p.span(),
                    format!("route {}: min_priority {:?} is not P1..P5", i + 1, p.get_ref()),
                    "e.g. \"P2\"",
                );
            }
        }
    }
}

impl ReceiverConfig {
    pub fn validate(&self, name: &str, r: &mut Reporter<'_>) {
        let at = self.url.as_ref().map(|u| u.span()).or_else(|| self.smtp.as_ref().map(|s| s.span())).unwrap_or(0..0);
        let hint = |h: &str| Some(h.to_string());
        if self.kind == ReceiverKind::Email {
            match &self.smtp {
                Some(s) if crate::check::valid_host_port(s.get_ref()) => {}
                Some(s) => r.span(
                    s.span(),
                    format!("receiver {name:?}: smtp {:?} is not host:port", s.get_ref()),
                    "e.g. \"smtp.example.com:587\"",
                ),
                None => r.at(
                    at.start,
                    format!("receiver {name:?}: an email receiver needs smtp"),
                    hint("e.g. smtp = \"smtp.example.com:587\""),
                ),
            }
            match &self.from {
                Some(f) if f.get_ref().contains('@') => {}
                Some(f) => r.span(
                    f.span(),
                    format!("receiver {name:?}: from {:?} is not an address", f.get_ref()),
                    "e.g. \"Vakt <vakt@example.com>\"",
                ),
                None => r.at(
                    at.start,
                    format!("receiver {name:?}: an email receiver needs from"),
                    hint("e.g. from = \"vakt@example.com\""),
                ),
            }
            if let Some(ca) = &self.smtp_ca_file {
                if !ca.get_ref().is_file() {
                    r.span(
                        ca.span(),
                        format!("receiver {name:?}: smtp_ca_file {} does not exist", ca.get_ref().display()),
                        "give the path of a PEM file with the CA certificate",
                    );
                }
            }
            if self.to.is_empty() {
                r.at(
                    at.start,
                    format!("receiver {name:?}: an email receiver needs to = [...]"),
                    hint("e.g. to = [\"oncall@example.com\"]"),
                );
            }
            for t in &self.to {
                if !t.get_ref().contains('@') {
                    r.span(
                        t.span(),
                        format!("receiver {name:?}: {:?} is not an address", t.get_ref()),
                        "e.g. \"oncall@example.com\"",
                    );
                }
            }
            if let Some(u) = &self.url {
                r.span(u.span(), format!("receiver {name:?}: url does not apply to email"), "use smtp, from and to");
            }
        } else {
            match &self.url {
                Some(u) if u.get_ref().is_set() => {}
                None if self.kind.default_url().is_some() => {}
                Some(u) => r.span(
                    u.span(),
                    format!("receiver {name:?}: url has no value, env or file"),
                    "e.g. url = { env = \"SLACK_WEBHOOK_URL\" }",
                ),
                None => r.at(
                    at.start,
                    format!("receiver {name:?}: needs url"),
                    hint("e.g. url = { env = \"SLACK_WEBHOOK_URL\" }"),
                ),
            }
            if let Some(s) = &self.smtp {
                r.span(s.span(), format!("receiver {name:?}: smtp applies to email receivers"), "remove it");
            }
        }
        for (field, t) in [("title", &self.title), ("text", &self.text)] {
            if let Some(t) = t {
                let mut env = minijinja::Environment::new();
                if let Err(e) = env.add_template("t", t.get_ref()) {
                    r.span(
                        t.span(),
                        format!("receiver {name:?}: {field} template: {}", e.detail().unwrap_or("syntax error")),
                        "see https://docs.rs/minijinja for the syntax",
                    );
                }
            }
        }
        if self.signing_secret.is_some() && self.kind != ReceiverKind::Webhook {
            r.at(
                at.start,
                format!("receiver {name:?}: signing_secret applies to webhook receivers"),
                hint("remove it"),
            );
        }
        for (field, key) in [("routing_key", &self.routing_key), ("api_key", &self.api_key)] {
            let wanted = self.kind.key_field() == Some(field);
            match key {
                Some(k) if wanted && !k.is_set() => r.at(
                    at.start,
                    format!("receiver {name:?}: {field} has no value, env or file"),
                    hint(&format!("e.g. {field} = {{ env = \"{}\" }}", field.to_uppercase())),
                ),
                Some(_) if !wanted => r.at(
                    at.start,
                    format!("receiver {name:?}: {field} does not apply to a {} receiver", self.kind.name()),
                    hint("remove it"),
                ),
                None if wanted => r.at(
                    at.start,
                    format!("receiver {name:?}: needs {field}"),
                    hint(&format!("e.g. {field} = {{ env = \"{}\" }}", field.to_uppercase())),
                ),
                _ => {}
            }
        }
        if self.kind.is_service_desk() {
            if self.username.is_none() || self.password.is_none() {
                r.at(
                    at.start,
                    format!("receiver {name:?}: a {} receiver needs username and password", self.kind.name()),
                    hint(match self.kind {
                        ReceiverKind::Jira => {
                            "the account's email and an API token: password = { env = \"JIRA_API_TOKEN\" }"
                        }
                        _ => "an integration user: username = \"vakt\", password = { env = \"SERVICENOW_PASSWORD\" }",
                    }),
                );
            }
            if self.kind == ReceiverKind::Jira && self.project.is_none() {
                r.at(
                    at.start,
                    format!("receiver {name:?}: a jira receiver needs project"),
                    hint("e.g. project = \"OPS\""),
                );
            }
            for (field, tpl) in &self.fields {
                let mut env = minijinja::Environment::new();
                if let Err(e) = env.add_template("t", tpl) {
                    r.at(
                        at.start,
                        format!("receiver {name:?}: fields.{field}: {}", e.detail().unwrap_or("syntax error")),
                        hint("see https://docs.rs/minijinja for the syntax"),
                    );
                }
            }
        }
        let desk_only = [
            ("project", self.project.is_some()),
            ("issue_type", self.issue_type.is_some()),
            ("resolve_transition", self.resolve_transition.is_some()),
            ("close_code", self.close_code.is_some()),
            ("fields", !self.fields.is_empty()),
        ];
        for (field, set) in desk_only {
            let applies = match field {
                "close_code" => self.kind == ReceiverKind::ServiceNow,
                "fields" => self.kind.is_service_desk(),
                _ => self.kind == ReceiverKind::Jira,
            };
            if set && !applies {
                r.at(
                    at.start,
                    format!("receiver {name:?}: {field} does not apply to a {} receiver", self.kind.name()),
                    hint("remove it"),
                );
            }
        }
        if self.max_attempts == 0 {
            r.at(at.start, format!("receiver {name:?}: max_attempts must be at least 1"), hint("the default is 10"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::CollectorConfig;
    use std::path::Path;

    fn errors(receiver: &str) -> String {
        let text = format!("[receivers.pager]\n{receiver}");
        match CollectorConfig::parse(&text, Path::new("collector.toml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn pagers_need_their_key_and_only_their_key() {
        assert_eq!(errors("kind = \"pagerduty\"\nrouting_key = { env = \"PD_KEY\" }\n"), "");
        assert_eq!(errors("kind = \"opsgenie\"\napi_key = { file = \"/etc/vakt/og.key\" }\n"), "");
        let missing = errors("kind = \"pagerduty\"\n");
        assert!(missing.contains("receiver \"pager\": needs routing_key"), "{missing}");
        assert!(missing.contains("routing_key = { env = \"ROUTING_KEY\" }"), "the fix is shown: {missing}");
        let wrong = errors("kind = \"opsgenie\"\napi_key = { value = \"k\" }\nrouting_key = { value = \"k\" }\n");
        assert!(wrong.contains("routing_key does not apply"), "{wrong}");
        let webhook = errors("kind = \"webhook\"\n");
        assert!(webhook.contains("needs url"), "a webhook still needs its url: {webhook}");
    }
}
