//! An inbox's business hours: weekly opening times on the wall clock of
//! one IANA zone (so daylight saving moves the instants, never the
//! hours), and holidays on which the inbox stays closed.
//!
//! Everything here is a pure function of a time given by the caller,
//! which is how tests drive it across a DST change, midnight and a
//! holiday without waiting for any of them.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use super::time::{Micros, Zone};
use super::Invalid;

/// The contract's day keys, Monday first (chrono's `num_days_from_monday`).
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One opening on a day: from `open` to `close`, minutes after local
/// midnight. `close` may be 1440 (midnight), or less than `open`: the
/// opening then runs past midnight into the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Minutes after midnight it opens.
    pub open: u16,
    /// Minutes after midnight it closes.
    pub close: u16,
}

impl Span {
    fn crosses_midnight(self) -> bool {
        self.close < self.open
    }
}

/// Weekly hours in a zone, and holidays (an opening that starts on a
/// holiday does not happen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// IANA zone name.
    pub timezone: String,
    /// Openings per day, Monday first.
    pub week: [Vec<Span>; 7],
    /// Closed days (local dates).
    pub holidays: Vec<NaiveDate>,
}

fn minutes(raw: &str) -> Option<u16> {
    if raw == "24:00" {
        return Some(1440);
    }
    let t = NaiveTime::parse_from_str(raw, "%H:%M").ok()?;
    use chrono::Timelike;
    Some((t.hour() * 60 + t.minute()) as u16)
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl BusinessHours {
    /// Reads the contract's shape: `{"timezone","week":{"mon":[["09:00",
    /// "17:30"]],...},"holidays":["2026-12-25"]}`; days left out are
    /// closed. Refuses an unknown zone or day, a time that is not `HH:MM`,
    /// an empty opening, and openings of one day that overlap.
    pub fn parse(v: &serde_json::Value) -> Result<Self, Invalid> {
        let bad = |m: String| Invalid::new("business_hours", m);
        let obj = v
            .as_object()
            .ok_or_else(|| bad("business_hours must be an object".into()))?;
        let zone = obj
            .get("timezone")
            .and_then(|z| z.as_str())
            .ok_or_else(|| bad("business_hours.timezone is required".into()))?;
        let zone = Zone::parse(zone).map_err(|_| {
            bad(format!(
                "{zone:?} is not a time zone name such as Europe/Berlin"
            ))
        })?;
        let mut week: [Vec<Span>; 7] = Default::default();
        if let Some(w) = obj.get("week") {
            let w = w
                .as_object()
                .ok_or_else(|| bad("business_hours.week must be an object of days".into()))?;
            for (day, spans) in w {
                let i = DAYS
                    .iter()
                    .position(|d| d == day)
                    .ok_or_else(|| bad(format!("{day:?} is not a day (mon ... sun)")))?;
                let spans = spans
                    .as_array()
                    .ok_or_else(|| bad(format!("{day} must be a list of [\"HH:MM\",\"HH:MM\"]")))?;
                for s in spans {
                    let pair = s.as_array().filter(|p| p.len() == 2).ok_or_else(|| {
                        bad(format!("{day}: each opening is [\"HH:MM\",\"HH:MM\"]"))
                    })?;
                    let at = |k: usize| {
                        pair[k]
                            .as_str()
                            .and_then(minutes)
                            .ok_or_else(|| bad(format!("{day}: {} is not a time HH:MM", pair[k])))
                    };
                    let span = Span {
                        open: at(0)?,
                        close: at(1)?,
                    };
                    if span.open == span.close || span.open == 1440 {
                        return Err(bad(format!("{day}: an opening must not be empty")));
                    }
                    week[i].push(span);
                }
                week[i].sort_by_key(|s| s.open);
                for pair in week[i].windows(2) {
                    let end = if pair[0].crosses_midnight() {
                        1440
                    } else {
                        pair[0].close
                    };
                    if pair[1].open < end {
                        return Err(bad(format!("{day}: openings overlap")));
                    }
                }
            }
        }
        let mut holidays = Vec::new();
        if let Some(h) = obj.get("holidays") {
            for d in h
                .as_array()
                .ok_or_else(|| bad("business_hours.holidays must be a list of dates".into()))?
            {
                let date = d
                    .as_str()
                    .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                    .ok_or_else(|| bad(format!("{d} is not a date YYYY-MM-DD")))?;
                holidays.push(date);
            }
        }
        holidays.sort_unstable();
        holidays.dedup();
        Ok(Self {
            timezone: zone.name().to_owned(),
            week,
            holidays,
        })
    }

    /// The contract's shape, as [`BusinessHours::parse`] reads it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut week = serde_json::Map::new();
        for (i, day) in DAYS.iter().enumerate() {
            week.insert(
                (*day).to_owned(),
                self.week[i]
                    .iter()
                    .map(|s| serde_json::json!([hhmm(s.open), hhmm(s.close)]))
                    .collect(),
            );
        }
        serde_json::json!({
            "timezone": self.timezone,
            "week": week,
            "holidays": self.holidays.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect::<Vec<_>>(),
        })
    }

    /// The zone (a name a newer tz database dropped reads as UTC).
    pub fn zone(&self) -> Zone {
        Zone::of(Some(&self.timezone))
    }

    fn spans_of(&self, day: NaiveDate) -> &[Span] {
        if self.holidays.binary_search(&day).is_ok() {
            return &[];
        }
        &self.week[day.weekday().num_days_from_monday() as usize]
    }

    /// The instants of the openings that start on local `day`: (open,
    /// close), in order.
    fn openings_on(&self, zone: &Zone, day: NaiveDate) -> Vec<(Micros, Micros)> {
        let at = |d: NaiveDate, m: u16| {
            let (d, m) = if m >= 1440 {
                (d + Duration::days(1), m - 1440)
            } else {
                (d, m)
            };
            NaiveTime::from_hms_opt(u32::from(m / 60), u32::from(m % 60), 0)
                .and_then(|t| zone.instant(d.and_time(t)))
        };
        self.spans_of(day)
            .iter()
            .filter_map(|s| {
                let close_day = if s.crosses_midnight() {
                    day + Duration::days(1)
                } else {
                    day
                };
                Some((at(day, s.open)?, at(close_day, s.close)?))
            })
            .collect()
    }

    /// Whether the inbox is open at `t`.
    pub fn is_open(&self, t: Micros) -> bool {
        let zone = self.zone();
        let Some(today) = zone.date_of(t) else {
            return false;
        };
        // An opening that started yesterday may run past midnight.
        [today - Duration::days(1), today].into_iter().any(|d| {
            self.openings_on(&zone, d)
                .iter()
                .any(|(open, close)| *open <= t && t < *close)
        })
    }

    /// When the inbox next opens at or after `t` (`t` itself when open),
    /// looking a year ahead; `None` if it never does.
    pub fn next_open(&self, t: Micros) -> Option<Micros> {
        if self.is_open(t) {
            return Some(t);
        }
        let zone = self.zone();
        let today = zone.date_of(t)?;
        (0..=370).find_map(|n| {
            self.openings_on(&zone, today + Duration::days(n))
                .into_iter()
                .map(|(open, _)| open)
                .find(|open| *open >= t)
        })
    }

    /// The instant at which `span` microseconds of opening hours have
    /// passed since `from` (a deadline "in business hours"), looking ten
    /// years ahead; `None` if the hours never add up to it.
    pub fn add_open(&self, from: Micros, span: Micros) -> Option<Micros> {
        let zone = self.zone();
        let first = zone.date_of(from)?;
        let mut left = span.max(0);
        for n in -1..3660 {
            for (open, close) in self.openings_on(&zone, first + Duration::days(n)) {
                let a = open.max(from);
                if close <= a {
                    continue;
                }
                if left <= close - a {
                    return Some(a + left);
                }
                left -= close - a;
            }
        }
        None
    }

    /// How much of `[from, to)` falls within opening hours, in
    /// microseconds (a reply time "in business hours").
    pub fn open_between(&self, from: Micros, to: Micros) -> Micros {
        if to <= from {
            return 0;
        }
        let zone = self.zone();
        let (Some(first), Some(last)) = (zone.date_of(from), zone.date_of(to)) else {
            return 0;
        };
        let days = (last - first).num_days().clamp(0, 3660);
        let mut total = 0;
        for n in -1..=days {
            for (open, close) in self.openings_on(&zone, first + Duration::days(n)) {
                let (a, b) = (open.max(from), close.min(to));
                if b > a {
                    total += b - a;
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Micros {
        super::super::time::parse_rfc3339(s).unwrap()
    }

    fn berlin() -> BusinessHours {
        BusinessHours::parse(&json!({
            "timezone": "Europe/Berlin",
            "week": {
                "mon": [["09:00", "17:30"]], "tue": [["09:00", "17:30"]],
                "wed": [["09:00", "17:30"]], "thu": [["09:00", "17:30"]],
                "fri": [["09:00", "12:00"], ["13:00", "17:30"]],
                "sat": [["22:00", "02:00"]], "sun": []
            },
            "holidays": ["2026-12-25"]
        }))
        .unwrap()
    }

    #[test]
    fn hours_follow_the_zones_wall_clock_across_a_dst_change() {
        let h = berlin();
        // Friday 2026-10-23, CEST (UTC+2): 09:00 local is 07:00 UTC.
        assert!(!h.is_open(at("2026-10-23T06:59:00Z")));
        assert!(h.is_open(at("2026-10-23T07:00:00Z")));
        // Monday 2026-10-26, after the change to CET (UTC+1): 09:00 local
        // is 08:00 UTC.
        assert!(!h.is_open(at("2026-10-26T07:30:00Z")));
        assert!(h.is_open(at("2026-10-26T08:00:00Z")));
        assert_eq!(
            h.next_open(at("2026-10-26T07:30:00Z")),
            Some(at("2026-10-26T08:00:00Z"))
        );
        // Spring: Monday 2026-03-30 is CEST again.
        assert_eq!(
            h.next_open(at("2026-03-30T05:00:00Z")),
            Some(at("2026-03-30T07:00:00Z"))
        );
        // The lunch break on Friday.
        assert!(!h.is_open(at("2026-10-23T10:30:00Z")));
        assert_eq!(
            h.next_open(at("2026-10-23T10:30:00Z")),
            Some(at("2026-10-23T11:00:00Z"))
        );
    }

    #[test]
    fn an_opening_runs_past_midnight_and_sunday_is_closed() {
        let h = berlin();
        // Saturday 2026-11-07 22:00 CET = 21:00 UTC, until Sunday 02:00.
        assert!(!h.is_open(at("2026-11-07T20:59:00Z")));
        assert!(h.is_open(at("2026-11-07T21:00:00Z")));
        assert!(h.is_open(at("2026-11-08T00:30:00Z")), "Sunday 01:30 local");
        assert!(!h.is_open(at("2026-11-08T01:00:00Z")), "Sunday 02:00 local");
        // From Sunday afternoon the next opening is Monday 09:00.
        assert_eq!(
            h.next_open(at("2026-11-08T14:00:00Z")),
            Some(at("2026-11-09T08:00:00Z"))
        );
        // Business time over the weekend: Saturday's 4 hours only.
        assert_eq!(
            h.open_between(at("2026-11-06T16:30:00Z"), at("2026-11-09T08:00:00Z")),
            4 * 3600 * 1_000_000
        );
    }

    #[test]
    fn a_deadline_in_business_hours_skips_nights_and_weekends() {
        let h = berlin();
        // Thursday 16:30 CET plus 2 business hours: an hour on Thursday,
        // an hour on Friday from 09:00.
        assert_eq!(
            h.add_open(at("2026-11-05T15:30:00Z"), 2 * 3600 * 1_000_000),
            Some(at("2026-11-06T09:00:00Z"))
        );
        // Starting at night counts from the next opening.
        assert_eq!(
            h.add_open(at("2026-11-05T22:00:00Z"), 30 * 60 * 1_000_000),
            Some(at("2026-11-06T08:30:00Z"))
        );
        let never = BusinessHours::parse(&json!({"timezone": "UTC"})).unwrap();
        assert_eq!(never.add_open(at("2026-11-05T22:00:00Z"), 1), None);
    }

    #[test]
    fn a_holiday_is_closed_and_skipped() {
        let h = berlin();
        // Friday 2026-12-25 is a holiday: closed all day, back Monday.
        assert!(!h.is_open(at("2026-12-25T10:00:00Z")));
        assert_eq!(
            h.next_open(at("2026-12-24T17:00:00Z")),
            Some(at("2026-12-26T21:00:00Z")),
            "Saturday night's opening comes first"
        );
        assert!(h.is_open(at("2026-12-24T15:00:00Z")));
    }

    #[test]
    fn bad_hours_are_refused_with_their_reason() {
        for (v, says) in [
            (json!({"timezone": "Mars/Olympus"}), "time zone"),
            (
                json!({"timezone": "UTC", "week": {"mon": [["9", "17:00"]]}}),
                "HH:MM",
            ),
            (
                json!({"timezone": "UTC", "week": {"funday": []}}),
                "not a day",
            ),
            (
                json!({"timezone": "UTC", "week": {"mon": [["09:00", "09:00"]]}}),
                "empty",
            ),
            (
                json!({"timezone": "UTC", "week": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}),
                "overlap",
            ),
            (
                json!({"timezone": "UTC", "holidays": ["25.12.2026"]}),
                "date",
            ),
        ] {
            let e = BusinessHours::parse(&v).unwrap_err();
            assert!(e.message.contains(says), "{v}: {}", e.message);
        }
        let h = berlin();
        assert_eq!(BusinessHours::parse(&h.to_json()).unwrap(), h);
        assert_eq!(
            h.to_json()["week"]["fri"],
            json!([["09:00", "12:00"], ["13:00", "17:30"]])
        );
    }

    #[test]
    fn never_open_hours_have_no_next_opening() {
        let h = BusinessHours::parse(&json!({"timezone": "UTC"})).unwrap();
        assert!(!h.is_open(at("2026-12-01T10:00:00Z")));
        assert_eq!(h.next_open(at("2026-12-01T10:00:00Z")), None);
        let always = BusinessHours::parse(&json!({"timezone": "UTC", "week": {
            "mon": [["00:00", "24:00"]], "tue": [["00:00", "24:00"]], "wed": [["00:00", "24:00"]],
            "thu": [["00:00", "24:00"]], "fri": [["00:00", "24:00"]], "sat": [["00:00", "24:00"]],
            "sun": [["00:00", "24:00"]]}}))
        .unwrap();
        assert!(always.is_open(at("2026-12-06T23:59:59Z")));
    }
}
