//! Times are stored as microseconds since the Unix epoch (they sort, and fit
//! big-endian keys) and shown as RFC 3339 UTC.

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds since the epoch, the unit every record stores.
pub type Micros = i64;

/// The current time in the stored unit.
pub fn now() -> Micros {
    Utc::now().timestamp_micros()
}

/// The contract's time format: RFC 3339, UTC, millisecond precision.
pub fn rfc3339(t: Micros) -> String {
    DateTime::<Utc>::from_timestamp_micros(t)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a client's RFC 3339 time (any offset) into the stored unit.
pub fn parse_rfc3339(s: &str) -> Option<Micros> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_micros())
}

/// A time zone by IANA name, from chrono-tz's copy of the tz database
/// (daylight saving included): an agent's clock for shown times and for
/// snooze presets, later an inbox's business hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(chrono_tz::Tz);

impl Zone {
    /// Coordinated Universal Time.
    pub const UTC: Zone = Zone(chrono_tz::Tz::UTC);

    /// A zone a person typed or a browser named.
    pub fn parse(s: &str) -> Result<Zone, crate::domain::Invalid> {
        s.trim().parse::<chrono_tz::Tz>().map(Zone).map_err(|_| {
            crate::domain::Invalid::new("timezone", "use a time zone name such as Europe/Paris")
        })
    }

    /// A stored zone name; none (or one a newer tz database dropped) is UTC.
    pub fn of(name: Option<&str>) -> Zone {
        name.and_then(|n| Zone::parse(n).ok()).unwrap_or(Zone::UTC)
    }

    /// Its IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// Every zone's name, for a picker.
    pub fn names() -> impl Iterator<Item = &'static str> {
        chrono_tz::TZ_VARIANTS.iter().map(|z| z.name())
    }

    /// The calendar day it is at `t` in this zone.
    pub fn date_of(&self, t: Micros) -> Option<chrono::NaiveDate> {
        DateTime::<Utc>::from_timestamp_micros(t).map(|d| d.with_timezone(&self.0).date_naive())
    }

    /// What a wall clock in this zone shows at `t`.
    pub fn local_of(&self, t: Micros) -> Option<chrono::NaiveDateTime> {
        DateTime::<Utc>::from_timestamp_micros(t).map(|d| d.with_timezone(&self.0).naive_local())
    }

    /// The instant a wall clock in this zone shows `local`. When the clock
    /// shows it twice (autumn) the first; when it skips it (spring) the
    /// moment the clock jumps, as a person setting an alarm would expect.
    pub fn instant(&self, local: chrono::NaiveDateTime) -> Option<Micros> {
        use chrono::TimeZone;
        match self.0.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                Some(t.timestamp_micros())
            }
            chrono::LocalResult::None => (1..=180).find_map(|m| {
                self.0
                    .from_local_datetime(&(local + chrono::Duration::minutes(m)))
                    .earliest()
                    .map(|t| t.timestamp_micros())
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_keeps_its_daylight_saving() {
        let ny = Zone::parse("America/New_York").unwrap();
        assert_eq!(ny.name(), "America/New_York");
        let nine = |y, m, d| {
            chrono::NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap()
        };
        // 09:00 in New York is 14:00 UTC in winter, 13:00 UTC in summer.
        assert_eq!(
            ny.instant(nine(2026, 1, 15)).map(rfc3339).as_deref(),
            Some("2026-01-15T14:00:00.000Z")
        );
        assert_eq!(
            ny.instant(nine(2026, 7, 15)).map(rfc3339).as_deref(),
            Some("2026-07-15T13:00:00.000Z")
        );
        // 02:30 on 8 March 2026 does not exist there: the clock jumps to 03:00.
        let gap = chrono::NaiveDate::from_ymd_opt(2026, 3, 8)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(
            ny.instant(gap).map(rfc3339).as_deref(),
            Some("2026-03-08T07:00:00.000Z")
        );
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert_eq!(Zone::of(Some("Nowhere/Else")), Zone::UTC);
        assert!(Zone::names().any(|n| n == "Asia/Kolkata"));
    }

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let t = 1_700_000_000_123_000;
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000_123_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
