//! A check: one thing to probe, shared by `collector.toml` and the local checks of `agent.toml`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

use crate::diagnostics::Reporter;
use crate::duration::HumanDuration;
use crate::selector::LabelSelector;
use crate::wire::CheckSpec;

/// What a check probes. Each kind is one probe module in the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// HTTP(S) request; success by status code and body content.
    Http,
    /// TCP connect to `host:port`.
    Tcp,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Tcp => "tcp",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub kind: CheckKind,
    /// URL for `http`, `host:port` for `tcp`.
    pub target: Spanned<String>,
    #[serde(default = "default_interval")]
    pub interval: Spanned<HumanDuration>,
    /// Default: 10s, or the interval when that is shorter.
    #[serde(default)]
    pub timeout: Option<Spanned<HumanDuration>>,
    /// Consecutive failures before the check is down (flap protection).
    #[serde(default = "default_fail_after")]
    pub fail_after: Spanned<u32>,
    /// Consecutive successes before a down check is up again.
    #[serde(default = "default_recover_after")]
    pub recover_after: Spanned<u32>,
    /// Agents that run this check, by name (collector only).
    #[serde(default)]
    pub agents: Vec<Spanned<String>>,
    /// Agents that run this check, by label selector (collector only).
    #[serde(default)]
    pub selector: Option<Spanned<LabelSelector>>,
    #[serde(default, deserialize_with = "deserialize_labels")]
    pub labels: BTreeMap<String, String>,
    /// HTTP method (http only).
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    /// Status codes that count as success (http only; default: any 2xx).
    #[serde(default)]
    pub expect_status: Vec<Spanned<u16>>,
    /// A substring the body must contain (http only).
    #[serde(default)]
    pub body_contains: Option<String>,
}

pub fn default_interval() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration::from_secs(30))
}
pub fn default_fail_after() -> Spanned<u32> {
    Spanned::new(0..0, 3)
}
pub fn default_recover_after() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Check ids appear in metric labels and URLs: keep them plain.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl CheckConfig {
    /// Semantic checks that serde cannot make; every problem goes to `r`.
    pub fn validate(&self, id: &str, r: &mut Reporter<'_>) {
        let target = self.target.get_ref();
        match self.kind {
            CheckKind::Http => {
                let ok = (target.starts_with("http://") || target.starts_with("https://"))
                    && target.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
                if !ok {
                    r.span(
                        self.target.span(),
                        format!("check {id:?}: target {target:?} is not an http(s) URL"),
                        "write it as \"https://host/path\"",
                    );
                }
            }
            CheckKind::Tcp => {
                let ok = target
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
                if !ok {
                    r.span(
                        self.target.span(),
                        format!("check {id:?}: target {target:?} is not host:port"),
                        "write it as \"db.example.com:5432\" or \"[::1]:22\"",
                    );
                }
            }
        }
        if self.kind != CheckKind::Http {
            if let Some(m) = &self.method {
                r.span(m.span(), format!("check {id:?}: `method` applies to http checks only"), "remove it");
            }
            if let Some(s) = self.expect_status.first() {
                r.span(s.span(), format!("check {id:?}: `expect_status` applies to http checks only"), "remove it");
            }
        }
        if let Some(m) = &self.method {
            if !HTTP_METHODS.contains(&m.get_ref().as_str()) {
                r.span(
                    m.span(),
                    format!("check {id:?}: unknown HTTP method {:?}", m.get_ref()),
                    format!("use one of {}", HTTP_METHODS.join(", ")),
                );
            }
        }
        for s in &self.expect_status {
            if !(100..=599).contains(s.get_ref()) {
                r.span(
                    s.span(),
                    format!("check {id:?}: status {} is not an HTTP status code", s.get_ref()),
                    "use 100..=599",
                );
            }
        }
        if self.interval.get_ref().get().is_zero() {
            r.span(self.interval.span(), format!("check {id:?}: interval must be longer than 0"), "e.g. \"30s\"");
        }
        if let Some(timeout) = &self.timeout {
            if timeout.get_ref().get().is_zero() {
                r.span(timeout.span(), format!("check {id:?}: timeout must be longer than 0"), "e.g. \"5s\"");
            } else if timeout.get_ref() > self.interval.get_ref() {
                r.span(
                    timeout.span(),
                    format!(
                        "check {id:?}: timeout {} is longer than the interval {}",
                        timeout.get_ref(),
                        self.interval.get_ref()
                    ),
                    "make the timeout at most the interval",
                );
            }
        }
        for (field, value) in [("fail_after", &self.fail_after), ("recover_after", &self.recover_after)] {
            if *value.get_ref() == 0 {
                r.span(
                    value.span(),
                    format!("check {id:?}: {field} must be at least 1"),
                    "1 reacts to the first result",
                );
            }
        }
    }

    pub fn timeout(&self) -> HumanDuration {
        match &self.timeout {
            Some(t) => *t.get_ref(),
            None => (*self.interval.get_ref()).min(HumanDuration::from_secs(10)),
        }
    }

    /// The form sent to agents.
    pub fn to_spec(&self, id: &str) -> CheckSpec {
        CheckSpec {
            id: id.to_string(),
            kind: self.kind,
            target: self.target.get_ref().clone(),
            interval_ms: duration_ms(self.interval.get_ref()),
            timeout_ms: duration_ms(&self.timeout()),
            labels: self.labels.clone(),
            method: self.method.as_ref().map(|m| m.get_ref().clone()),
            expect_status: self.expect_status.iter().map(|s| *s.get_ref()).collect(),
            body_contains: self.body_contains.clone(),
        }
    }
}

fn duration_ms(d: &HumanDuration) -> u64 {
    u64::try_from(d.get().as_millis()).unwrap_or(u64::MAX)
}

/// A name used as a key: check ids, agent and service names. Validated while parsing so a bad
/// one is reported at its own place in the file.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(String);

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

pub const ID_HINT: &str = "use letters, digits, '-', '_' and '.' (up to 128)";

impl Id {
    pub fn new(s: &str) -> Result<Self, String> {
        if valid_id(s) {
            Ok(Self(s.to_string()))
        } else {
            Err(format!("name {s:?} is not valid"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Id::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Labels: names of letters, digits and '_' (up to 64), values up to 256 bytes.
pub fn deserialize_labels<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let labels = BTreeMap::<String, String>::deserialize(deserializer)?;
    for (k, v) in &labels {
        let ok = !k.is_empty()
            && k.len() <= 64
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && v.len() <= 256;
        if !ok {
            return Err(serde::de::Error::custom(format!("label {k:?}={v:?} is not valid")));
        }
    }
    Ok(labels)
}
