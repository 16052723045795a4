//! A check: one thing to probe, shared by `collector.toml` and the local checks of `agent.toml`.
//!
//! One flat table per check. Options that belong to one kind are refused on the others, so a
//! typo or a copy-paste from another check is caught with its place in the file.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml::Spanned;

use crate::diagnostics::Reporter;
use crate::duration::HumanDuration;
use crate::selector::LabelSelector;
use crate::wire::{CheckOptions, CheckSpec};

/// What a check probes. Each kind is one probe module in the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// HTTP(S) request: status, body, latency, certificate expiry.
    Http,
    /// TCP connect to `host:port`, optionally a banner exchange or a TLS handshake.
    Tcp,
    /// ICMP echo: round-trip times and packet loss.
    Icmp,
    /// A DNS query: rcode, answers, lookup time.
    Dns,
    /// A host metric of the agent's own machine (CPU, memory, disk, load, processes ...).
    Host,
    /// A Nagios / Monitoring Plugins compatible command.
    Exec,
    /// A job that reports itself to the collector's ping URL (collector only: no agent).
    Heartbeat,
    /// A domain's registration expiry, read through RDAP.
    Domain,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Tcp => "tcp",
            CheckKind::Icmp => "icmp",
            CheckKind::Dns => "dns",
            CheckKind::Host => "host",
            CheckKind::Exec => "exec",
            CheckKind::Heartbeat => "heartbeat",
            CheckKind::Domain => "domain",
        }
    }
}

