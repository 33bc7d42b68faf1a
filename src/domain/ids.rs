//! Ids are `u64` inside (so they sort and encode as 8 big-endian bytes in
//! keys) and opaque strings outside, as the contract promises.

/// The form an id takes in JSON and URLs.
pub fn format_id(id: u64) -> String {
    id.to_string()
}

/// Reads an id from a URL or JSON string. Anything that is not one of our
/// ids is `None`, which the handlers answer with 404 rather than 400 so a
/// caller learns nothing from probing.
pub fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for id in [1u64, 42, u64::MAX] {
            assert_eq!(parse_id(&format_id(id)), Some(id));
        }
    }

    #[test]
    fn foreign_strings_are_not_ids() {
        for s in ["", "-1", "01", "1a", "99999999999999999999999", " 1"] {
            assert_eq!(parse_id(s), None, "{s:?}");
        }
    }
}
