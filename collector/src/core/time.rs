//! Time as the collector passes it around: Unix milliseconds, shown as RFC 3339.

/// Current wall-clock time in Unix ms. Only the edges call this; the core takes `now` as input.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// A duration as config and metric labels write it: "1h2m3s" (people read `human_span`).
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

/// How pages show time: in the display time zone, relative to `now_ms` where that helps. The
/// API keeps RFC 3339 UTC; a page keeps the exact UTC instant beside (on hover).
#[derive(Clone, Debug)]
pub struct Shown {
    pub tz: jiff::tz::TimeZone,
    pub now_ms: i64,
}

impl Shown {
    /// "2026-11-29 08:56 CET": minutes, the zone's abbreviation.
    pub fn local(&self, ms: i64) -> String {
        match jiff::Timestamp::from_millisecond(ms) {
            Ok(t) => t.to_zoned(self.tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string(),
            Err(_) => ms.to_string(),
        }
    }

    /// "12 min ago", "in 3 h 20 min", "just now".
    pub fn relative(&self, ms: i64) -> String {
        let d = self.now_ms - ms;
        if d.abs() < 30_000 {
            "just now".into()
        } else if d > 0 {
            format!("{} ago", human_span(d))
        } else {
            format!("in {}", human_span(-d))
        }
    }
}

/// A duration in the two largest units people use: "3 h 20 min", "12 min", "45 s", "2 d 4 h",
/// "250 ms".
pub fn human_span(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let s = ms / 1000;
    let units = [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = s;
    for (size, name) in units {
        if rest >= size {
            parts.push(format!("{} {name}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // "2 d 0 h" says less than "2 d": skip, but stop after the next unit down.
            parts.push(String::new());
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// The display time zone: the configured one, else the system's, else UTC.
pub fn display_zone(configured: Option<&str>) -> jiff::tz::TimeZone {
    configured
        .and_then(|name| jiff::tz::TimeZone::get(name).ok())
        .or_else(|| jiff::tz::TimeZone::try_system().ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_the_two_largest_units() {
        assert_eq!(human_span(250), "250 ms");
        assert_eq!(human_span(45_000), "45 s");
        assert_eq!(human_span(12 * 60_000 + 5_000), "12 min 5 s");
        assert_eq!(human_span((3 * 60 + 20) * 60_000 + 59_000), "3 h 20 min");
        assert_eq!(human_span(2 * 86_400_000 + 4 * 3_600_000 + 59 * 60_000), "2 d 4 h");
        assert_eq!(human_span(2 * 86_400_000 + 30 * 60_000), "2 d");
        assert_eq!(human_span(3_600_000), "1 h");
    }

    /// 07:56 UTC on 29 November is 08:56 in Oslo (CET, UTC+1); in July 07:56 UTC is 09:56
    /// CEST.
    #[test]
    fn times_show_in_the_display_zone_and_relative_to_now() {
        let ms = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let shown = Shown { tz: jiff::tz::TimeZone::get("Europe/Oslo").unwrap(), now_ms: ms("2026-11-29T08:08:09Z") };
        assert_eq!(shown.local(ms("2026-11-29T07:56:09.781Z")), "2026-11-29 08:56 CET");
        assert_eq!(shown.local(ms("2026-07-01T07:56:00Z")), "2026-07-01 09:56 CEST");
        assert_eq!(shown.relative(ms("2026-11-29T07:56:09Z")), "12 min ago");
        assert_eq!(shown.relative(ms("2026-11-29T08:08:00Z")), "just now");
        assert_eq!(shown.relative(ms("2026-11-29T11:28:09Z")), "in 3 h 20 min");
    }
}