/// DNS record types a `dns` check can ask for.
pub const DNS_RECORD_TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "NS"];
/// DNS response codes a `dns` check can expect.
pub const DNS_RCODES: &[&str] = &["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
/// What a `host` check can measure; `disk:` and `process:` take a mount point or process name.
pub const HOST_TARGETS: &[&str] =
    &["cpu", "memory", "swap", "load1", "load5", "load15", "uptime", "network", "disk:<mount>", "process:<name>"];

/// What a plugin's UNKNOWN counts as (see `CheckConfig::unknown_counts_as`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownCountsAs {
    #[default]
    Down,
    Unknown,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub kind: CheckKind,
    /// http: URL; tcp: host:port; icmp: host; dns: the name to look up; host: what to measure
    /// (see [`HOST_TARGETS`]); exec: the plugin's path; heartbeat: none.
    #[serde(default = "no_target")]
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
    /// Probed by several agents: it is down only when this many of them see it down (collector
    /// only). Agents that have gone quiet do not vote.
    #[serde(default)]
    pub quorum: Option<Spanned<u32>>,
    /// This many state changes within `flap_window` make the check flapping (collector only;
    /// default the collector's `flap_threshold`, 0 turns it off for this check).
    #[serde(default)]
    pub flap_threshold: Option<u32>,
    /// The window `flap_threshold` counts in (default the collector's `flap_window`).
    #[serde(default)]
    pub flap_window: Option<HumanDuration>,
    /// Slower than this, the check still succeeds but is degraded (any kind).
    #[serde(default)]
    pub degraded_latency: Option<Spanned<HumanDuration>>,
    /// Open an incident of severity "warning" (kind `check_warning`) while the check is up but
    /// degraded — a plugin's WARNING, slower than `degraded_latency`, a host value above
    /// `warn_value` — after `fail_after` degraded results in a row; it resolves when a result is
    /// no longer degraded. Routes take these only when they name the kind or the severity.
    #[serde(default)]
    pub warning_incidents: bool,
    /// exec: what a plugin's UNKNOWN (exit 3 or above, a timeout) counts as: `"down"` (the
    /// default: a failure like CRITICAL, its reason starting "UNKNOWN") or `"unknown"` (no
    /// data: the check is unknown from there, which the SLA leaves out like a silence, and an
    /// open incident stays open until a real result comes).
    #[serde(default)]
    pub unknown_counts_as: UnknownCountsAs,

    // --- http ---
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    #[serde(default)]
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
    /// Request body.
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    /// Status codes that count as success (default: any 2xx).
    #[serde(default)]
    pub expect_status: Option<Spanned<Vec<u16>>>,
    #[serde(default)]
    pub body_contains: Option<Spanned<String>>,
    /// A regular expression the body must match.
    #[serde(default)]
    pub body_regex: Option<Spanned<String>>,
    /// A path into a JSON body that must exist ("$.status", "$.checks[0].ok"); see
    /// [`crate::json_assert`].
    #[serde(default)]
    pub json_path: Option<Spanned<String>>,
    /// What the value at `json_path` must be: "ok", "!= down", "< 1000", "true".
    #[serde(default)]
    pub json_expect: Option<Spanned<String>>,
    /// Response headers that must be present, each containing the given text
    /// (`{ "content-type" = "application/json" }`; names are case-insensitive).
    #[serde(default)]
    pub expect_headers: Option<Spanned<BTreeMap<String, String>>>,
    /// Default true.
    #[serde(default)]
    pub follow_redirects: Option<Spanned<bool>>,

    // --- http and tcp (with tls) ---
    /// Verify the server certificate (default true).
    #[serde(default)]
    pub tls_verify: Option<Spanned<bool>>,
    /// PEM file with extra CA certificates to trust.
    #[serde(default)]
    pub ca_file: Option<Spanned<PathBuf>>,
    /// Fail when the server certificate expires within this many days.
    #[serde(default)]
    pub cert_min_days: Option<Spanned<u32>>,

    // --- tcp ---
    /// Do a TLS handshake after connecting (reads the certificate expiry of any TLS port).
    #[serde(default)]
    pub tls: Option<Spanned<bool>>,
    /// Bytes to send after connecting (escapes \r \n allowed).
    #[serde(default)]
    pub send: Option<Spanned<String>>,
    /// A substring the answer must contain.
    #[serde(default)]
    pub expect: Option<Spanned<String>>,

    // --- icmp ---
    /// Echo requests per run (default 3).
    #[serde(default)]
    pub packets: Option<Spanned<u32>>,
    /// Fail when more than this share of packets is lost, in percent (default: fail only at 100).
    #[serde(default)]
    pub max_loss_percent: Option<Spanned<f64>>,

    // --- dns ---
    #[serde(default)]
    pub record_type: Option<Spanned<String>>,
    /// Server as ip or ip:port (default: the first nameserver of /etc/resolv.conf).
    #[serde(default)]
    pub server: Option<Spanned<String>>,
    /// Default NOERROR.
    #[serde(default)]
    pub expect_rcode: Option<Spanned<String>>,
    /// A substring one of the answers must contain.
    #[serde(default)]
    pub expect_answer: Option<Spanned<String>>,

    // --- host ---
    /// Fail above this value (percent for cpu, memory, swap and disk).
    #[serde(default)]
    pub max_value: Option<Spanned<f64>>,
    /// Degraded above this value.
    #[serde(default)]
    pub warn_value: Option<Spanned<f64>>,
    /// Fail below this value (e.g. processes running).
    #[serde(default)]
    pub min_value: Option<Spanned<f64>>,

    // --- exec ---
    #[serde(default)]
    pub args: Option<Spanned<Vec<String>>>,

    // --- domain ---
    /// Fail when the registration expires within this many days (default 30).
    #[serde(default)]
    pub domain_min_days: Option<Spanned<u32>>,
    /// The RDAP server to ask (default "https://rdap.org", which sends each query on to the
    /// registry that holds the domain).
    #[serde(default)]
    pub rdap_server: Option<Spanned<String>>,

    // --- heartbeat ---
    /// The secret part of the check's ping URL, `/ping/{ping_key}` (at least 16 characters;
    /// e.g. the output of `uuidgen`).
    #[serde(default)]
    pub ping_key: Option<Spanned<crate::notify::Secret>>,
    /// How late a ping may come after its run was due (default 5m).
    #[serde(default)]
    pub grace: Option<Spanned<HumanDuration>>,
    /// When runs are due, as a cron schedule ("0 2 * * *"); without it, `interval` after the
    /// last ping.
    #[serde(default)]
    pub schedule: Option<Spanned<String>>,
    /// The time zone of `schedule` (default UTC), e.g. "Europe/Oslo".
    #[serde(default)]
    pub tz: Option<Spanned<String>>,
}

fn no_target() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

/// A heartbeat's default grace.
pub const DEFAULT_GRACE: HumanDuration = HumanDuration::from_secs(300);

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

