//! Domain registration expiry through RDAP (RFC 9083): `GET {server}/domain/{name}` with
//! `Accept: application/rdap+json`, following redirects (rdap.org sends each query on to the
//! registry that holds the domain). The answer's `events` carry the `expiration` date; the
//! probe reports the days left and fails when they are fewer than `domain_min_days`, when the
//! domain is not found, or when its status says it is on hold.

use std::time::{Duration, Instant};
use vakt_config::wire::CheckSpec;

use super::{BoxFuture, BuildError, HttpClientKey, Probe, ProbeContext, ProbeResult};

/// Default warning horizon: a month, time enough to renew through any registrar.
pub const DEFAULT_MIN_DAYS: u32 = 30;
const DEFAULT_SERVER: &str = "https://rdap.org";
/// RDAP answers are small; a larger one is not read.
const MAX_ANSWER: usize = 1024 * 1024;

pub struct DomainProbe {
    client: reqwest::Client,
    url: String,
    domain: String,
    min_days: u32,
    timeout: Duration,
}

impl DomainProbe {
    pub fn new(spec: &CheckSpec, ctx: &ProbeContext) -> Result<Self, BuildError> {
        let o = &spec.options;
        let server = o.rdap_server.as_deref().unwrap_or(DEFAULT_SERVER).trim_end_matches('/');
        let domain = spec.target.trim().trim_end_matches('.').to_ascii_lowercase();
        let client = ctx.http_client(HttpClientKey {
            verify: o.tls_verify.unwrap_or(true),
            ca_file: o.ca_file.clone(),
            follow_redirects: true,
        })?;
        Ok(Self {
            client,
            url: format!("{server}/domain/{domain}"),
            domain,
            min_days: o.domain_min_days.unwrap_or(DEFAULT_MIN_DAYS),
            timeout: Duration::from_millis(spec.timeout_ms),
        })
    }

    async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        let sent = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/rdap+json")
            .timeout(self.timeout)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return ProbeResult::failed(Some(start.elapsed()), format!("RDAP query failed: {e}")),
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return ProbeResult::failed(
                Some(start.elapsed()),
                format!("{} is not registered (RDAP: not found)", self.domain),
            );
        }
        if !status.is_success() {
            return ProbeResult::failed(Some(start.elapsed()), format!("RDAP server answered {status}"));
        }
        let body = match response.bytes().await {
            Ok(b) if b.len() <= MAX_ANSWER => b,
            Ok(_) => return ProbeResult::failed(Some(start.elapsed()), "RDAP answer larger than 1 MiB"),
            Err(e) => return ProbeResult::failed(Some(start.elapsed()), format!("reading the RDAP answer: {e}")),
        };
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        match expiry(&body, now_ms) {
            Ok(found) => {
                let mut result = ProbeResult::ok(start.elapsed()).with_value("domain_days_left", found.days_left);
                if let Some(hold) = found.hold {
                    return result.fail(format!("{} has status {hold:?}", self.domain));
                }
                if found.days_left < f64::from(self.min_days) {
                    result = result.fail(format!(
                        "domain {} expires in {:.1} days (domain_min_days is {})",
                        self.domain, found.days_left, self.min_days
                    ));
                }
                result
            }
            Err(why) => ProbeResult::failed(Some(start.elapsed()), why),
        }
    }
}

/// What an RDAP domain answer says of the registration.
#[derive(Debug, PartialEq)]
pub struct Registration {
    pub days_left: f64,
    /// A status that takes the domain off the internet ("client hold", "server hold").
    pub hold: Option<String>,
}

/// Reads the expiration event (and any hold status) from an RDAP domain object.
pub fn expiry(body: &[u8], now_ms: i64) -> Result<Registration, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("RDAP answer is not JSON: {e}"))?;
    let date = v["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["eventAction"] == "expiration")
        .and_then(|e| e["eventDate"].as_str())
        .ok_or("the RDAP answer has no expiration event")?;
    let at_ms = rfc3339_ms(date).ok_or_else(|| format!("expiration date {date:?} is not an RFC 3339 time"))?;
    let hold = v["status"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .find(|s| s.ends_with("hold"))
        .map(String::from);
    Ok(Registration { days_left: (at_ms - now_ms) as f64 / 86_400_000.0, hold })
}

/// Days from 1970-01-01 to a proleptic Gregorian date (March-based years, so February's
/// length comes last).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// An RFC 3339 time ("2026-12-09T00:00:00Z", "2026-12-09T01:00:00.5+01:00") as Unix ms.
fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> { s.get(from..from + len)?.parse().ok() };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms_digits: String = frac[..digits].chars().chain("000".chars()).take(3).collect();
        millis = ms_digits.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let m = o[1..3].parse::<i64>().ok()? * 60 + o[4..6].parse::<i64>().ok()?;
            if o.starts_with('-') {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

impl Probe for DomainProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(self.probe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiration_event_gives_the_days_left() {
        let body = br#"{"objectClassName":"domain","ldhName":"EXAMPLE.COM","status":["client transfer prohibited"],
            "events":[{"eventAction":"registration","eventDate":"1995-08-14T04:00:00Z"},
                      {"eventAction":"expiration","eventDate":"2026-12-09T00:00:00Z"}]}"#;
        let now = rfc3339_ms("2026-11-29T00:00:00Z").unwrap();
        assert_eq!(expiry(body, now), Ok(Registration { days_left: 10.0, hold: None }));
        let held =
            br#"{"status":["client hold"],"events":[{"eventAction":"expiration","eventDate":"2027-01-01T00:00:00Z"}]}"#;
        assert_eq!(expiry(held, now).unwrap().hold.as_deref(), Some("client hold"));
        assert_eq!(expiry(br#"{"events":[]}"#, now), Err("the RDAP answer has no expiration event".into()));
    }

    /// Against jiff, the time library of the collector (a dev-dependency here).
    #[test]
    fn rfc3339_times_read_like_a_time_library_reads_them() {
        for t in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T12:34:56Z",
            "2026-11-29T00:00:00Z",
            "2027-03-01T00:00:00.250Z",
            "2026-12-09T01:00:00+01:00",
            "2026-12-08T19:30:00.5-04:30",
            "1969-12-31T23:59:59Z",
            "2100-02-28T23:59:59Z",
        ] {
            let expected = t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
            assert_eq!(rfc3339_ms(t), Some(expected), "{t}");
        }
        for bad in ["2026-11-29", "2026-13-01T00:00:00Z", "2026-11-29T00:00:00", "2026-11-29T00:00:00+0100"] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }
}
