//! `agent.toml`: who the agent is, where its collector is, and its optional local checks.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

use crate::check::{deserialize_labels, CheckConfig, Id};
use crate::diagnostics::{parse_all, ConfigErrors, Reporter};
use crate::duration::HumanDuration;
use crate::{resolve_path, LoadError};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This agent's name; the collector knows it by this name and its token.
    pub name: Spanned<Id>,
    /// Base URL of the collector, e.g. "https://vakt.example.com:8427" (one node, or a load
    /// balancer in front of several). Give this or `collectors`.
    #[serde(default)]
    pub collector: Option<Spanned<String>>,
    /// Base URLs of several collectors sharing one database: the agent uses the first that
    /// answers and moves to the next at once when one fails.
    #[serde(default)]
    pub collectors: Vec<Spanned<String>>,
    /// A PEM file of CA certificates to trust for an https collector (a private CA), besides
    /// the usual public roots.
    #[serde(default)]
    pub collector_ca_file: Option<Spanned<PathBuf>>,
    /// The agent's client certificate (PEM) for a collector that requires mutual TLS.
    #[serde(default)]
    pub client_cert_file: Option<Spanned<PathBuf>>,
    /// The private key (PEM) of `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<Spanned<PathBuf>>,
    /// The bearer token, inline. Prefer `token_file`.
    #[serde(default)]
    pub token: Option<Spanned<String>>,
    /// A file holding the bearer token (surrounding whitespace is ignored).
    #[serde(default)]
    pub token_file: Option<Spanned<PathBuf>>,
    /// Where the agent keeps its state: cached assignments, sequence numbers, the spool.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Upper bound of the on-disk spool of unacknowledged batches. When it is full the oldest
    /// batches are dropped, counted and logged.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: Spanned<u64>,
    /// Where the agent serves its own Prometheus metrics, e.g. "127.0.0.1:9427". Off when unset.
    #[serde(default)]
    pub metrics_listen: Option<Spanned<String>>,
    /// How often collected samples are pushed.
    #[serde(default = "default_push_interval")]
    pub push_interval: Spanned<HumanDuration>,
    /// A push never carries more samples than this.
    #[serde(default = "default_max_batch_samples")]
    pub max_batch_samples: Spanned<usize>,
    /// With nothing else to send for this long, the agent sends an empty batch so the collector
    /// knows it is alive.
    #[serde(default = "default_heartbeat_interval")]
    pub heartbeat_interval: HumanDuration,
    /// How often the agent asks the collector for its assigned checks.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: HumanDuration,
    /// Labels the collector matches check selectors against (informational here; the
    /// collector's `[agents.NAME]` labels are authoritative).
    #[serde(default, deserialize_with = "deserialize_labels")]
    pub labels: BTreeMap<String, String>,
    /// Programs exec checks may run, as path patterns (`*` within one path segment), e.g.
    /// `["/usr/lib/nagios/plugins/*"]`. Empty by default: exec checks the collector assigns are
    /// refused (reported as failing with the reason) until the server's owner allows them here.
    /// The exec checks of this file run without being listed.
    #[serde(default)]
    pub exec_allow: Vec<Spanned<String>>,
    /// Allow an `http://` collector URL to a host other than loopback: the token, the results
    /// and the assignments then cross the network readable and alterable by anyone on the path.
    #[serde(default)]
    pub insecure_plaintext: bool,
    /// Checks this agent runs on its own, besides those the collector assigns.
    #[serde(default)]
    pub checks: BTreeMap<Id, CheckConfig>,
}

