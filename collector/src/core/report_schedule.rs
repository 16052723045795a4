//! When scheduled SLA reports are due and which period each one reports: e.g. every month on
//! the 1st at 08:00 Europe/Oslo, the month before. Pure: the schedule and `now` in, the latest
//! due run out. A run missed while the collector was down is still due when it comes back,
//! within a catch-up span; the outbox sends each run once.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::ToSpan;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// On this weekday; reports the ISO week before.
    Week(Weekday),
    /// On this day of the month (1–28); reports the month before.
    Month(i8),
    /// On this day of the quarter's first month; reports the quarter before.
    Quarter(i8),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub every: Every,
    pub hour: i8,
    pub minute: i8,
    pub tz: TimeZone,
}

/// A run: when it was due, and the period it reports ("2026-11", "2026-Q3", "2026-W47").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub due_ms: i64,
    pub period: String,
}

impl Schedule {
    /// Parses `every` ("week", "month", "quarter"), `day` (a weekday name for weeks, default
    /// monday; a day 1–28 otherwise, default 1) and `at` ("08:00").
    pub fn parse(every: &str, day: Option<&str>, at: &str, tz: TimeZone) -> Result<Schedule, String> {
        let (h, m) = at.split_once(':').ok_or_else(|| format!("at {at:?} is not HH:MM"))?;
        let hour: i8 = h.parse().ok().filter(|h| (0..24).contains(h)).ok_or_else(|| format!("at {at:?}: hour"))?;
        let minute: i8 = m.parse().ok().filter(|m| (0..60).contains(m)).ok_or_else(|| format!("at {at:?}: minute"))?;
        let day_of_month = |d: Option<&str>| -> Result<i8, String> {
            match d {
                None => Ok(1),
                Some(d) => d
                    .parse::<i8>()
                    .ok()
                    .filter(|d| (1..=28).contains(d))
                    .ok_or_else(|| format!("day {d:?} is not 1 to 28 (every month has it)")),
            }
        };
        let every = match every {
            "week" => Every::Week(match day.unwrap_or("monday").to_ascii_lowercase().as_str() {
                "monday" => Weekday::Monday,
                "tuesday" => Weekday::Tuesday,
                "wednesday" => Weekday::Wednesday,
                "thursday" => Weekday::Thursday,
                "friday" => Weekday::Friday,
                "saturday" => Weekday::Saturday,
                "sunday" => Weekday::Sunday,
                other => return Err(format!("day {other:?} is not a weekday name")),
            }),
            "month" => Every::Month(day_of_month(day)?),
            "quarter" => Every::Quarter(day_of_month(day)?),
            other => return Err(format!("every {other:?} is not week, month or quarter")),
        };
        Ok(Schedule { every, hour, minute, tz })
    }

    /// How late a missed run may still be sent: a day for weekly reports, a week otherwise.
    pub fn catch_up_ms(&self) -> i64 {
        match self.every {
            Every::Week(_) => 86_400_000,
            _ => 7 * 86_400_000,
        }
    }

    fn at(&self, d: Date) -> Option<i64> {
        d.at(self.hour, self.minute, 0, 0).to_zoned(self.tz.clone()).ok().map(|z| z.timestamp().as_millisecond())
    }

    /// The run due in the period that contains local date `d` (not necessarily before now).
    fn run_in(&self, d: Date) -> Option<Run> {
        match self.every {
            Every::Week(w) => {
                let monday = d.checked_sub((d.weekday().to_monday_zero_offset() as i64).days()).ok()?;
                let day = monday.checked_add((w.to_monday_zero_offset() as i64).days()).ok()?;
                let prev = monday.checked_sub(7.days()).ok()?;
                let iso = prev.iso_week_date();
                Some(Run { due_ms: self.at(day)?, period: format!("{}-W{:02}", iso.year(), iso.week()) })
            }
            Every::Month(n) => {
                let day = d.first_of_month().checked_add(((n - 1) as i64).days()).ok()?;
                let prev = d.first_of_month().checked_sub(1.month()).ok()?;
                Some(Run { due_ms: self.at(day)?, period: format!("{}-{:02}", prev.year(), prev.month()) })
            }
            Every::Quarter(n) => {
                let q = (d.month() - 1) / 3;
                let first = jiff::civil::date(d.year(), q * 3 + 1, 1);
                let day = first.checked_add(((n - 1) as i64).days()).ok()?;
                let prev = first.checked_sub(3.months()).ok()?;
                Some(Run { due_ms: self.at(day)?, period: format!("{}-Q{}", prev.year(), (prev.month() - 1) / 3 + 1) })
            }
        }
    }

