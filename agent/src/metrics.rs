//! The agent's own metrics, served on `metrics_listen` when it is set. Listed in
//! `docs/metrics.md`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Why samples were dropped; the bounded values of `reason`.
pub const DROP_REASONS: &[&str] = &["spool_full", "rejected", "corrupt", "spool_error"];

pub struct AgentMetrics {
    registry: Registry,
    pub probes: IntCounterVec,
    pub probe_duration: HistogramVec,
    pub spool_batches: IntGauge,
    pub spool_bytes: IntGauge,
    pub push_failures: IntCounter,
    pub samples_sent: IntCounter,
    pub dropped_samples: IntCounterVec,
    pub spool_write_errors: IntCounter,
    pub buffered_samples: IntGauge,
    /// Every probe run of this process, for the exit summary.
    pub probes_run: std::sync::atomic::AtomicU64,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        tracing::error!(error = %e, "metric registration failed");
    }
    metric
}

impl AgentMetrics {
    #[expect(clippy::expect_used, reason = "metric definitions are static and valid")]
    pub fn new() -> Self {
        let registry = Registry::new();
        let probes = register(
            &registry,
            IntCounterVec::new(
                Opts::new("vakt_agent_probes_total", "Probe runs, by check kind and outcome"),
                &["kind", "outcome"],
            )
            .expect("valid metric"),
        );
        let probe_duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new("vakt_agent_probe_duration_seconds", "Duration of probe runs")
                    .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["kind"],
            )
            .expect("valid metric"),
        );
        let spool_batches = register(
            &registry,
            IntGauge::new("vakt_agent_spool_batches", "Batches in the spool, not yet acknowledged")
                .expect("valid metric"),
        );
        let spool_bytes = register(
            &registry,
            IntGauge::new("vakt_agent_spool_bytes", "Size of the spool on disk").expect("valid metric"),
        );
        let push_failures = register(
            &registry,
            IntCounter::new(
                "vakt_agent_push_failures_total",
                "Pushes to the collector that failed and will be retried",
            )
            .expect("valid metric"),
        );
        let samples_sent = register(
            &registry,
            IntCounter::new("vakt_agent_samples_sent_total", "Samples the collector acknowledged")
                .expect("valid metric"),
        );
        let dropped_samples = register(
            &registry,
            IntCounterVec::new(
                Opts::new("vakt_agent_dropped_samples_total", "Samples given up on, by reason"),
                &["reason"],
            )
            .expect("valid metric"),
        );
        let spool_write_errors = register(
            &registry,
            IntCounter::new(
                "vakt_agent_spool_write_errors_total",
                "Attempts to write the spool that failed (disk full, read-only); samples wait in memory",
            )
            .expect("valid metric"),
        );
        let buffered_samples = register(
            &registry,
            IntGauge::new("vakt_agent_buffered_samples", "Samples held in memory, not yet in the spool")
                .expect("valid metric"),
        );
        for reason in DROP_REASONS {
            dropped_samples.with_label_values(&[*reason]);
        }
        Self {
            registry,
            probes,
            probe_duration,
            spool_batches,
            spool_bytes,
            spool_write_errors,
            buffered_samples,
            push_failures,
            samples_sent,
            dropped_samples,
            probes_run: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn dropped(&self, reason: &'static str, samples: u64) {
        self.dropped_samples.with_label_values(&[reason]).inc_by(samples);
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `GET /metrics` with a minimal HTTP/1.1 responder: the agent carries no web framework.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<AgentMetrics>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let (mut stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener accept failed");
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // Read the request head (bounded), then answer and close.
            let head_done = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while n < buf.len() {
                    match stream.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return false,
                        Ok(m) => n += m,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        return true;
                    }
                }
                false
            })
            .await
            .unwrap_or(false);
            if !head_done {
                return;
            }
            let line = buf[..n].split(|b| *b == b'\r').next().unwrap_or_default();
            let (status, ctype, body) = if line.starts_with(b"GET /metrics ") {
                ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render())
            } else {
                ("404 Not Found", "text/plain; charset=utf-8", "only /metrics is served here\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
