//! HTTP(S) probe: a request; success when the status is expected and the body matches.

use std::time::{Duration, Instant};
use vakt_config::wire::CheckSpec;

use super::{BoxFuture, BuildError, Probe, ProbeContext, ProbeResult};

pub struct HttpProbe {
    client: reqwest::Client,
    url: reqwest::Url,
    method: reqwest::Method,
    expect_status: Vec<u16>,
    body_contains: Option<String>,
    timeout: Duration,
}

impl HttpProbe {
    pub fn new(spec: &CheckSpec, ctx: &ProbeContext) -> Result<Self, BuildError> {
        let url = reqwest::Url::parse(&spec.target)
            .map_err(|e| BuildError(format!("check {:?}: target {:?} is not a URL: {e}", spec.id, spec.target)))?;
        let method = spec.method.as_deref().unwrap_or("GET");
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| BuildError(format!("check {:?}: bad HTTP method {method:?}", spec.id)))?;
        Ok(Self {
            client: ctx.http.clone(),
            url,
            method,
            expect_status: spec.expect_status.clone(),
            body_contains: spec.body_contains.clone(),
            timeout: Duration::from_millis(spec.timeout_ms),
        })
    }

    fn status_ok(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }

    async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        let response = self.client.request(self.method.clone(), self.url.clone()).timeout(self.timeout).send().await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return ProbeResult::failed(Some(start.elapsed()), describe(&e)),
        };
        let status = response.status().as_u16();
        let body = if self.body_contains.is_some() {
            match response.text().await {
                Ok(b) => Some(b),
                Err(e) => return ProbeResult::failed(Some(start.elapsed()), format!("reading body: {}", describe(&e))),
            }
        } else {
            // Read to the end so the latency covers the whole answer.
            let _ = response.bytes().await;
            None
        };
        let latency = start.elapsed();
        let result = if !self.status_ok(status) {
            ProbeResult::failed(Some(latency), format!("status {status}"))
        } else if let (Some(needle), Some(body)) = (&self.body_contains, &body) {
            if body.contains(needle.as_str()) {
                ProbeResult::ok(latency)
            } else {
                ProbeResult::failed(Some(latency), format!("body does not contain {needle:?}"))
            }
        } else {
            ProbeResult::ok(latency)
        };
        result.with_value("status_code", f64::from(status))
    }
}

/// reqwest's errors name the URL and a chain of causes; keep the causes, they say what failed.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    if causes.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

impl Probe for HttpProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(self.probe())
    }
}
