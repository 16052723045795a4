//! **Pure.** Service hours: when a business-hours contract counts (weekdays 08:00–16:00 in
//! Oslo, less public holidays). Outside them downtime is neither counted nor budgeted.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use vakt_config::slo::{parse_holiday, parse_hours, weekday_index, ServiceHoursConfig};

#[derive(Clone, Debug, PartialEq)]
pub struct Hours {
    pub name: String,
    tz: TimeZone,
    /// Monday first.
    days: [bool; 7],
    /// Minutes of the local day: [start, end).
    start_min: u32,
    end_min: u32,
    /// (year or every year, month, day).
    holidays: Vec<(Option<i16>, i8, i8)>,
}

impl Hours {
    /// From a validated `[service_hours.NAME]`.
    pub fn from_config(name: &str, c: &ServiceHoursConfig) -> Hours {
        let mut days = [false; 7];
        for d in &c.days {
            if let Some(i) = weekday_index(d.get_ref()) {
                days[i] = true;
            }
        }
        let (start_min, end_min) = parse_hours(c.hours.get_ref()).unwrap_or((0, 1440));
        Hours {
            name: name.to_string(),
            tz: TimeZone::get(c.timezone.get_ref()).unwrap_or(TimeZone::UTC),
            days,
            start_min,
            end_min,
            holidays: c.holidays.iter().filter_map(|h| parse_holiday(h.get_ref())).collect(),
        }
    }

    fn counts_on(&self, d: Date) -> bool {
        let weekday = match d.weekday() {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        };
        self.days[weekday]
            && !self
                .holidays
                .iter()
                .any(|(y, m, day)| y.is_none_or(|y| y == d.year()) && *m == d.month() && *day == d.day())
    }

    /// The local time `minutes` after midnight of `d`, as Unix ms (a time that a DST change
    /// skips or repeats resolves as jiff's "compatible" rule: the later or the earlier).
    fn at(&self, d: Date, minutes: u32) -> Option<i64> {
        let t = if minutes >= 1440 {
            d.tomorrow().ok()?.to_zoned(self.tz.clone()).ok()?
        } else {
            let time = jiff::civil::time((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
            d.to_datetime(time).to_zoned(self.tz.clone()).ok()?
        };
        Some(t.timestamp().as_millisecond())
    }

    /// The counted intervals within `[from_ms, to_ms)`, in order.
    pub fn inside(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        let (Ok(a), Ok(b)) = (jiff::Timestamp::from_millisecond(from_ms), jiff::Timestamp::from_millisecond(to_ms))
        else {
            return Vec::new();
        };
        let (first, last) = (a.to_zoned(self.tz.clone()).date(), b.to_zoned(self.tz.clone()).date());
        let mut out = Vec::new();
        let mut d = first.yesterday().unwrap_or(first);
        while d <= last {
            if self.counts_on(d) {
                if let (Some(s), Some(e)) = (self.at(d, self.start_min), self.at(d, self.end_min)) {
                    let (s, e) = (s.max(from_ms), e.min(to_ms));
                    if s < e {
                        out.push((s, e));
                    }
                }
            }
            match d.tomorrow() {
                Ok(next) => d = next,
                Err(_) => break,
            }
        }
        out
    }

    /// The time not counted within `[from_ms, to_ms)`: the gaps between [`Hours::inside`].
    pub fn outside(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut t = from_ms;
        for (s, e) in self.inside(from_ms, to_ms) {
            if s > t {
                out.push((t, s));
            }
            t = e;
        }
        if t < to_ms {
            out.push((t, to_ms));
        }
        out
    }

    /// Milliseconds counted within `[from_ms, to_ms)`.
    pub fn inside_ms(&self, from_ms: i64, to_ms: i64) -> i64 {
        self.inside(from_ms, to_ms).iter().map(|(s, e)| e - s).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: i64 = 60_000;

    fn hours(holidays: &str) -> Hours {
        let text = format!(
            "[service_hours.business]\ntimezone = \"Europe/Oslo\"\nhours = \"08:00-16:00\"\nholidays = [{holidays}]\n"
        );
        let c = vakt_config::CollectorConfig::parse(&text, std::path::Path::new("collector.toml")).unwrap();
        Hours::from_config("business", &c.service_hours["business"])
    }

    fn ms(t: &str) -> i64 {
        t.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    /// The week of Monday 7 December 2026 in Oslo (CET, UTC+1), with Wednesday the 9th a
    /// one-off holiday: Monday, Tuesday, Thursday, Friday count, 08:00–16:00 each: 4 × 8 h =
    /// 1,920 minutes; Monday's hours are 07:00–15:00 UTC.
    #[test]
    fn a_business_week_with_a_holiday_counts_exactly_its_hours() {
        let h = hours("\"2026-12-09\", \"12-25\"");
        let (from, to) = (ms("2026-12-06T23:00:00Z"), ms("2026-12-13T23:00:00Z"));
        assert_eq!(h.inside_ms(from, to), 1_920 * MINUTE_MS);
        assert_eq!(h.inside(from, to)[0], (ms("2026-12-07T07:00:00Z"), ms("2026-12-07T15:00:00Z")));
        assert_eq!(h.outside(from, to).iter().map(|(a, b)| b - a).sum::<i64>(), (7 * 1440 - 1_920) * MINUTE_MS);
        // A yearly holiday: Friday 25 December 2026 does not count, nor in 2027 (a Saturday anyway).
        let christmas = (ms("2026-12-24T23:00:00Z"), ms("2026-12-25T23:00:00Z"));
        assert_eq!(h.inside_ms(christmas.0, christmas.1), 0);
        // Only part of a day: from 10:00 to 12:00 local on Monday is 2 h inside.
        assert_eq!(h.inside_ms(ms("2026-12-07T09:00:00Z"), ms("2026-12-07T11:00:00Z")), 120 * MINUTE_MS);
    }

    /// Across the autumn DST change the local hours stay 08:00–16:00: Monday 26 October 2026
    /// (CET, the day after the change) runs 07:00–15:00 UTC, Friday 23 October (CEST)
    /// 06:00–14:00 UTC.
    #[test]
    fn local_hours_follow_daylight_saving_time() {
        let h = hours("");
        assert_eq!(
            h.inside(ms("2026-10-23T00:00:00Z"), ms("2026-10-24T00:00:00Z")),
            vec![(ms("2026-10-23T06:00:00Z"), ms("2026-10-23T14:00:00Z"))]
        );
        assert_eq!(
            h.inside(ms("2026-10-26T00:00:00Z"), ms("2026-10-27T00:00:00Z")),
            vec![(ms("2026-10-26T07:00:00Z"), ms("2026-10-26T15:00:00Z"))]
        );
    }
}
