//! Time as the collector passes it around: Unix milliseconds, shown as RFC 3339.

/// Current wall-clock time in Unix ms. Only the edges call this; the core takes `now` as input.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Seconds, for human messages: "1h2m3s".
pub fn human_duration_ms(ms: i64) -> String {
    vakt_config::duration::format_duration(std::time::Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0)))
}

/// Where evaluation gets "now" from: the system clock in production, a fixed or stepped one in
/// tests.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}
