//! CronJob schedules, read as Kubernetes reads them (robfig/cron's standard
//! parser): five fields, `@hourly`-style descriptors, names for months and
//! weekdays, and a job that runs when either day field matches if both are
//! restricted; the time zone by its IANA name from the system's database.
//! One reading, shared by validation and the CronJob controller.

use std::str::FromStr;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// A parsed schedule in its time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    zone: TimeZone,
}

/// Kubernetes' descriptors and what they stand for.
const DESCRIPTORS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl Schedule {
    /// Parses `schedule` in `time_zone` (`None`: the node's zone). The
    /// error says what is wrong, in the API server's words where it has
    /// some.
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, String> {
        let text = schedule.trim();
        if text.starts_with("TZ=") || text.starts_with("CRON_TZ=") {
            return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
        }
        let expanded = DESCRIPTORS.iter().find(|(name, _)| text.eq_ignore_ascii_case(name)).map_or(text, |(_, cron)| cron);
        if expanded.starts_with('@') {
            return Err(format!("unrecognized descriptor: {text}"));
        }
        let fields = expanded.split_whitespace().count();
        if fields != 5 {
            return Err(format!("expected exactly 5 fields, found {fields}: {text}"));
        }
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).dom_and_dow(false).sloppy_ranges(true).build();
        let cron = parser.parse(expanded).map_err(|e| format!("{e}: {text}"))?;
        let zone = match time_zone {
            Some(name) => TimeZone::get(name).map_err(|_| format!("unknown time zone {name}"))?,
            None => TimeZone::system(),
        };
        Ok(Schedule { cron, zone })
    }

    /// The last time the schedule fired at or before `at`.
    pub fn last_at_or_before(&self, at: Timestamp) -> Option<Timestamp> {
        let from: Zoned = at.to_zoned(self.zone.clone());
        self.cron.find_previous_occurrence(&from, true).ok().map(|z| z.timestamp())
    }

    /// The first time the schedule fires strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let from: Zoned = after.to_zoned(self.zone.clone());
        self.cron.find_next_occurrence(&from, false).ok().map(|z| z.timestamp())
    }
}

impl FromStr for Schedule {
    type Err = String;

    /// A schedule in UTC.
    fn from_str(text: &str) -> Result<Schedule, String> {
        Schedule::parse(text, Some("UTC"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn kubernetes_schedules_fire_when_kubernetes_fires_them() {
        let every_minute: Schedule = "* * * * *".parse().unwrap();
        assert_eq!(every_minute.next_after(at("2026-12-03T10:00:30Z")), Some(at("2026-12-03T10:01:00Z")));
        assert_eq!(every_minute.next_after(at("2026-12-03T10:01:00Z")), Some(at("2026-12-03T10:02:00Z")));
        assert_eq!(every_minute.last_at_or_before(at("2026-12-03T10:00:30Z")), Some(at("2026-12-03T10:00:00Z")));
        assert_eq!(every_minute.last_at_or_before(at("2026-12-03T10:00:00Z")), Some(at("2026-12-03T10:00:00Z")));
        let hourly: Schedule = "@hourly".parse().unwrap();
        assert_eq!(hourly.next_after(at("2026-12-03T10:00:00Z")), Some(at("2026-12-03T11:00:00Z")));
        // Sunday is 0 (and 7); names work.
        let sunday: Schedule = "30 6 * * SUN".parse().unwrap();
        assert_eq!(sunday.next_after(at("2026-12-03T10:00:00Z")), Some(at("2026-12-06T06:30:00Z")));
        let seven: Schedule = "30 6 * * 7".parse().unwrap();
        assert_eq!(seven.next_after(at("2026-12-03T10:00:00Z")), Some(at("2026-12-06T06:30:00Z")));
        // Both day fields restricted: either one matches (the 13th, or a Friday).
        let either: Schedule = "0 0 13 * 5".parse().unwrap();
        assert_eq!(either.next_after(at("2026-12-03T10:00:00Z")), Some(at("2026-12-04T00:00:00Z")));
        // A time zone: 09:00 in New York is 14:00 UTC in December.
        let ny = Schedule::parse("0 9 * * *", Some("America/New_York")).unwrap();
        assert_eq!(ny.next_after(at("2026-12-03T10:00:00Z")), Some(at("2026-12-03T14:00:00Z")));
    }

    #[test]
    fn bad_schedules_say_why() {
        assert!(Schedule::parse("*/5 * * * * *", None).unwrap_err().contains("expected exactly 5 fields"));
        assert!(Schedule::parse("TZ=UTC 0 * * * *", None).unwrap_err().contains("use timeZone field instead"));
        assert!(Schedule::parse("61 * * * *", None).is_err());
        assert!(Schedule::parse("@fortnightly", None).unwrap_err().contains("unrecognized descriptor"));
        assert_eq!(Schedule::parse("0 * * * *", Some("Mars/Olympus")).unwrap_err(), "unknown time zone Mars/Olympus");
    }
}
