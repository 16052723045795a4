//! TCP probe: success when a connection to `host:port` is established.

use std::time::Instant;
use tokio::net::TcpStream;
use vakt_config::wire::CheckSpec;

use super::{BoxFuture, BuildError, Probe, ProbeResult};

pub struct TcpProbe {
    target: String,
}

impl TcpProbe {
    pub fn new(spec: &CheckSpec) -> Result<Self, BuildError> {
        if spec.target.rsplit_once(':').is_none() {
            return Err(BuildError(format!("check {:?}: target {:?} is not host:port", spec.id, spec.target)));
        }
        Ok(Self { target: spec.target.clone() })
    }

    async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        match TcpStream::connect(&self.target).await {
            Ok(stream) => {
                let latency = start.elapsed();
                drop(stream);
                ProbeResult::ok(latency)
            }
            Err(e) => ProbeResult::failed(Some(start.elapsed()), format!("connect to {} failed: {e}", self.target)),
        }
    }
}

impl Probe for TcpProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(self.probe())
    }
}