    /// The latest run due at or before `now_ms`.
    pub fn latest(&self, now_ms: i64) -> Option<Run> {
        let today = jiff::Timestamp::from_millisecond(now_ms).ok()?.to_zoned(self.tz.clone()).date();
        let this = self.run_in(today)?;
        if this.due_ms <= now_ms {
            return Some(this);
        }
        let back = match self.every {
            Every::Week(_) => today.checked_sub(7.days()).ok()?,
            Every::Month(_) => today.checked_sub(1.month()).ok()?,
            Every::Quarter(_) => today.checked_sub(3.months()).ok()?,
        };
        self.run_in(back)
    }

    /// The run to send at `now_ms`: the latest due, unless it is older than the catch-up span.
    pub fn due(&self, now_ms: i64) -> Option<Run> {
        self.latest(now_ms).filter(|r| now_ms - r.due_ms <= self.catch_up_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn oslo(every: &str, day: Option<&str>) -> Schedule {
        Schedule::parse(every, day, "08:00", TimeZone::get("Europe/Oslo").unwrap()).unwrap()
    }

    #[test]
    fn a_monthly_report_is_due_on_the_first_at_eight_local_for_the_month_before() {
        let s = oslo("month", None);
        // 1 December 2026 08:00 in Oslo is 07:00 UTC (CET, UTC+1).
        assert_eq!(s.latest(ms("2026-12-01T06:59:59.999Z")).unwrap().period, "2026-10", "a millisecond early");
        let run = s.latest(ms("2026-12-01T07:00:00Z")).unwrap();
        assert_eq!(run, Run { due_ms: ms("2026-12-01T07:00:00Z"), period: "2026-11".into() });
        // 1 October 2026 08:00 is 06:00 UTC (CEST, UTC+2).
        assert_eq!(s.latest(ms("2026-10-01T06:00:00Z")).unwrap().due_ms, ms("2026-10-01T06:00:00Z"));
        // January reports December of the year before.
        assert_eq!(s.latest(ms("2027-01-01T07:00:00Z")).unwrap().period, "2026-12");
    }

    #[test]
    fn a_missed_run_is_still_due_within_the_catch_up_span() {
        let s = oslo("month", None);
        let due = ms("2026-12-01T07:00:00Z");
        assert_eq!(s.due(due + 3 * 86_400_000).unwrap().period, "2026-11", "three days down: still sent");
        assert_eq!(s.due(due + 7 * 86_400_000 + 1), None, "more than a week late: skipped");
    }

    #[test]
    fn quarterly_and_weekly_reports_name_their_period() {
        let q = oslo("quarter", Some("2"));
        // 2 January 2027 08:00 CET = 07:00 UTC: the quarter before is 2026-Q4.
        assert_eq!(q.latest(ms("2027-01-02T07:00:00Z")).unwrap().period, "2026-Q4");
        assert_eq!(q.latest(ms("2027-01-02T06:59:00Z")).unwrap().period, "2026-Q3");
        let w = oslo("week", Some("monday"));
        // Monday 30 November 2026 08:00 CET: the ISO week before is 2026-W48 (23–29 Nov).
        let run = w.latest(ms("2026-11-30T07:00:00Z")).unwrap();
        assert_eq!(run, Run { due_ms: ms("2026-11-30T07:00:00Z"), period: "2026-W48".into() });
        assert_eq!(w.latest(ms("2026-11-30T06:00:00Z")).unwrap().period, "2026-W47");
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let tz = TimeZone::UTC;
        assert!(Schedule::parse("month", Some("31"), "08:00", tz.clone()).unwrap_err().contains("1 to 28"));
        assert!(Schedule::parse("daily", None, "08:00", tz.clone()).unwrap_err().contains("week, month or quarter"));
        assert!(Schedule::parse("week", Some("funday"), "08:00", tz.clone()).is_err());
        assert!(Schedule::parse("month", None, "25:00", tz).is_err());
    }
}
