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

#[cfg(test)]
mod tests {
    use super::*;

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
