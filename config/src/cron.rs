//! Cron schedules (the five fields of crontab(5): minute, hour, day of month, month, day of
//! week) in a time zone, for heartbeat checks: when was a job's run due. Numbers, `*`, lists,
//! ranges, steps (`*/15`, `1-5/2`) and English names (`MON`, `JAN`); day 0 and 7 are Sunday.
//! When both day fields are restricted a day matches either (as cron does).
//!
//! Times are the zone's wall-clock times: a run at a time the zone skips (a spring-forward gap)
//! is due at the same wall time after the shift (e.g. 02:30 on the day clocks jump from 02:00
//! to 03:00 is due at 03:30); a time the zone repeats (autumn) is due at its first occurrence.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

/// A parsed schedule: for each field, the values it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: Vec<u8>,
    hours: Vec<u8>,
    days: Vec<u8>,
    months: Vec<u8>,
    weekdays: Vec<u8>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(s: &str, names: &[&str], first: u8) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return Some(n);
    }
    let upper = s.to_ascii_uppercase();
    names.iter().position(|n| *n == upper).map(|i| i as u8 + first)
}

/// One field: the sorted values in `min..=max` it allows.
fn field(text: &str, what: &str, min: u8, max: u8, names: &[&str], names_from: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u8 = s.parse().map_err(|_| format!("{what}: step {s:?} is not a number"))?;
                if step == 0 {
                    return Err(format!("{what}: a step of 0"));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = value(a, names, names_from).ok_or_else(|| format!("{what}: {a:?} is not a value"))?;
            let b = value(b, names, names_from).ok_or_else(|| format!("{what}: {b:?} is not a value"))?;
            (a, b)
        } else {
            let v = value(range, names, names_from).ok_or_else(|| format!("{what}: {range:?} is not a value"))?;
            // "5/15" means from 5 to the end in steps of 15.
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{what}: {range:?} is outside {min}-{max}"));
        }
        out.extend((lo..=hi).step_by(usize::from(step)));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

impl Schedule {
    /// Parses `"0 2 * * *"`; the error says which field is wrong and why.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "{text:?} has {} fields; a schedule has five: minute hour day-of-month month day-of-week",
                fields.len()
            ));
        };
        let mut weekdays = field(weekday, "day of week", 0, 7, &WEEKDAYS, 0)?;
        if weekdays.contains(&7) {
            weekdays.retain(|d| *d != 7);
            if !weekdays.contains(&0) {
                weekdays.insert(0, 0);
            }
        }
        Ok(Schedule {
            minutes: field(minute, "minute", 0, 59, &[], 0)?,
            hours: field(hour, "hour", 0, 23, &[], 0)?,
            days: field(day, "day of month", 1, 31, &[], 0)?,
            months: field(month, "month", 1, 12, &MONTHS, 1)?,
            weekdays,
            days_restricted: !day.starts_with('*'),
            weekdays_restricted: !weekday.starts_with('*'),
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        if !self.months.contains(&(d.month() as u8)) {
            return false;
        }
        let weekday = match d.weekday() {
            Weekday::Sunday => 0,
            w => w.to_monday_one_offset() as u8,
        };
        let by_day = self.days.contains(&(d.day() as u8));
        let by_weekday = self.weekdays.contains(&weekday);
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_day || by_weekday,
            (true, false) => by_day,
            (false, true) => by_weekday,
            (false, false) => true,
        }
    }

    /// The first time after `after_ms` (Unix ms) a run is due in `tz`; `None` when the schedule
    /// names no time in the next five years (e.g. the 31st of February).
    pub fn next_after(&self, after_ms: i64, tz: &TimeZone) -> Option<i64> {
        let after = jiff::Timestamp::from_millisecond(after_ms).ok()?;
        let start = after.to_zoned(tz.clone()).date();
        // A day before, for a run whose wall time a shift moved past midnight (rare; harmless).
        let mut day = start.yesterday().ok()?;
        for _ in 0..(5 * 366 + 2) {
            if self.day_matches(day) {
                for &h in &self.hours {
                    for &m in &self.minutes {
                        let Ok(at) = day.at(h as i8, m as i8, 0, 0).to_zoned(tz.clone()) else { continue };
                        let ms = at.timestamp().as_millisecond();
                        if ms > after_ms {
                            return Some(ms);
                        }
                    }
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn oslo() -> TimeZone {
        TimeZone::get("Europe/Oslo").unwrap()
    }

    #[test]
    fn fields_take_lists_ranges_steps_and_names() {
        let s = Schedule::parse("*/15 9-17 * JAN,jul MON-FRI").unwrap();
        assert_eq!(s.minutes, [0, 15, 30, 45]);
        assert_eq!(s.hours, (9..=17).collect::<Vec<u8>>());
        assert_eq!(s.months, [1, 7]);
        assert_eq!(s.weekdays, [1, 2, 3, 4, 5]);
        assert_eq!(Schedule::parse("5/20 0 * * 7").unwrap().minutes, [5, 25, 45]);
        assert_eq!(Schedule::parse("0 0 * * 7").unwrap().weekdays, [0], "7 is Sunday");
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        assert!(Schedule::parse("0 2 * *").unwrap_err().contains("has 4 fields"));
        assert!(Schedule::parse("60 2 * * *").unwrap_err().contains("minute: \"60\" is outside 0-59"));
        assert!(Schedule::parse("0 2 * * FUN").unwrap_err().contains("day of week: \"FUN\" is not a value"));
        assert!(Schedule::parse("*/0 2 * * *").unwrap_err().contains("a step of 0"));
    }

    /// 02:00 Oslo is 01:00 UTC in winter (CET) and 00:00 UTC in summer (CEST).
    #[test]
    fn daily_runs_follow_the_zone_across_its_shifts() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        assert_eq!(s.next_after(ms("2026-11-29T12:00:00Z"), &oslo()), Some(ms("2026-11-30T01:00:00Z")));
        assert_eq!(s.next_after(ms("2026-07-01T12:00:00Z"), &oslo()), Some(ms("2026-07-02T00:00:00Z")));
        // Exactly at a due time: the next one, a day later.
        assert_eq!(s.next_after(ms("2026-11-30T01:00:00Z"), &oslo()), Some(ms("2026-12-01T01:00:00Z")));
    }

    /// 2026-03-29: Oslo's clocks go from 02:00 to 03:00, so 02:30 does not exist that day;
    /// the run is due at 03:30 CEST = 01:30 UTC. 2026-10-25: 02:30 happens twice (CEST, then
    /// CET); the run is due at the first, 00:30 UTC.
    #[test]
    fn a_skipped_time_is_due_after_the_shift_and_a_repeated_one_once() {
        let s = Schedule::parse("30 2 * * *").unwrap();
        assert_eq!(s.next_after(ms("2026-03-28T12:00:00Z"), &oslo()), Some(ms("2026-03-29T01:30:00Z")));
        assert_eq!(s.next_after(ms("2026-10-24T12:00:00Z"), &oslo()), Some(ms("2026-10-25T00:30:00Z")));
        assert_eq!(s.next_after(ms("2026-10-25T00:30:00Z"), &oslo()), Some(ms("2026-10-26T01:30:00Z")));
    }

    #[test]
    fn either_day_field_matches_when_both_are_given() {
        // The 1st of the month or any Monday: after Tue 2026-12-01 00:00 UTC, Mon 2026-12-07.
        let s = Schedule::parse("0 0 1 * MON").unwrap();
        let utc = TimeZone::UTC;
        assert_eq!(s.next_after(ms("2026-11-30T12:00:00Z"), &utc), Some(ms("2026-12-01T00:00:00Z")));
        assert_eq!(s.next_after(ms("2026-12-01T00:00:00Z"), &utc), Some(ms("2026-12-07T00:00:00Z")));
        assert_eq!(Schedule::parse("0 0 31 2 *").unwrap().next_after(0, &utc), None, "no 31st of February");
    }
}
