//! The `date` filter: Django's format characters (`"N j, Y"`, `"Y-m-d H:i"`),
//! or strftime when the format contains `%` (`"%Y-%m-%d"`).
//!
//! A value is read as RFC 3339 / ISO 8601 text (what a `chrono` date
//! serializes to: `2026-11-26T09:05:00Z`, `2026-11-26 09:05:00`,
//! `2026-11-26`) or as a Unix timestamp in seconds (UTC).

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

/// Django's `DATE_FORMAT` default: `Nov. 26, 2026`.
pub(crate) const DEFAULT_FORMAT: &str = "N j, Y";

/// A point in time, with its offset when it has one.
pub(crate) enum Moment {
    Aware(DateTime<FixedOffset>),
    Naive(NaiveDateTime),
}

impl Moment {
    /// Reads text or a timestamp; `None` when it is neither.
    pub(crate) fn parse(value: &minijinja::Value) -> Option<Self> {
        if let Some(text) = value.as_str() {
            let text = text.trim();
            if let Ok(aware) = DateTime::parse_from_rfc3339(text) {
                return Some(Self::Aware(aware));
            }
            for format in [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M",
            ] {
                if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                    return Some(Self::Naive(naive));
                }
            }
            if let Ok(with_offset) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f %z") {
                return Some(Self::Aware(with_offset));
            }
            return NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
                .map(Self::Naive);
        }
        let seconds = value.as_i64()?;
        let utc = Utc.timestamp_opt(seconds, 0).single()?;
        Some(Self::Aware(utc.fixed_offset()))
    }

    fn naive(&self) -> NaiveDateTime {
        match self {
            Self::Aware(aware) => aware.naive_local(),
            Self::Naive(naive) => *naive,
        }
    }

    fn offset_seconds(&self) -> Option<i32> {
        match self {
            Self::Aware(aware) => Some(aware.offset().local_minus_utc()),
            Self::Naive(_) => None,
        }
    }

    /// Formats with Django's characters, or strftime when `format` has a `%`.
    pub(crate) fn format(&self, format: &str) -> String {
        if format.contains('%') {
            let mut out = String::new();
            let result = match self {
                Self::Aware(aware) => write!(out, "{}", aware.format(format)),
                Self::Naive(naive) => write!(out, "{}", naive.format(format)),
            };
            // chrono reports a bad specifier by failing the write.
            return if result.is_ok() { out } else { String::new() };
        }
        self.django(format)
    }

    fn django(&self, format: &str) -> String {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        const AP_MONTHS: [&str; 12] = [
            "Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct.",
            "Nov.", "Dec.",
        ];
        const DAYS: [&str; 7] = [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ];
        let t = self.naive();
        let month = t.month0() as usize;
        let weekday = t.weekday().num_days_from_monday() as usize;
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        let offset = self.offset_seconds();
        let offset_text = |colon: bool| match offset {
            Some(seconds) => {
                let sign = if seconds < 0 { '-' } else { '+' };
                let minutes = seconds.abs() / 60;
                let sep = if colon { ":" } else { "" };
                format!("{sign}{:02}{sep}{:02}", minutes / 60, minutes % 60)
            }
            None => String::new(),
        };
        let mut out = String::with_capacity(format.len() * 3);
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            let _ = match c {
                '\\' => {
                    if let Some(escaped) = chars.next() {
                        out.push(escaped);
                    }
                    Ok(())
                }
                'a' => write!(out, "{}", if t.hour() < 12 { "a.m." } else { "p.m." }),
                'A' => write!(out, "{}", if t.hour() < 12 { "AM" } else { "PM" }),
                'b' => write!(out, "{}", MONTHS[month][..3].to_lowercase()),
                'c' => write!(
                    out,
                    "{}{}",
                    t.format("%Y-%m-%dT%H:%M:%S%.f"),
                    offset_text(true)
                ),
                'd' => write!(out, "{:02}", t.day()),
                'D' => write!(out, "{}", &DAYS[weekday][..3]),
                'e' | 'T' => write!(out, "{}", offset_text(false)),
                'E' | 'F' => write!(out, "{}", MONTHS[month]),
                'f' => match t.minute() {
                    0 => write!(out, "{hour12}"),
                    m => write!(out, "{hour12}:{m:02}"),
                },
                'g' => write!(out, "{hour12}"),
                'G' => write!(out, "{}", t.hour()),
                'h' => write!(out, "{hour12:02}"),
                'H' => write!(out, "{:02}", t.hour()),
                'i' => write!(out, "{:02}", t.minute()),
                'j' => write!(out, "{}", t.day()),
                'l' => write!(out, "{}", DAYS[weekday]),
                'L' => write!(
                    out,
                    "{}",
                    if t.date().leap_year() {
                        "True"
                    } else {
                        "False"
                    }
                ),
                'm' => write!(out, "{:02}", t.month()),
                'M' => write!(out, "{}", &MONTHS[month][..3]),
                'n' => write!(out, "{}", t.month()),
                'N' => write!(out, "{}", AP_MONTHS[month]),
                'o' => write!(out, "{}", t.iso_week().year()),
                'O' => write!(out, "{}", offset_text(false)),
                'P' => match (t.hour(), t.minute()) {
                    (0, 0) => write!(out, "midnight"),
                    (12, 0) => write!(out, "noon"),
                    (h, m) => {
                        let half = if h < 12 { "a.m." } else { "p.m." };
                        if m == 0 {
                            write!(out, "{hour12} {half}")
                        } else {
                            write!(out, "{hour12}:{m:02} {half}")
                        }
                    }
                },
                'r' => write!(
                    out,
                    "{}, {:02} {} {} {}{}",
                    &DAYS[weekday][..3],
                    t.day(),
                    &MONTHS[month][..3],
                    t.year(),
                    t.format("%H:%M:%S"),
                    match offset {
                        Some(_) => format!(" {}", offset_text(false)),
                        None => String::new(),
                    }
                ),
                's' => write!(out, "{:02}", t.second()),
                'S' => write!(out, "{}", ordinal_suffix(t.day())),
                't' => write!(out, "{}", days_in_month(t.year(), t.month())),
                'u' => write!(out, "{:06}", t.nanosecond() / 1000 % 1_000_000),
                'U' => write!(
                    out,
                    "{}",
                    match self {
                        Self::Aware(aware) => aware.timestamp(),
                        Self::Naive(naive) => naive.and_utc().timestamp(),
                    }
                ),
                'w' => write!(out, "{}", t.weekday().num_days_from_sunday()),
                'W' => write!(out, "{}", t.iso_week().week()),
                'y' => write!(out, "{:02}", t.year() % 100),
                'Y' => write!(out, "{}", t.year()),
                'z' => write!(out, "{}", t.ordinal()),
                'Z' => write!(out, "{}", offset.unwrap_or(0)),
                other => {
                    out.push(other);
                    Ok(())
                }
            };
        }
        out
    }
}