/// `host:port` with a non-empty host and a port above 0 (`[::1]:22` too).
pub fn valid_host_port(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// A valid `host` check target.
pub fn valid_host_target(s: &str) -> bool {
    matches!(s, "cpu" | "memory" | "swap" | "load1" | "load5" | "load15" | "uptime" | "network")
        || s.strip_prefix("disk:").is_some_and(|m| m.starts_with('/'))
        || s.strip_prefix("process:").is_some_and(|p| !p.is_empty())
}

/// A kind-specific option: its name, its span when set, the kinds it applies to.
type KindOption = (&'static str, Option<std::ops::Range<usize>>, &'static [CheckKind]);

fn span_of<T>(v: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
    v.as_ref().map(Spanned::span)
}

impl CheckConfig {
    /// Each kind-specific option that is set, with its span and the kinds it applies to.
    fn kind_options(&self) -> Vec<KindOption> {
        use CheckKind::*;
        vec![
            ("method", span_of(&self.method), &[Http]),
            ("headers", span_of(&self.headers), &[Http]),
            ("body", span_of(&self.body), &[Http]),
            ("expect_status", span_of(&self.expect_status), &[Http]),
            ("body_contains", span_of(&self.body_contains), &[Http]),
            ("body_regex", span_of(&self.body_regex), &[Http]),
            ("json_path", span_of(&self.json_path), &[Http]),
            ("json_expect", span_of(&self.json_expect), &[Http]),
            ("expect_headers", span_of(&self.expect_headers), &[Http]),
            ("follow_redirects", span_of(&self.follow_redirects), &[Http]),
            ("tls_verify", span_of(&self.tls_verify), &[Http, Tcp, Domain]),
            ("ca_file", span_of(&self.ca_file), &[Http, Tcp, Domain]),
            ("cert_min_days", span_of(&self.cert_min_days), &[Http, Tcp]),
            ("tls", span_of(&self.tls), &[Tcp]),
            ("send", span_of(&self.send), &[Tcp]),
            ("expect", span_of(&self.expect), &[Tcp]),
            ("packets", span_of(&self.packets), &[Icmp]),
            ("max_loss_percent", span_of(&self.max_loss_percent), &[Icmp]),
            ("record_type", span_of(&self.record_type), &[Dns]),
            ("server", span_of(&self.server), &[Dns]),
            ("expect_rcode", span_of(&self.expect_rcode), &[Dns]),
            ("expect_answer", span_of(&self.expect_answer), &[Dns]),
            ("max_value", span_of(&self.max_value), &[Host]),
            ("warn_value", span_of(&self.warn_value), &[Host]),
            ("min_value", span_of(&self.min_value), &[Host]),
            ("args", span_of(&self.args), &[Exec]),
            ("ping_key", span_of(&self.ping_key), &[Heartbeat]),
            ("domain_min_days", span_of(&self.domain_min_days), &[Domain]),
            ("rdap_server", span_of(&self.rdap_server), &[Domain]),
            ("grace", span_of(&self.grace), &[Heartbeat]),
            ("schedule", span_of(&self.schedule), &[Heartbeat]),
            ("tz", span_of(&self.tz), &[Heartbeat]),
        ]
    }

    /// Semantic checks that serde cannot make; every problem goes to `r`.
    pub fn validate(&self, id: &str, r: &mut Reporter<'_>) {
        let kind = self.kind;
        for (field, span, kinds) in self.kind_options() {
            if let Some(span) = span {
                if !kinds.contains(&kind) {
                    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                    r.span(
                        span,
                        format!("check {id:?}: `{field}` does not apply to {} checks", kind.as_str()),
                        format!("it applies to {} checks; remove it here", names.join(" and ")),
                    );
                }
            }
        }
        // TLS options where no TLS is spoken do nothing: a plain http:// URL, or a TCP check
        // without `tls = true`.
        let plain = match kind {
            CheckKind::Http => self
                .target
                .get_ref()
                .starts_with("http://")
                .then_some("the target is plain http://; use an https:// URL, or remove it"),
            CheckKind::Tcp if !self.tls.as_ref().is_some_and(|t| *t.get_ref()) => {
                Some("this TCP check does no TLS handshake; add `tls = true`, or remove it")
            }
            _ => None,
        };
        if let Some(hint) = plain {
            for (field, span) in [
                ("tls_verify", span_of(&self.tls_verify)),
                ("ca_file", span_of(&self.ca_file)),
                ("cert_min_days", span_of(&self.cert_min_days)),
            ] {
                if let Some(span) = span {
                    r.span(span, format!("check {id:?}: `{field}` does nothing without TLS"), hint);
                }
            }
        }
        let target = self.target.get_ref();
        let bad_target = |r: &mut Reporter<'_>, what: &str, hint: &str| {
            r.span(self.target.span(), format!("check {id:?}: target {target:?} is not {what}"), hint);
        };
        match kind {
            CheckKind::Http => {
                let ok = (target.starts_with("http://") || target.starts_with("https://"))
                    && target.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
                if !ok {
                    bad_target(r, "an http(s) URL", "write it as \"https://host/path\"");
                }
            }
            CheckKind::Tcp => {
                if !valid_host_port(target) {
                    bad_target(r, "host:port", "write it as \"db.example.com:5432\" or \"[::1]:22\"");
                }
            }
            CheckKind::Icmp => {
                if target.is_empty() || target.contains(['/', ' ']) {
                    bad_target(r, "a host name or IP address", "e.g. \"192.0.2.10\" or \"gw.example.com\"");
                }
            }
            CheckKind::Dns => {
                if target.is_empty() || target.contains([' ', '/']) {
                    bad_target(r, "a DNS name", "the name to look up, e.g. \"example.com\"");
                }
            }
            CheckKind::Host => {
                if !valid_host_target(target) {
                    bad_target(r, "a host metric", &format!("use one of {}", HOST_TARGETS.join(", ")));
                }
            }
            CheckKind::Exec => {
                if !target.starts_with('/') {
                    bad_target(r, "an absolute path", "e.g. \"/usr/lib/nagios/plugins/check_disk\"");
                }
            }
            CheckKind::Heartbeat => self.validate_heartbeat(id, r),
            CheckKind::Domain => {
                let labels: Vec<&str> = target.split('.').collect();
                if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.contains([' ', '/', ':'])) {
                    bad_target(r, "a domain name", "the registered domain, e.g. \"example.com\"");
                }
                if self.interval.get_ref().get() < std::time::Duration::from_secs(3600) {
                    r.span(
                        self.interval.span().start..self.interval.span().end.max(self.target.span().end),
                        format!("check {id:?}: a domain check runs at least an hour apart"),
                        "RDAP servers rate-limit and registrations change slowly: e.g. interval = \"12h\"",
                    );
                }
                if let Some(s) = &self.rdap_server {
                    if !(s.get_ref().starts_with("https://") || s.get_ref().starts_with("http://")) {
                        r.span(
                            s.span(),
                            format!("check {id:?}: rdap_server is not an http(s) URL"),
                            "e.g. \"https://rdap.verisign.com/com/v1\"",
                        );
                    }
                }
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
        if let Some(codes) = &self.expect_status {
            if codes.get_ref().iter().any(|c| !(100..=599).contains(c)) || codes.get_ref().is_empty() {
                r.span(codes.span(), format!("check {id:?}: expect_status needs HTTP status codes"), "use 100..=599");
            }
        }
        if let Some(p) = &self.json_path {
            if let Err(e) = crate::json_assert::JsonPath::parse(p.get_ref()) {
                r.span(
                    p.span(),
                    format!("check {id:?}: json_path {e}"),
                    "e.g. \"$.status\" or \"$.checks[0].healthy\"",
                );
            }
        }
        if let Some(x) = &self.json_expect {
            if self.json_path.is_none() {
                r.span(
                    x.span(),
                    format!("check {id:?}: json_expect without json_path"),
                    "add json_path = \"$.status\"",
                );
            }
            if let Err(e) = crate::json_assert::Expect::parse(x.get_ref()) {
                r.span(x.span(), format!("check {id:?}: json_expect {e}"), "e.g. \"ok\", \"!= down\" or \"< 1000\"");
            }
        }
        if let Some(h) = &self.expect_headers {
            for name in h.get_ref().keys() {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                    r.span(
                        h.span(),
                        format!("check {id:?}: expect_headers: {name:?} is not a header name"),
                        "e.g. \"content-type\"",
                    );
                }
            }
        }
        if let Some(re) = &self.body_regex {
            if let Err(e) = regex_lite::Regex::new(re.get_ref()) {
                let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
                r.span(
                    re.span(),
                    format!("check {id:?}: body_regex is not a valid regular expression: {first}"),
                    "see https://docs.rs/regex-lite for the syntax (Perl-like, ASCII classes)",
                );
            }
        }
        if let Some(t) = &self.record_type {
            if !DNS_RECORD_TYPES.contains(&t.get_ref().as_str()) {
                r.span(
                    t.span(),
                    format!("check {id:?}: record_type {:?} is not supported", t.get_ref()),
                    format!("use one of {}", DNS_RECORD_TYPES.join(", ")),
                );
            }
        }
        if let Some(c) = &self.expect_rcode {
            if !DNS_RCODES.contains(&c.get_ref().as_str()) {
                r.span(
                    c.span(),
                    format!("check {id:?}: expect_rcode {:?} is not known", c.get_ref()),
                    format!("use one of {}", DNS_RCODES.join(", ")),
                );
            }
        }
        if let Some(s) = &self.server {
            let v = s.get_ref();
            if v.parse::<std::net::IpAddr>().is_err() && v.parse::<std::net::SocketAddr>().is_err() {
                r.span(
                    s.span(),
                    format!("check {id:?}: server {v:?} is not an IP address or ip:port"),
                    "e.g. \"192.0.2.53\" or \"[2001:db8::53]:53\"",
                );
            }
        }
        if let Some(p) = &self.packets {
            if !(1..=100).contains(p.get_ref()) {
                r.span(p.span(), format!("check {id:?}: packets must be 1..=100"), "the default is 3");
            }
        }
        if let Some(l) = &self.max_loss_percent {
            if !(0.0..=100.0).contains(l.get_ref()) {
                r.span(l.span(), format!("check {id:?}: max_loss_percent must be 0..=100"), "e.g. 20");
            }
        }
        if let (Some(w), Some(m)) = (&self.warn_value, &self.max_value) {
            if w.get_ref() > m.get_ref() {
                r.span(
                    w.span(),
                    format!("check {id:?}: warn_value is above max_value"),
                    "warn before failing: warn_value <= max_value",
                );
            }
        }
        if let Some(ca) = &self.ca_file {
            if !ca.get_ref().is_file() {
                r.span(
                    ca.span(),
                    format!("check {id:?}: ca_file {} does not exist", ca.get_ref().display()),
                    "give the path of a PEM file",
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

    fn validate_heartbeat(&self, id: &str, r: &mut Reporter<'_>) {
        let key_hint = "e.g. ping_key = { env = \"BACKUP_PING_KEY\" } holding the output of `uuidgen`";
        match &self.ping_key {
            None => r.at(
                self.interval.span().start,
                format!("check {id:?}: a heartbeat check needs ping_key"),
                Some(key_hint.into()),
            ),
            Some(k) if !k.get_ref().is_set() => {
                r.span(k.span(), format!("check {id:?}: ping_key has no value, env or file"), key_hint)
            }
            Some(k) => {
                if let Some(v) = &k.get_ref().value {
                    if v.len() < 16 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                        r.span(
                            k.span(),
                            format!("check {id:?}: ping_key must be at least 16 letters, digits, '-' or '_'"),
                            "it is the secret of the ping URL; use the output of `uuidgen`",
                        );
                    }
                }
            }
        }
        if !self.target.get_ref().is_empty() {
            r.span(
                self.target.span(),
                format!("check {id:?}: a heartbeat check has no target"),
                "the job pings the collector; remove it",
            );
        }
        for (field, set) in [
            ("agents", !self.agents.is_empty()),
            ("selector", self.selector.is_some()),
            ("quorum", self.quorum.is_some()),
        ] {
            if set {
                r.span(
                    self.target.span().start..self.target.span().start,
                    format!("check {id:?}: `{field}` does not apply to a heartbeat check"),
                    "the collector watches it itself; remove it",
                );
            }
        }
        match &self.schedule {
            Some(s) => {
                if let Err(e) = crate::cron::Schedule::parse(s.get_ref()) {
                    r.span(s.span(), format!("check {id:?}: schedule: {e}"), "e.g. \"0 2 * * *\" for 02:00 every day");
                }
                if self.interval.span() != (0..0) {
                    r.span(
                        self.interval.span(),
                        format!("check {id:?}: interval and schedule both given"),
                        "keep one: a schedule says when runs are due",
                    );
                }
            }
            None if self.interval.span() == (0..0) => r.at(
                0,
                format!("check {id:?}: a heartbeat check needs interval or schedule"),
                Some("e.g. interval = \"1d\", or schedule = \"0 2 * * *\" with tz = \"Europe/Oslo\"".into()),
            ),
            None => {}
        }
        if let Some(tz) = &self.tz {
            if self.schedule.is_none() {
                r.span(tz.span(), format!("check {id:?}: tz applies to a schedule"), "add schedule, or remove tz");
            } else if jiff::tz::TimeZone::get(tz.get_ref()).is_err() {
                r.span(
                    tz.span(),
                    format!("check {id:?}: unknown time zone {:?}", tz.get_ref()),
                    "an IANA name, e.g. \"Europe/Oslo\"",
                );
            }
        }
    }

    /// The grace of a heartbeat check.
    pub fn grace(&self) -> HumanDuration {
        self.grace.as_ref().map_or(DEFAULT_GRACE, |g| *g.get_ref())
    }

    pub fn timeout(&self) -> HumanDuration {
        match &self.timeout {
            Some(t) => *t.get_ref(),
            None => (*self.interval.get_ref()).min(HumanDuration::from_secs(10)),
        }
    }

    /// True when the collector assigns this check to `agent` (with its `labels`), by name or
    /// by selector.
    pub fn runs_on(&self, agent: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.agents.iter().any(|a| a.get_ref() == agent)
            || match (&self.selector, labels) {
                (Some(sel), Some(labels)) => sel.get_ref().matches(labels),
                _ => false,
            }
    }

    /// The form sent to agents.
    pub fn to_spec(&self, id: &str) -> CheckSpec {
        fn v<T: Clone>(o: &Option<Spanned<T>>) -> Option<T> {
            o.as_ref().map(|s| s.get_ref().clone())
        }
        CheckSpec {
            id: id.to_string(),
            kind: self.kind,
            target: self.target.get_ref().clone(),
            interval_ms: duration_ms(self.interval.get_ref()),
            timeout_ms: duration_ms(&self.timeout()),
            labels: self.labels.clone(),
            options: CheckOptions {
                degraded_latency_ms: self.degraded_latency.as_ref().map(|d| duration_ms(d.get_ref())),
                method: v(&self.method),
                headers: v(&self.headers).unwrap_or_default(),
                body: v(&self.body),
                expect_status: v(&self.expect_status).unwrap_or_default(),
                body_contains: v(&self.body_contains),
                body_regex: v(&self.body_regex),
                json_path: v(&self.json_path),
                json_expect: v(&self.json_expect),
                expect_headers: v(&self.expect_headers).unwrap_or_default(),
                follow_redirects: v(&self.follow_redirects),
                tls_verify: v(&self.tls_verify),
                ca_file: v(&self.ca_file),
                cert_min_days: v(&self.cert_min_days),
                domain_min_days: v(&self.domain_min_days),
                rdap_server: v(&self.rdap_server),
                tls: v(&self.tls),
                send: v(&self.send),
                expect: v(&self.expect),
                packets: v(&self.packets),
                max_loss_percent: v(&self.max_loss_percent),
                record_type: v(&self.record_type),
                server: v(&self.server),
                expect_rcode: v(&self.expect_rcode),
                expect_answer: v(&self.expect_answer),
                max_value: v(&self.max_value),
                warn_value: v(&self.warn_value),
                min_value: v(&self.min_value),
                args: v(&self.args).unwrap_or_default(),
            },
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

/// Parses one check table on its own, e.g. the check `vakt-agent probe` builds from its
/// arguments; problems are reported like those of a file.
pub fn parse_check(source: &str, path: &std::path::Path, id: &str) -> Result<CheckConfig, crate::ConfigErrors> {
    let mut r = Reporter::new(path, source);
    let Some(check) = crate::diagnostics::parse_all::<CheckConfig>(&mut r) else {
        return Err(r.into_errors());
    };
    check.validate(id, &mut r);
    r.finish(check)
}

#[cfg(test)]
mod tests {
    use crate::CollectorConfig;
    use std::path::Path;

    fn errors(check: &str) -> String {
        let text = format!("[agents.a]\ntoken_hash = \"sha256:{}\"\n[checks.c]\n{check}", "0".repeat(64));
        match CollectorConfig::parse(&text, Path::new("collector.toml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn heartbeat_checks_need_a_key_and_a_due_time_and_no_agent() {
        let key = "ping_key = { value = \"0f6e3c2a-9d1b-4c53-8a77-5b2f1e9d4c10\" }\n";
        assert_eq!(errors(&format!("kind = \"heartbeat\"\n{key}interval = \"1d\"\n")), "");
        assert_eq!(errors(&format!("kind = \"heartbeat\"\n{key}schedule = \"0 2 * * *\"\ntz = \"Europe/Oslo\"\n")), "");
        let no_key = errors("kind = \"heartbeat\"\ninterval = \"1d\"\n");
        assert!(no_key.contains("a heartbeat check needs ping_key"), "{no_key}");
        let no_due = errors(&format!("kind = \"heartbeat\"\n{key}"));
        assert!(no_due.contains("needs interval or schedule"), "{no_due}");
        let short = errors("kind = \"heartbeat\"\nping_key = { value = \"short\" }\ninterval = \"1h\"\n");
        assert!(short.contains("at least 16"), "{short}");
        let cron = errors(&format!("kind = \"heartbeat\"\n{key}schedule = \"0 25 * * *\"\n"));
        assert!(cron.contains("schedule: hour: \"25\" is outside 0-23"), "{cron}");
        let zone = errors(&format!("kind = \"heartbeat\"\n{key}schedule = \"0 2 * * *\"\ntz = \"Europe/Oslow\"\n"));
        assert!(zone.contains("unknown time zone \"Europe/Oslow\""), "{zone}");
        let agents = errors(&format!("kind = \"heartbeat\"\n{key}interval = \"1h\"\nagents = [\"a\"]\n"));
        assert!(agents.contains("`agents` does not apply to a heartbeat check"), "{agents}");
        let elsewhere = errors("kind = \"http\"\ntarget = \"https://x/\"\nagents = [\"a\"]\ngrace = \"5m\"\n");
        assert!(elsewhere.contains("`grace` does not apply to http checks"), "{elsewhere}");
    }

    #[test]
    fn domain_checks_name_a_domain_and_run_hours_apart() {
        let ok = "kind = \"domain\"\ntarget = \"example.com\"\ninterval = \"12h\"\nagents = [\"a\"]\n";
        assert_eq!(errors(ok), "");
        let fast = errors("kind = \"domain\"\ntarget = \"example.com\"\nagents = [\"a\"]\n");
        assert!(fast.contains("a domain check runs at least an hour apart"), "{fast}");
        assert!(fast.contains("interval = \"12h\""), "the fix is shown: {fast}");
        let url = errors("kind = \"domain\"\ntarget = \"https://example.com/\"\ninterval = \"1d\"\nagents = [\"a\"]\n");
        assert!(url.contains("is not a domain name"), "{url}");
        assert_eq!(
            errors(&format!("{ok}domain_min_days = 14\nrdap_server = \"https://rdap.verisign.com/com/v1\"\n")),
            ""
        );
    }

    #[test]
    fn json_assertions_are_checked_where_they_are_written() {
        let http = "kind = \"http\"\ntarget = \"https://api.example.com/health\"\nagents = [\"a\"]\n";
        assert_eq!(errors(&format!("{http}json_path = \"$.status\"\njson_expect = \"ok\"\n")), "");
        let path = errors(&format!("{http}json_path = \"status\"\n"));
        assert!(path.contains("json_path \"status\" does not start with $"), "{path}");
        let alone = errors(&format!("{http}json_expect = \"ok\"\n"));
        assert!(alone.contains("json_expect without json_path"), "{alone}");
        let order = errors(&format!("{http}json_path = \"$.n\"\njson_expect = \"< lots\"\n"));
        assert!(order.contains("compares numbers"), "{order}");
        let header = errors(&format!("{http}expect_headers = {{ \"content type\" = \"json\" }}\n"));
        assert!(header.contains("is not a header name"), "{header}");
    }
}