/// The host of what follows a URL's scheme: "host:port/path" → "host", "[::1]:80/" → "::1".
fn url_host(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

/// Loopback: `localhost`, 127.0.0.0/8, ::1. Plain http there never leaves the machine.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn default_spool_dir() -> PathBuf {
    PathBuf::from("vakt-agent-data")
}
fn default_spool_max_bytes() -> Spanned<u64> {
    Spanned::new(0..0, 256 * 1024 * 1024)
}
fn default_push_interval() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration::from_secs(1))
}
fn default_max_batch_samples() -> Spanned<usize> {
    Spanned::new(0..0, 5_000)
}
fn default_heartbeat_interval() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_refresh_interval() -> HumanDuration {
    HumanDuration::from_secs(60)
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let source = crate::read_source(path)?;
        Ok(Self::parse(&source, path)?)
    }

    /// Parses and validates `source`; `path` names the file in diagnostics and anchors
    /// relative paths.
    pub fn parse(source: &str, path: &Path) -> Result<Self, ConfigErrors> {
        let mut r = Reporter::new(path, source);
        let Some(mut cfg) = parse_all::<AgentConfig>(&mut r) else {
            return Err(r.into_errors());
        };
        for f in [&mut cfg.collector_ca_file, &mut cfg.client_cert_file, &mut cfg.client_key_file].into_iter().flatten()
        {
            *f = Spanned::new(f.span(), resolve_path(path, f.get_ref()));
        }
        cfg.validate(&mut r);
        cfg.spool_dir = resolve_path(path, &cfg.spool_dir);
        if let Some(tf) = &mut cfg.token_file {
            let resolved = resolve_path(path, tf.get_ref());
            *tf = Spanned::new(tf.span(), resolved);
        }
        r.finish(cfg)
    }

    /// The collectors' base URLs, in the order they are tried (`collector` or `collectors`).
    pub fn collector_urls(&self) -> Vec<String> {
        self.collector.iter().chain(&self.collectors).map(|u| u.get_ref().trim_end_matches('/').to_string()).collect()
    }

    fn validate(&self, r: &mut Reporter<'_>) {
        // After a syntax error the key at fault was set aside: what seems missing may be it.
        let clean = r.diagnostics.is_empty();
        match (&self.collector, self.collectors.is_empty()) {
            (Some(c), false) => r.span(
                c.span(),
                "both `collector` and `collectors` are set",
                "keep one: `collectors = [...]` lists every node, `collector` names one (or a load balancer)",
            ),
            (None, true) if clean => r.span(
                self.name.span(),
                "neither `collector` nor `collectors` is set",
                "add collector = \"https://vakt.example.com:8427\"",
            ),
            _ => {}
        }
        for u in self.collector.iter().chain(&self.collectors) {
            let url = u.get_ref();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                r.span(
                    u.span(),
                    format!("collector {url:?} is not an http(s) URL"),
                    "e.g. \"https://vakt.example.com:8427\"",
                );
            }
            if let Some(host) = url.strip_prefix("http://").map(url_host) {
                if !self.insecure_plaintext && !is_loopback_host(host) {
                    r.span(
                        u.span(),
                        format!("collector {url:?} is plain http to {host:?}: the token, the results and the checks this agent is told to run would cross the network unencrypted"),
                        "use https:// (the collector's [tls]), or set insecure_plaintext = true on a network you trust",
                    );
                }
            }
        }
        for p in &self.exec_allow {
            let pattern = p.get_ref();
            if !pattern.starts_with('/') || pattern.split('/').any(|seg| seg == ".." || seg == ".") {
                r.span(
                    p.span(),
                    format!("exec_allow pattern {pattern:?} is not an absolute path"),
                    "e.g. \"/usr/lib/nagios/plugins/*\" (`*` stays within one directory)",
                );
            }
        }
        match (&self.token, &self.token_file) {
            (Some(t), Some(_)) => r.span(
                t.span(),
                "both `token` and `token_file` are set",
                "keep one; `token_file` keeps the secret out of the config",
            ),
            (None, None) if clean => r.span(
                self.name.span(),
                "neither `token` nor `token_file` is set",
                "add token_file = \"/etc/vakt/agent.token\"",
            ),
            (Some(t), None) if t.get_ref().trim().is_empty() => {
                r.span(t.span(), "`token` is empty", "paste the token `vakt-collector hash-token` was given")
            }
            _ => {}
        }
        for (what, f) in [
            ("collector_ca_file", &self.collector_ca_file),
            ("client_cert_file", &self.client_cert_file),
            ("client_key_file", &self.client_key_file),
        ] {
            if let Some(f) = f {
                if !f.get_ref().is_file() {
                    r.span(
                        f.span(),
                        format!("{what} {} does not exist", f.get_ref().display()),
                        "give the path of a PEM file (relative paths are relative to this file)",
                    );
                }
            }
        }
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(c), None) => {
                r.span(c.span(), "`client_cert_file` without `client_key_file`", "give both, or neither")
            }
            (None, Some(k)) => {
                r.span(k.span(), "`client_key_file` without `client_cert_file`", "give both, or neither")
            }
            _ => {}
        }
        if self.push_interval.get_ref().get().is_zero() {
            r.span(self.push_interval.span(), "`push_interval` must be longer than 0", "e.g. \"1s\"");
        }
        if *self.max_batch_samples.get_ref() == 0 {
            r.span(self.max_batch_samples.span(), "`max_batch_samples` must be at least 1", "e.g. 5000");
        }
        if *self.spool_max_bytes.get_ref() < 64 * 1024 {
            r.span(
                self.spool_max_bytes.span(),
                "`spool_max_bytes` is below 64 KiB",
                "the default is 268435456 (256 MiB)",
            );
        }
        if let Some(addr) = &self.metrics_listen {
            if addr.get_ref().parse::<std::net::SocketAddr>().is_err() {
                r.span(
                    addr.span(),
                    format!("metrics_listen {:?} is not ip:port", addr.get_ref()),
                    "e.g. \"127.0.0.1:9427\"",
                );
            }
        }
        for (id, check) in &self.checks {
            check.validate(id.as_str(), r);
            if let Some(a) = check.agents.first() {
                r.span(
                    a.span(),
                    format!("check {id:?}: `agents` has no meaning in agent.toml"),
                    "a local check runs on this agent only; remove it",
                );
            }
            if let Some(s) = &check.selector {
                r.span(
                    s.span(),
                    format!("check {id:?}: `selector` has no meaning in agent.toml"),
                    "a local check runs on this agent only; remove it",
                );
            }
        }
    }

    /// Reads the bearer token from `token` or `token_file`.
    pub fn read_token(&self) -> Result<String, LoadError> {
        if let Some(t) = &self.token {
            return Ok(t.get_ref().trim().to_string());
        }
        let Some(file) = &self.token_file else {
            return Err(LoadError::Token("neither `token` nor `token_file` is set".into()));
        };
        let text = std::fs::read_to_string(file.get_ref())
            .map_err(|e| LoadError::Token(format!("cannot read token_file {}: {e}", file.get_ref().display())))?;
        let token = text.trim().to_string();
        if token.is_empty() {
            return Err(LoadError::Token(format!("token_file {} is empty", file.get_ref().display())));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str, collector: &str) -> Result<AgentConfig, String> {
        let text = format!("name = \"web-1\"\ncollector = \"{collector}\"\ntoken = \"t\"\n{extra}");
        AgentConfig::parse(&text, Path::new("agent.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn plain_http_beyond_loopback_is_refused_unless_asked_for() {
        let err = parse("", "http://vakt.example.com:8427").unwrap_err();
        assert!(
            err.contains(
                "agent.toml:2:13: collector \"http://vakt.example.com:8427\" is plain http to \"vakt.example.com\""
            ),
            "{err}"
        );
        assert!(err.contains("set insecure_plaintext = true"), "{err}");
        assert!(parse("insecure_plaintext = true", "http://vakt.example.com:8427").is_ok());
        for ok in ["http://127.0.0.1:8427", "http://localhost:8427/", "http://[::1]:8427", "https://vakt.example.com"] {
            assert!(parse("", ok).is_ok(), "{ok}");
        }
        assert!(parse("", "http://user@10.0.0.1:80").is_err(), "the host, not the user part");
    }

    #[test]
    fn exec_allow_patterns_are_absolute_paths() {
        let err = parse("exec_allow = [\"plugins/*\", \"/usr/lib/../bin/*\"]", "http://127.0.0.1:1").unwrap_err();
        assert_eq!(err.matches("is not an absolute path").count(), 2, "{err}");
        assert!(parse("exec_allow = [\"/usr/lib/nagios/plugins/*\"]", "http://127.0.0.1:1").is_ok());
    }

    #[test]
    fn collectors_is_a_list_tried_in_order_and_exclusive_with_collector() {
        let text = "name = \"web-1\"\ntoken = \"t\"\ncollectors = [\"https://c1:8427/\", \"https://c2:8427\"]\n";
        let cfg = AgentConfig::parse(text, Path::new("agent.toml")).unwrap();
        assert_eq!(cfg.collector_urls(), vec!["https://c1:8427", "https://c2:8427"]);
        let err = parse("collectors = [\"https://c2:8427\"]", "https://c1:8427").unwrap_err();
        assert!(err.contains("both `collector` and `collectors` are set"), "{err}");
        let err =
            AgentConfig::parse("name = \"web-1\"\ntoken = \"t\"\n", Path::new("agent.toml")).unwrap_err().to_string();
        assert!(err.contains("neither `collector` nor `collectors` is set"), "{err}");
        let err = AgentConfig::parse(
            "name = \"web-1\"\ntoken = \"t\"\ncollectors = [\"https://c1\", \"http://c2:8427\"]\n",
            Path::new("agent.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("agent.toml:3:"), "each URL is checked, with its place: {err}");
        assert!(err.contains("plain http to \"c2\""), "{err}");
    }
}
