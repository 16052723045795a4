//! Probes: one module per kind behind the one [`Probe`] trait. Adding a kind is a new module
//! and one line in [`build`].
//!
//! Every probe enforces its check's timeout itself and reports what it measured as named values
//! in base units (seconds, bytes, ratios or percent where the name says so).

mod dns;
pub mod dns_wire;
pub mod domain;
mod exec;
pub use exec::ExecPolicy;
mod host;
mod http;
mod icmp;
pub mod perfdata;
mod tcp;
pub mod tls;
pub mod x509;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vakt_config::wire::CheckSpec;
use vakt_config::CheckKind;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one probe run found.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResult {
    pub success: bool,
    /// Succeeded, but not well: slow, a plugin WARNING, a value above its warning level.
    pub degraded: bool,
    pub latency: Option<Duration>,
    pub values: BTreeMap<String, f64>,
    pub error: Option<String>,
    /// A plugin's performance data with its own labels and thresholds.
    pub perfdata: Vec<vakt_config::wire::PerfValue>,
}

/// Whether the collector said it takes [`vakt_config::wire::Sample::perfdata`] (in its last
/// assignments): an older one refuses a sample with a field it does not know.
pub static PERFDATA_ACCEPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl ProbeResult {
    pub fn ok(latency: Duration) -> Self {
        Self {
            success: true,
            degraded: false,
            latency: Some(latency),
            values: BTreeMap::new(),
            error: None,
            perfdata: Vec::new(),
        }
    }
    pub fn failed(latency: Option<Duration>, error: impl Into<String>) -> Self {
        Self {
            success: false,
            degraded: false,
            latency,
            values: BTreeMap::new(),
            error: Some(error.into()),
            perfdata: Vec::new(),
        }
    }
    pub fn with_value(mut self, name: &str, value: f64) -> Self {
        self.values.insert(name.to_string(), value);
        self
    }
    /// Marks a successful result degraded, with the reason as its error text.
    pub fn degrade(mut self, why: impl Into<String>) -> Self {
        if self.success && !self.degraded {
            self.degraded = true;
            self.error = Some(why.into());
        }
        self
    }
    /// Turns a successful result into a failure, keeping what was measured.
    pub fn fail(mut self, why: impl Into<String>) -> Self {
        if self.success {
            self.success = false;
            self.degraded = false;
            self.error = Some(why.into());
        }
        self
    }
}

/// One kind of probe, built once per check and run on every tick. A probe enforces the
/// check's timeout itself; the scheduler only guards against one that does not.
pub trait Probe: Send + Sync {
    fn run(&self) -> BoxFuture<'_, ProbeResult>;
}

/// TLS and redirect settings that select an HTTP client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct HttpClientKey {
    verify: bool,
    ca_file: Option<PathBuf>,
    follow_redirects: bool,
}

/// Shared resources probes are built from: HTTP clients (one per TLS/redirect setting, not one
/// per check), ICMP sockets, the host metrics reader.
#[derive(Clone, Default)]
pub struct ProbeContext {
    http: Arc<Mutex<HashMap<HttpClientKey, reqwest::Client>>>,
    icmp: Arc<icmp::IcmpClients>,
    host: Arc<host::HostReader>,
    exec: Arc<exec::ExecPolicy>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

impl ProbeContext {
    /// Exec checks run only as `exec` allows.
    pub fn new(exec: ExecPolicy) -> Result<Self, BuildError> {
        Ok(Self { exec: Arc::new(exec), ..Self::default() })
    }

    fn http_client(&self, key: HttpClientKey) -> Result<reqwest::Client, BuildError> {
        let mut clients = self.http.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            // A fresh connection per probe: each run measures connect and TLS, like a new visitor.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("vakt-agent/", env!("CARGO_PKG_VERSION")))
            .tls_info(true)
            .danger_accept_invalid_certs(!key.verify)
            .redirect(if key.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            });
        if let (Some(path), true) = (&key.ca_file, key.verify) {
            // The ca_file's CAs, and its certificates as exactly what a server may present.
            let pem =
                std::fs::read(path).map_err(|e| BuildError(format!("cannot read ca_file {}: {e}", path.display())))?;
            let mut config = tls::Trust::new(&pem, &format!("ca_file {}", path.display()))
                .and_then(|t| t.client_config(None))
                .map_err(BuildError)?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            builder = builder.use_preconfigured_tls(config);
        }
        let client = builder.build().map_err(|e| BuildError(format!("cannot build the HTTP client: {e}")))?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// The probe for a check.
pub fn build(spec: &CheckSpec, ctx: &ProbeContext) -> Result<Box<dyn Probe>, BuildError> {
    match spec.kind {
        CheckKind::Http => Ok(Box::new(http::HttpProbe::new(spec, ctx)?)),
        CheckKind::Tcp => Ok(Box::new(tcp::TcpProbe::new(spec)?)),
        CheckKind::Icmp => Ok(Box::new(icmp::IcmpProbe::new(spec, ctx)?)),
        CheckKind::Dns => Ok(Box::new(dns::DnsProbe::new(spec)?)),
        CheckKind::Host => Ok(Box::new(host::HostProbe::new(spec, ctx)?)),
        CheckKind::Domain => Ok(Box::new(domain::DomainProbe::new(spec, ctx)?)),
        CheckKind::Heartbeat => {
            Err(BuildError("a heartbeat check is watched by the collector (its job pings it), not probed".into()))
        }
        CheckKind::Exec => match ctx.exec.refusal(spec) {
            None => Ok(Box::new(exec::ExecProbe::new(spec)?)),
            Some(reason) => {
                tracing::error!(check = %spec.id, plugin = %spec.target, "{reason}");
                Ok(Box::new(exec::RefusedProbe { reason }))
            }
        },
    }
}

/// Applies the check's `degraded_latency`, common to every kind.
pub fn apply_degraded_latency(result: ProbeResult, spec: &CheckSpec) -> ProbeResult {
    match (spec.options.degraded_latency_ms, result.latency) {
        (Some(limit), Some(latency)) if result.success && latency > Duration::from_millis(limit) => {
            let text = format!(
                "slow: {} over the degraded_latency of {}",
                vakt_config::duration::format_duration(latency),
                vakt_config::duration::format_duration(Duration::from_millis(limit))
            );
            result.degrade(text)
        }
        _ => result,
    }
}

/// Decodes `\r`, `\n`, `\t` and `\\` in a configured string to send.
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('r') => out.push(b'\r'),
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('\\') => out.push(b'\\'),
                Some(other) => {
                    out.push(b'\\');
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
                None => out.push(b'\\'),
            }
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}
