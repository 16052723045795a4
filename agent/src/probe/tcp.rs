//! TCP probe: connect to `host:port`; optionally a TLS handshake (reporting the certificate's
//! days left), then optionally send a string and expect a substring in the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;
use vakt_config::wire::CheckSpec;

use super::{BoxFuture, BuildError, Probe, ProbeResult};

pub struct TcpProbe {
    target: String,
    host: String,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    send: Option<Vec<u8>>,
    expect: Option<String>,
    cert_min_days: Option<u32>,
    timeout: Duration,
}

impl TcpProbe {
    pub fn new(spec: &CheckSpec) -> Result<Self, BuildError> {
        let Some((host, _)) = spec.target.rsplit_once(':') else {
            return Err(BuildError(format!("check {:?}: target {:?} is not host:port", spec.id, spec.target)));
        };
        let o = &spec.options;
        let tls = if o.tls.unwrap_or(false) {
            Some(super::tls::client_config(o.tls_verify.unwrap_or(true), o.ca_file.as_deref())?)
        } else {
            None
        };
        Ok(Self {
            target: spec.target.clone(),
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            tls,
            send: o.send.as_deref().map(super::unescape),
            expect: o.expect.clone(),
            cert_min_days: o.cert_min_days,
            timeout: Duration::from_millis(spec.timeout_ms),
        })
    }

    async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        match tokio::time::timeout(self.timeout, self.exchange(start)).await {
            Ok(r) => r,
            Err(_) => ProbeResult::failed(
                Some(start.elapsed()),
                format!("{} timed out after {}", self.target, vakt_config::duration::format_duration(self.timeout)),
            ),
        }
    }

    async fn exchange(&self, start: Instant) -> ProbeResult {
        let stream = match TcpStream::connect(&self.target).await {
            Ok(s) => s,
            Err(e) => {
                return ProbeResult::failed(Some(start.elapsed()), format!("connect to {} failed: {e}", self.target))
            }
        };
        let connect = start.elapsed();
        let Some(config) = &self.tls else {
            let r = self.converse(stream, start).await;
            return r.with_value("connect_seconds", connect.as_secs_f64());
        };
        let name = match ServerName::try_from(self.host.clone()) {
            Ok(n) => n,
            Err(e) => {
                return ProbeResult::failed(
                    Some(start.elapsed()),
                    format!("{:?} is not a TLS server name: {e}", self.host),
                )
            }
        };
        let tls = match TlsConnector::from(config.clone()).connect(name, stream).await {
            Ok(t) => t,
            Err(e) => {
                return ProbeResult::failed(
                    Some(start.elapsed()),
                    format!("TLS handshake with {} failed: {e}", self.target),
                )
            }
        };
        let handshake = start.elapsed() - connect;
        let days = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| super::tls::days_left(c));
        let mut result = self.converse(tls, start).await;
        result = result
            .with_value("connect_seconds", connect.as_secs_f64())
            .with_value("tls_handshake_seconds", handshake.as_secs_f64());
        match days {
            Some(Ok(days)) => {
                result = result.with_value("cert_days_left", days);
                if let Some(min) = self.cert_min_days {
                    if days < f64::from(min) {
                        result = result.fail(format!("certificate expires in {days:.1} days (cert_min_days is {min})"));
                    }
                }
            }
            Some(Err(e)) => return result.fail(format!("cannot read the certificate: {e}")),
            None => return result.fail("the server sent no certificate"),
        }
        result
    }

    /// Sends and expects, if configured, on a connected stream.
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S, start: Instant) -> ProbeResult {
        if let Some(data) = &self.send {
            if let Err(e) = stream.write_all(data).await {
                return ProbeResult::failed(Some(start.elapsed()), format!("sending to {} failed: {e}", self.target));
            }
        }
        if let Some(expect) = &self.expect {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                if String::from_utf8_lossy(&seen).contains(expect.as_str()) {
                    break;
                }
                match stream.read(&mut buf).await {
                    Ok(0) => {
                        let got = String::from_utf8_lossy(&seen);
                        return ProbeResult::failed(
                            Some(start.elapsed()),
                            format!(
                                "{} closed without sending {expect:?} (got {:?})",
                                self.target,
                                got.chars().take(200).collect::<String>()
                            ),
                        );
                    }
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        return ProbeResult::failed(
                            Some(start.elapsed()),
                            format!("reading from {} failed: {e}", self.target),
                        )
                    }
                }
                if seen.len() > 64 * 1024 {
                    return ProbeResult::failed(
                        Some(start.elapsed()),
                        format!("no {expect:?} in the first 64 KiB from {}", self.target),
                    );
                }
            }
        }
        let _ = stream.shutdown().await;
        ProbeResult::ok(start.elapsed())
    }
}

impl Probe for TcpProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(self.probe())
    }
}
