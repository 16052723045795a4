//! Talking to the collector: assignments in, batches out.

use flate2::write::GzEncoder;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use vakt_config::wire::{Assignments, Batch, CheckSpec, ErrorBody, IngestAck, LocalChecks};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Worth trying again later: network trouble, 5xx, 429, or a token the collector does not
    /// know yet.
    #[error("{0}")]
    Retryable(String),
    /// The collector refused the batch for what it holds; sending it again cannot help.
    #[error("{0}")]
    Rejected(String),
    /// The collector asks the agent to slow down (429): try again after `wait`.
    #[error("{message}")]
    Throttled { wait: Duration, message: String },
}

/// The wait a `Retry-After` header asks for (seconds; an HTTP date or nonsense counts as 1 s),
/// at most 5 minutes.
pub fn retry_after(value: Option<&str>) -> Duration {
    let secs = value.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1);
    Duration::from_secs(secs.clamp(1, 300))
}

/// The agent's link to its collectors: one base URL, or several nodes sharing a database.
/// A request that fails in a way worth retrying moves on to the next node at once; the node
/// that answered is asked first next time.
/// A TLS setting that cannot be used (a client certificate or key that does not parse).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientBuildError(pub String);

/// The client certificate chain and key of a PEM bundle (certificates, then the key).
fn identity_of(
    pem: &[u8],
) -> Result<(Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>), String> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("client certificate: {e}"))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("client key: {e}"))?;
    Ok((certs, key))
}

#[derive(Clone)]
pub struct CollectorClient {
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    /// Index into `bases` of the node that answered last.
    current: Arc<std::sync::atomic::AtomicUsize>,
    agent: String,
    token: String,
}

/// How the agent trusts an https collector and proves itself to one that asks.
#[derive(Clone, Debug, Default)]
pub struct CollectorTls {
    /// Extra CA certificates, PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and its key, PEM (for mutual TLS).
    pub identity_pem: Option<Vec<u8>>,
}

impl CollectorTls {
    /// Reads the files named in `agent.toml`; an error names the file.
    pub fn from_config(config: &vakt_config::AgentConfig) -> Result<Self, String> {
        let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let ca_pem = config.collector_ca_file.as_ref().map(|f| read(f.get_ref())).transpose()?;
        let identity_pem = match (&config.client_cert_file, &config.client_key_file) {
            (Some(c), Some(k)) => {
                let mut pem = read(c.get_ref())?;
                pem.push(b'\n');
                pem.extend(read(k.get_ref())?);
                Some(pem)
            }
            _ => None,
        };
        Ok(CollectorTls { ca_pem, identity_pem })
    }
}

impl CollectorClient {
    pub fn new(base: &str, agent: &str, token: &str) -> Result<Self, ClientBuildError> {
        Self::with_tls(&[base.to_string()], agent, token, &CollectorTls::default())
    }

