//! HTTP(S) probe: one request; success when the status is expected, the body matches, and the
//! certificate is far enough from expiry. Reports status, time to first byte, body size and
//! certificate days left.

use std::time::{Duration, Instant};
use vakt_config::wire::CheckSpec;

use vakt_config::json_assert::{Expect, JsonPath};

use super::{BoxFuture, BuildError, HttpClientKey, Probe, ProbeContext, ProbeResult};

/// Bodies are read up to this size for matching; the rest is drained but not kept.
const MAX_BODY_MATCH: usize = 4 * 1024 * 1024;

pub struct HttpProbe {
    client: reqwest::Client,
    url: reqwest::Url,
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
    body: Option<String>,
    expect_status: Vec<u16>,
    body_contains: Option<String>,
    body_regex: Option<regex_lite::Regex>,
    json: Option<(JsonPath, Option<Expect>)>,
    expect_headers: Vec<(reqwest::header::HeaderName, String)>,
    cert_min_days: Option<u32>,
    timeout: Duration,
}

impl HttpProbe {
    pub fn new(spec: &CheckSpec, ctx: &ProbeContext) -> Result<Self, BuildError> {
        let o = &spec.options;
        let bad = |what: String| BuildError(format!("check {:?}: {what}", spec.id));
        let url = reqwest::Url::parse(&spec.target)
            .map_err(|e| bad(format!("target {:?} is not a URL: {e}", spec.target)))?;
        let method = o.method.as_deref().unwrap_or("GET");
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| bad(format!("bad HTTP method {method:?}")))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &o.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad(format!("bad header name {k:?}")))?;
            let value =
                reqwest::header::HeaderValue::from_str(v).map_err(|_| bad(format!("bad value for header {k:?}")))?;
            headers.insert(name, value);
        }
        let body_regex = o
            .body_regex
            .as_deref()
            .map(regex_lite::Regex::new)
            .transpose()
            .map_err(|e| bad(format!("body_regex: {e}")))?;
        let json = match &o.json_path {
            Some(p) => Some((
                JsonPath::parse(p).map_err(|e| bad(format!("json_path {e}")))?,
                o.json_expect.as_deref().map(Expect::parse).transpose().map_err(|e| bad(format!("json_expect {e}")))?,
            )),
            None => None,
        };
        let expect_headers = o
            .expect_headers
            .iter()
            .map(|(k, v)| {
                reqwest::header::HeaderName::from_bytes(k.as_bytes())
                    .map(|name| (name, v.clone()))
                    .map_err(|_| bad(format!("expect_headers: bad header name {k:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = ctx.http_client(HttpClientKey {
            verify: o.tls_verify.unwrap_or(true),
            ca_file: o.ca_file.clone(),
            follow_redirects: o.follow_redirects.unwrap_or(true),
        })?;
        Ok(Self {
            client,
            url,
            method,
            headers,
            body: o.body.clone(),
            expect_status: o.expect_status.clone(),
            body_contains: o.body_contains.clone(),
            body_regex,
            json,
            expect_headers,
            cert_min_days: o.cert_min_days,
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
        let mut request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .timeout(self.timeout);
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return ProbeResult::failed(Some(start.elapsed()), format!("timed out after {}", seconds(self.timeout)))
            }
            Err(e) => return ProbeResult::failed(Some(start.elapsed()), describe(&e)),
        };
        let first_byte = start.elapsed();
        let status = response.status().as_u16();
        let cert_days = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .map(super::tls::days_left);
        let keep_body = self.body_contains.is_some() || self.body_regex.is_some() || self.json.is_some();
        // The headers asked for, read before the body is: (name, value or none).
        let headers: Vec<(String, Option<String>)> = self
            .expect_headers
            .iter()
            .map(|(name, _)| {
                let value = response.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                (name.to_string(), value)
            })
            .collect();
        let mut body = Vec::new();
        let mut body_bytes = 0usize;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body_bytes += chunk.len();
                    if keep_body && body.len() < MAX_BODY_MATCH {
                        body.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY_MATCH - body.len())]);
                    }
                }
                Ok(None) => break,
                Err(e) => return ProbeResult::failed(Some(start.elapsed()), format!("reading body: {}", describe(&e))),
            }
        }
        let mut result = ProbeResult::ok(start.elapsed())
            .with_value("status_code", f64::from(status))
            .with_value("time_to_first_byte_seconds", first_byte.as_secs_f64())
            .with_value("body_bytes", body_bytes as f64);
        match cert_days {
            Some(Ok(days)) => {
                result = result.with_value("cert_days_left", days);
                if let Some(min) = self.cert_min_days {
                    if days < f64::from(min) {
                        result = result.fail(format!("certificate expires in {days:.1} days (cert_min_days is {min})"));
                    }
                }
            }
            Some(Err(e)) => tracing::debug!(url = %self.url, error = %e, "cannot read the certificate's expiry"),
            None => {}
        }
        if !self.status_ok(status) {
            return result.fail(format!("status {status}"));
        }
        for ((name, value), (_, wanted)) in headers.iter().zip(&self.expect_headers) {
            match value {
                None => return result.fail(format!("no {name} header")),
                Some(v) if !v.contains(wanted.as_str()) => {
                    return result.fail(format!("header {name} is {v:?}, expected it to contain {wanted:?}"));
                }
                Some(_) => {}
            }
        }
        if let Some((path, expect)) = &self.json {
            // The number found is reported whether or not it passes (a queue depth to graph).
            if let Some(n) = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|json| path.find(&json).and_then(serde_json::Value::as_f64))
            {
                result = result.with_value("json_value", n);
            }
            if let Err(why) = vakt_config::json_assert::check(&body, path, expect.as_ref()) {
                return result.fail(why);
            }
        }
        let text = String::from_utf8_lossy(&body);
        if let Some(needle) = &self.body_contains {
            if !text.contains(needle.as_str()) {
                return result.fail(format!("body does not contain {needle:?}"));
            }
        }
        if let Some(re) = &self.body_regex {
            if !re.is_match(&text) {
                return result.fail(format!("body does not match /{}/", re.as_str()));
            }
        }
        result
    }
}

/// "5s", "2.5s", "250ms": a timeout as people write it.
fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
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
        let text = s.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
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
