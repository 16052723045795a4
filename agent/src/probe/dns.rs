//! DNS probe: one query over UDP (TCP when the answer is truncated) to the given server or the
//! system's first nameserver; success on the expected rcode and, if asked, an answer containing
//! a substring. Reports lookup time, answer count and rcode.

use rand::Rng;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use vakt_config::wire::CheckSpec;

use super::dns_wire::{self, Response};
use super::{BoxFuture, BuildError, Probe, ProbeResult};

pub struct DnsProbe {
    name: String,
    qtype: u16,
    qtype_name: String,
    server: Option<SocketAddr>,
    expect_rcode: String,
    expect_answer: Option<String>,
    timeout: Duration,
}

/// The first nameserver in /etc/resolv.conf.
fn system_nameserver() -> Result<SocketAddr, String> {
    let text = std::fs::read_to_string("/etc/resolv.conf").map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| "no nameserver in /etc/resolv.conf".into())
}

impl DnsProbe {
    pub fn new(spec: &CheckSpec) -> Result<Self, BuildError> {
        let o = &spec.options;
        let qtype_name = o.record_type.clone().unwrap_or_else(|| "A".into());
        let qtype = dns_wire::type_code(&qtype_name)
            .ok_or_else(|| BuildError(format!("check {:?}: record type {qtype_name:?} is not supported", spec.id)))?;
        let server = match o.server.as_deref() {
            None => None,
            Some(s) => Some(
                s.parse::<SocketAddr>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| BuildError(format!("check {:?}: server {s:?} is not ip or ip:port", spec.id)))?,
            ),
        };
        dns_wire::build_query(0, &spec.target, qtype).map_err(|e| BuildError(format!("check {:?}: {e}", spec.id)))?;
        Ok(Self {
            name: spec.target.clone(),
            qtype,
            qtype_name,
            server,
            expect_rcode: o.expect_rcode.clone().unwrap_or_else(|| "NOERROR".into()),
            expect_answer: o.expect_answer.clone(),
            timeout: Duration::from_millis(spec.timeout_ms),
        })
    }

    async fn query(&self, server: SocketAddr) -> Result<Response, String> {
        let id: u16 = rand::rng().random();
        let query = dns_wire::build_query(id, &self.name, self.qtype)?;
        let bind: SocketAddr =
            if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().map_err(|_| "bind address")?;
        let socket = UdpSocket::bind(bind).await.map_err(|e| format!("UDP socket: {e}"))?;
        socket.connect(server).await.map_err(|e| format!("UDP to {server}: {e}"))?;
        socket.send(&query).await.map_err(|e| format!("sending to {server}: {e}"))?;
        let mut buf = vec![0u8; 4096];
        let response = loop {
            let n = socket.recv(&mut buf).await.map_err(|e| format!("no answer from {server}: {e}"))?;
            match dns_wire::parse_response(&buf[..n]) {
                Ok(r) if r.id == id => break r,
                Ok(_) => continue, // a stray answer to something else
                Err(e) => return Err(format!("bad answer from {server}: {e}")),
            }
        };
        if !response.truncated {
            return Ok(response);
        }
        // Truncated: ask again over TCP.
        let mut stream = TcpStream::connect(server).await.map_err(|e| format!("TCP to {server}: {e}"))?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        stream.write_all(&framed).await.map_err(|e| format!("sending to {server}: {e}"))?;
        let len = stream.read_u16().await.map_err(|e| format!("reading from {server}: {e}"))?;
        let mut msg = vec![0u8; usize::from(len)];
        stream.read_exact(&mut msg).await.map_err(|e| format!("reading from {server}: {e}"))?;
        dns_wire::parse_response(&msg).map_err(|e| format!("bad answer from {server}: {e}"))
    }

    async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        let server = match self.server.map_or_else(system_nameserver, Ok) {
            Ok(s) => s,
            Err(e) => return ProbeResult::failed(None, e),
        };
        let response = match tokio::time::timeout(self.timeout, self.query(server)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return ProbeResult::failed(Some(start.elapsed()), e),
            Err(_) => {
                return ProbeResult::failed(
                    Some(start.elapsed()),
                    format!(
                        "{} {} @{server} timed out after {}",
                        self.qtype_name,
                        self.name,
                        vakt_config::duration::format_duration(self.timeout)
                    ),
                )
            }
        };
        let rcode = dns_wire::rcode_name(response.rcode);
        let of_type: Vec<&str> =
            response.answers.iter().filter(|a| a.rtype == self.qtype).map(|a| a.data.as_str()).collect();
        let result = ProbeResult::ok(start.elapsed())
            .with_value("rcode", f64::from(response.rcode))
            .with_value("answers", of_type.len() as f64);
        if rcode != self.expect_rcode {
            return result.fail(format!("{} {}: {rcode} (expected {})", self.qtype_name, self.name, self.expect_rcode));
        }
        if let Some(want) = &self.expect_answer {
            if !of_type.iter().any(|a| a.contains(want.as_str())) {
                return result.fail(format!(
                    "{} {}: no answer contains {want:?} (got {})",
                    self.qtype_name,
                    self.name,
                    of_type.join(", ")
                ));
            }
        }
        result
    }
}

impl Probe for DnsProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(self.probe())
    }
}
