//! Probes: one module per kind behind the one [`Probe`] trait. Adding a kind is a new module
//! and one line in [`build`].

mod http;
mod tcp;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use vakt_config::wire::CheckSpec;
use vakt_config::CheckKind;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one probe run found.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResult {
    pub success: bool,
    pub latency: Option<Duration>,
    pub values: BTreeMap<String, f64>,
    pub error: Option<String>,
}

impl ProbeResult {
    pub fn ok(latency: Duration) -> Self {
        Self { success: true, latency: Some(latency), values: BTreeMap::new(), error: None }
    }
    pub fn failed(latency: Option<Duration>, error: impl Into<String>) -> Self {
        Self { success: false, latency, values: BTreeMap::new(), error: Some(error.into()) }
    }
    pub fn with_value(mut self, name: &str, value: f64) -> Self {
        self.values.insert(name.to_string(), value);
        self
    }
}

/// One kind of probe, built once per check and run on every tick. The scheduler enforces the
/// check's timeout around `run`.
pub trait Probe: Send + Sync {
    fn run(&self) -> BoxFuture<'_, ProbeResult>;
}

/// Shared resources probes are built from.
#[derive(Clone)]
pub struct ProbeContext {
    /// HTTP client for probes: no connection reuse, so each run measures a fresh connection.
    pub http: reqwest::Client,
}

impl ProbeContext {
    pub fn new() -> Result<Self, BuildError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .user_agent(concat!("vakt-agent/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| BuildError(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// The probe for a check.
pub fn build(spec: &CheckSpec, ctx: &ProbeContext) -> Result<Box<dyn Probe>, BuildError> {
    match spec.kind {
        CheckKind::Http => Ok(Box::new(http::HttpProbe::new(spec, ctx)?)),
        CheckKind::Tcp => Ok(Box::new(tcp::TcpProbe::new(spec)?)),
    }
}