    /// A client for the collectors at `bases`, tried in this order.
    pub fn with_tls(bases: &[String], agent: &str, token: &str, tls: &CollectorTls) -> Result<Self, ClientBuildError> {
        let failed = |e: reqwest::Error| ClientBuildError(format!("cannot build the HTTP client: {e}"));
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("vakt-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            // A node that hangs (frozen, overloaded) is left for the next one after this long.
            .timeout(Duration::from_secs(10));
        if let Some(pem) = &tls.ca_pem {
            // The file's CAs, and its certificates as exactly what the collector may present
            // (a self-signed `openssl req -x509` certificate is both).
            let identity = match &tls.identity_pem {
                Some(pem) => Some(identity_of(pem).map_err(ClientBuildError)?),
                None => None,
            };
            let mut config = crate::probe::tls::Trust::new(pem, "collector_ca_file")
                .and_then(|t| t.client_config(identity))
                .map_err(ClientBuildError)?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            builder = builder.use_preconfigured_tls(config);
        } else if let Some(pem) = &tls.identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(pem).map_err(failed)?);
        }
        let http = builder.build().map_err(failed)?;
        Ok(Self {
            http,
            bases: Arc::new(bases.iter().map(|b| b.trim_end_matches('/').to_string()).collect()),
            current: Default::default(),
            agent: agent.to_string(),
            token: token.to_string(),
        })
    }

    /// Asks each collector in turn, starting with the one that answered last, until one gives
    /// an answer that is not worth retrying elsewhere; that one is asked first next time.
    /// With every node failing, the errors of all are returned together.
    async fn each<T, F, Fut>(&self, mut ask: F) -> Result<T, ClientError>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        use std::sync::atomic::Ordering;
        let n = self.bases.len().max(1);
        let first = self.current.load(Ordering::Relaxed) % n;
        let mut failures = Vec::new();
        for k in 0..n {
            let i = (first + k) % n;
            let base = self.bases.get(i).cloned().unwrap_or_default();
            match ask(base.clone()).await {
                Err(ClientError::Retryable(why)) if n > 1 => {
                    if k + 1 < n {
                        tracing::warn!(collector = %base, "{why}; trying the next collector");
                    }
                    failures.push(why);
                }
                answer => {
                    if i != first {
                        tracing::info!(collector = %base, "now talking to this collector");
                    }
                    self.current.store(i, Ordering::Relaxed);
                    return answer;
                }
            }
        }
        Err(ClientError::Retryable(failures.join("; ")))
    }

    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Announces the agent's local checks and fetches its assignments, in one request. A
    /// collector from before announcements (405) is asked with a plain GET.
    pub async fn fetch_assignments(&self, local: &[Arc<CheckSpec>]) -> Result<Assignments, ClientError> {
        self.each(|base| self.fetch_assignments_from(base, local)).await
    }

    async fn fetch_assignments_from(&self, base: String, local: &[Arc<CheckSpec>]) -> Result<Assignments, ClientError> {
        let url = format!("{base}/api/v1/agents/{}/checks", self.agent);
        let body = serde_json::to_vec(&LocalChecks { checks: local.to_vec() })
            .map_err(|e| ClientError::Rejected(format!("cannot encode the local checks: {e}")))?;
        let sent = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) if r.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => {
                self.http.get(&url).bearer_auth(&self.token).send().await
            }
            other => other,
        }
        .map_err(|e| ClientError::Retryable(format!("POST {url}: {}", chain(&e))))?;
        let status = response.status();
        if !status.is_success() {
            let reason = reason(response).await;
            return Err(ClientError::Retryable(format!("POST {url}: {status}: {reason}")));
        }
        response.json().await.map_err(|e| ClientError::Retryable(format!("POST {url}: bad answer: {e}")))
    }

    /// The body of a push: the batch as gzip-compressed JSON. Spooled exactly like this.
    pub fn encode(batch: &Batch) -> Result<Vec<u8>, std::io::Error> {
        let json = serde_json::to_vec(batch)?;
        let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 4 + 64), flate2::Compression::fast());
        gz.write_all(&json)?;
        gz.finish()
    }

    /// Pushes an encoded batch (see [`CollectorClient::encode`]).
    pub async fn push(&self, body: Vec<u8>) -> Result<IngestAck, ClientError> {
        let body = Arc::new(body);
        self.each(|base| self.push_to(base, Arc::clone(&body))).await
    }

    async fn push_to(&self, base: String, body: Arc<Vec<u8>>) -> Result<IngestAck, ClientError> {
        let url = format!("{base}/api/v1/ingest");
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .header(
                vakt_config::wire::SENT_AT_HEADER,
                crate::scheduler::unix_ms(std::time::SystemTime::now()).to_string(),
            )
            .body(Vec::clone(&body))
            .send()
            .await
            .map_err(|e| ClientError::Retryable(format!("POST {url}: {}", chain(&e))))?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(|e| ClientError::Retryable(format!("POST {url}: bad answer: {e}")));
        }
        let wait = retry_after(response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()));
        let reason = reason(response).await;
        let message = format!("POST {url}: {status}: {reason}");
        if status.as_u16() == 429 {
            return Err(ClientError::Throttled { wait, message });
        }
        // 401/403: the operator may be fixing the token right now; keep the data. 426: the
        // URL says http:// to a collector that speaks HTTPS; keep it until the URL is fixed.
        if status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 408 | 426 | 429) {
            Err(ClientError::Retryable(message))
        } else {
            Err(ClientError::Rejected(message))
        }
    }
}

async fn reason(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<ErrorBody>(&text).map(|b| b.error).unwrap_or(text)
}

/// What went wrong with a request, its causes joined; a TLS client that met a plain-HTTP
/// server is told so in words.
fn chain(e: &reqwest::Error) -> String {
    let all = causes(e);
    if all.contains("InvalidContentType") || all.contains("corrupt message") {
        return format!(
            "the collector answered in plain HTTP, not TLS: use an http:// URL, or give the collector a [tls] table ({all})"
        );
    }
    all
}

fn causes(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_bounded_and_forgiving() {
        assert_eq!(retry_after(Some("3")), Duration::from_secs(3));
        assert_eq!(retry_after(Some("0")), Duration::from_secs(1), "never a busy loop");
        assert_eq!(retry_after(Some("86400")), Duration::from_secs(300), "never a day");
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), Duration::from_secs(1));
        assert_eq!(retry_after(None), Duration::from_secs(1));
    }
}
