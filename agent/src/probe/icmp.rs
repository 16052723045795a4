//! ICMP echo probe (surge-ping): N packets, round-trip min/avg/max and loss.
//!
//! The socket is a datagram ICMP socket where `net.ipv4.ping_group_range` allows it, a raw
//! socket otherwise (needs CAP_NET_RAW); which one was obtained is logged once. When neither is
//! permitted, every run reports that clearly.

use rand::Rng;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use surge_ping::{Client, Config, PingIdentifier, PingSequence, ICMP};
use tokio::sync::OnceCell;
use vakt_config::wire::CheckSpec;

use super::{BoxFuture, BuildError, Probe, ProbeContext, ProbeResult};

/// One ICMP socket per address family, opened on first use.
#[derive(Default)]
pub struct IcmpClients {
    v4: OnceCell<Result<Client, String>>,
    v6: OnceCell<Result<Client, String>>,
}

fn open(kind: ICMP) -> Result<Client, String> {
    let config = Config::builder().kind(kind).sock_type_hint(socket2::Type::DGRAM).build();
    match Client::new(&config) {
        Ok(client) => {
            let sock =
                if client.get_socket().get_type() == socket2::Type::DGRAM { "datagram (unprivileged)" } else { "raw" };
            tracing::info!(family = ?kind, socket = sock, "ICMP socket opened");
            Ok(client)
        }
        Err(e) => Err(format!(
            "cannot open an ICMP socket ({e}): allow datagram ICMP sockets for the agent's group with the sysctl \
             net.ipv4.ping_group_range, or give the agent CAP_NET_RAW"
        )),
    }
}

impl IcmpClients {
    async fn get(&self, ip: IpAddr) -> Result<&Client, String> {
        let cell = if ip.is_ipv4() { &self.v4 } else { &self.v6 };
        let kind = if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 };
        let result = cell.get_or_init(|| async move { open(kind) }).await;
        result.as_ref().map_err(Clone::clone)
    }
}

pub struct IcmpProbe {
    target: String,
    ctx: ProbeContext,
    packets: u32,
    max_loss_percent: Option<f64>,
    timeout: Duration,
}

impl IcmpProbe {
    pub fn new(spec: &CheckSpec, ctx: &ProbeContext) -> Result<Self, BuildError> {
        Ok(Self {
            target: spec.target.clone(),
            ctx: ctx.clone(),
            packets: spec.options.packets.unwrap_or(3).max(1),
            max_loss_percent: spec.options.max_loss_percent,
            timeout: Duration::from_millis(spec.timeout_ms),
        })
    }

    async fn resolve(&self) -> Result<IpAddr, String> {
        if let Ok(ip) = self.target.parse::<IpAddr>() {
            return Ok(ip);
        }
        let mut addrs = tokio::net::lookup_host((self.target.as_str(), 0))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", self.target))?;
        addrs.next().map(|a| a.ip()).ok_or_else(|| format!("{} has no address", self.target))
    }

    async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        let ip = match self.resolve().await {
            Ok(ip) => ip,
            Err(e) => return ProbeResult::failed(Some(start.elapsed()), e),
        };
        let client = match self.ctx.icmp.get(ip).await {
            Ok(c) => c,
            Err(e) => return ProbeResult::failed(None, e),
        };
        let ident = PingIdentifier(rand::rng().random());
        let mut pinger = client.pinger(ip, ident).await;
        // Packets go one after another; each may take its share of the timeout.
        pinger.timeout(self.timeout / self.packets);
        let payload = [0u8; 56];
        let mut rtts = Vec::with_capacity(self.packets as usize);
        let mut last_error = None;
        for seq in 0..self.packets {
            match pinger.ping(PingSequence(u16::try_from(seq).unwrap_or(u16::MAX)), &payload).await {
                Ok((_, rtt)) => rtts.push(rtt),
                Err(e) => last_error = Some(e.to_string()),
            }
        }
        let sent = f64::from(self.packets);
        let loss = (sent - rtts.len() as f64) * 100.0 / sent;
        let mut result = match (rtts.iter().min(), rtts.iter().max()) {
            (Some(min), Some(max)) => {
                let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
                ProbeResult::ok(avg)
                    .with_value("rtt_min_seconds", min.as_secs_f64())
                    .with_value("rtt_avg_seconds", avg.as_secs_f64())
                    .with_value("rtt_max_seconds", max.as_secs_f64())
            }
            _ => ProbeResult::failed(
                None,
                format!("no reply from {ip} to {} echo requests ({})", self.packets, last_error.unwrap_or_default()),
            ),
        };
        result = result.with_value("packet_loss_percent", loss).with_value("packets_sent", sent);
        if let Some(max) = self.max_loss_percent {
            if loss > max {
                result = result.fail(format!("{loss:.0}% packet loss to {ip} (max_loss_percent {max})"));
            }
        }
        result
    }
}

impl Probe for IcmpProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(self.probe())
    }
}