/// `st`, `nd`, `rd` or `th`, as Django's `S`.
fn ordinal_suffix(day: u32) -> &'static str {
    match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)
        .and_then(|first| first.pred_opt())
        .map_or(31, |last| last.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Value;

    fn format(value: &str, format: &str) -> String {
        Moment::parse(&Value::from(value)).unwrap().format(format)
    }

    #[test]
    fn django_format_characters() {
        let when = "2026-11-03T09:05:07Z";
        assert_eq!(format(when, DEFAULT_FORMAT), "Nov. 3, 2026");
        assert_eq!(format(when, "Y-m-d H:i:s"), "2026-11-03 09:05:07");
        assert_eq!(format(when, "D, jS F y"), "Tue, 3rd November 26");
        assert_eq!(format(when, "l g:i A"), "Tuesday 9:05 AM");
        assert_eq!(format(when, "P"), "9:05 a.m.");
        assert_eq!(format("2026-11-03T12:00:00Z", "P"), "noon");
        assert_eq!(format(when, "O \\Y\\e\\s"), "+0000 Yes");
        assert_eq!(format(when, "t z"), "30 307");
        assert_eq!(format(when, "r"), "Tue, 03 Nov 2026 09:05:07 +0000");
    }

    #[test]
    fn strftime_when_the_format_has_a_percent_sign() {
        assert_eq!(
            format("2026-11-03 09:05:07", "%d/%m/%Y %H:%M"),
            "03/11/2026 09:05"
        );
    }

    #[test]
    fn reads_dates_timestamps_and_offsets() {
        assert_eq!(format("2026-02-01", "Y-m-d H:i"), "2026-02-01 00:00");
        assert_eq!(format("2026-02-01T10:00:00+02:00", "H:i O"), "10:00 +0200");
        let timestamp = Moment::parse(&Value::from(0)).unwrap();
        assert_eq!(timestamp.format("Y-m-d"), "1970-01-01");
        assert!(Moment::parse(&Value::from("yesterday")).is_none());
    }
}
