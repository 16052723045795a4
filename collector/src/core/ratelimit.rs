//! Per-agent rate limits: a token bucket per agent, refilled at `rate` per second up to `burst`.
//! A push beyond it is answered 429 with `Retry-After`, which the agent honours. Pure but for
//! the lock: time comes in as an argument.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last_ms: i64,
}

impl TokenBucket {
    pub fn full(burst: f64, now_ms: i64) -> Self {
        TokenBucket { tokens: burst, last_ms: now_ms }
    }

    /// Takes one token at `now_ms`, or says in how many ms one will be there.
    pub fn take(&mut self, rate: f64, burst: f64, now_ms: i64) -> Result<(), i64> {
        // A clock that steps back refills nothing and takes nothing away.
        let elapsed = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last_ms = self.last_ms.max(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / rate) * 1000.0).ceil() as i64)
        }
    }
}

/// One bucket per agent. Agents are the configured ones, so the map is bounded.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl RateLimiter {
    /// `rate` pushes per second, `burst` at once; a rate of 0 turns limiting off.
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter { rate, burst: burst.max(1.0), buckets: Mutex::default() }
    }

    /// Admits a push by `agent` at `now_ms`, or answers how long to wait (ms).
    pub fn admit(&self, agent: &str, now_ms: i64) -> Result<(), i64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .entry(agent.to_string())
            .or_insert_with(|| TokenBucket::full(self.burst, now_ms))
            .take(self.rate, self.burst, now_ms)
    }
}

/// Requests from the public (subscribing to status updates) admitted per hour: per client
/// address and from all together.
#[derive(Default)]
pub struct HourlyLimits {
    buckets: Mutex<HashMap<Option<std::net::IpAddr>, TokenBucket>>,
}

impl HourlyLimits {
    pub fn admit(&self, addr: Option<std::net::IpAddr>, per_address: u32, total: u32, now_ms: i64) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > 10_000 {
            b.clear(); // bounded: a scan of many addresses cannot grow it for ever
        }
        let rate = |n: u32| f64::from(n) / 3600.0;
        let one = b.entry(addr).or_insert_with(|| TokenBucket::full(f64::from(per_address), now_ms)).take(
            rate(per_address),
            f64::from(per_address),
            now_ms,
        );
        if one.is_err() {
            return false;
        }
        b.entry(None)
            .or_insert_with(|| TokenBucket::full(f64::from(total), now_ms))
            .take(rate(total), f64::from(total), now_ms)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(2.0, 4.0);
        for _ in 0..4 {
            assert_eq!(limiter.admit("a", 0), Ok(()));
        }
        assert_eq!(limiter.admit("a", 0), Err(500), "the fifth waits for the next token: 1/2 s");
        assert_eq!(limiter.admit("b", 0), Ok(()), "each agent has its own bucket");
        assert!(matches!(limiter.admit("a", 499), Err(1..=2)), "almost there");
        assert_eq!(limiter.admit("a", 500), Ok(()));
        assert_eq!(limiter.admit("a", 10_000), Ok(()), "refilled, never beyond the burst");
        for _ in 0..3 {
            assert_eq!(limiter.admit("a", 10_000), Ok(()));
        }
        assert!(limiter.admit("a", 10_000).is_err());
    }

    #[test]
    fn a_clock_stepping_back_neither_refills_nor_blocks_forever() {
        let limiter = RateLimiter::new(1.0, 1.0);
        assert_eq!(limiter.admit("a", 10_000), Ok(()));
        assert_eq!(limiter.admit("a", 5_000), Err(1000));
        assert_eq!(limiter.admit("a", 11_000), Ok(()));
    }

    #[test]
    fn zero_rate_means_no_limit() {
        let limiter = RateLimiter::new(0.0, 0.0);
        for _ in 0..1000 {
            assert_eq!(limiter.admit("a", 0), Ok(()));
        }
    }

    #[test]
    fn a_flood_from_one_address_and_from_all_is_refused() {
        let limits = HourlyLimits::default();
        let a = Some("127.0.0.1".parse().unwrap());
        let b = Some("127.0.0.2".parse().unwrap());
        assert!((0..5).all(|_| limits.admit(a, 5, 8, 0)), "five an hour from one address");
        assert!(!limits.admit(a, 5, 8, 0), "the sixth is refused");
        assert!((0..3).all(|_| limits.admit(b, 5, 8, 0)));
        assert!(!limits.admit(b, 5, 8, 0), "eight in all: the ninth is refused");
        assert!(limits.admit(a, 5, 8, 3_600_000), "an hour later there is room again");
    }
}
