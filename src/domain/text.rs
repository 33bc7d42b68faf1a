//! Text fields with the limits of the contract. Each type can only be built
//! through `parse`, so holding one proves the value was checked.

use super::Invalid;

/// Percent-encodes text for a URL path or query parameter (links in
/// pages, mails and redirects).
pub fn url_escape(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, URL_KEEP).to_string()
}

/// What [`url_escape`] leaves as it is: unreserved characters and `/`.
const URL_KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The text of a message: 1 to 10,000 characters once trimmed, but stored
/// exactly as sent (leading spaces in code snippets matter to people).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    /// Longest body, counted in characters after trimming.
    pub const MAX_CHARS: usize = 10_000;

    /// Checks the length rule and refuses NUL bytes, which no text needs and
    /// which break many consumers of our webhooks.
    pub fn parse(raw: String) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new("body", "body must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                "body",
                format!("body must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw.contains('\0') {
            return Err(Invalid::new("body", "body must not contain NUL characters"));
        }
        Ok(Self(raw))
    }

    /// The text as the author sent it.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A person's display name (agents): 1 to 100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// Trims and checks the length.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, Invalid> {
        let t = raw.trim();
        if t.is_empty() {
            return Err(Invalid::new(field, format!("{field} must not be empty")));
        }
        if t.chars().count() > 100 {
            return Err(Invalid::new(
                field,
                format!("{field} must be at most 100 characters"),
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(Invalid::new(
                field,
                format!("{field} must not contain control characters"),
            ));
        }
        Ok(Self(t.to_owned()))
    }

    /// The checked name.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A contact's optional name: contacts often give none, or a long one from a
/// host site's profile, so the limit is looser than an agent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactName(String);

impl ContactName {
    /// Trims; an empty name is the same as no name.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, Invalid> {
        let Some(t) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if t.chars().count() > 255 {
            return Err(Invalid::new("name", "name must be at most 255 characters"));
        }
        if t.chars().any(char::is_control) {
            return Err(Invalid::new(
                "name",
                "name must not contain control characters",
            ));
        }
        Ok(Some(Self(t.to_owned())))
    }

    /// The checked name.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An email address, lower-cased so that sign-in and identity matching do
/// not depend on how someone typed it. The check is deliberately loose
/// (something@something.tld): only a mail that arrives proves an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Trims, lower-cases and checks the shape.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let t = raw.trim().to_lowercase();
        let ok = t.len() <= 254
            && !t.chars().any(|c| c.is_whitespace() || c.is_control())
            && match t.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if ok {
            Ok(Self(t))
        } else {
            Err(Invalid::new("email", "email must be a valid email address"))
        }
    }

    /// The normalised address.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A conversation label: lower-case, no spaces, so `Billing` and `billing`
/// are one label and labels work in URLs (`?label=billing`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    /// Most labels one conversation may carry.
    pub const MAX_PER_CONVERSATION: usize = 20;

    /// Normalises and checks one label.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let t = raw.trim().to_lowercase();
        if t.is_empty() || t.chars().count() > 50 {
            return Err(Invalid::new(
                "labels",
                "each label must be 1 to 50 characters",
            ));
        }
        if !t
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.' || c == ':')
        {
            return Err(Invalid::new(
                "labels",
                "labels may contain only letters, digits, '-', '_', '.' and ':'",
            ));
        }
        Ok(Self(t))
    }

    /// The normalised label.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// Parses a whole list, dropping duplicates and keeping a stable order.
    pub fn parse_list(raw: &[String]) -> Result<Vec<String>, Invalid> {
        let mut out: Vec<String> = Vec::new();
        for r in raw {
            let l = Self::parse(r)?.0;
            if !out.contains(&l) {
                out.push(l);
            }
        }
        if out.len() > Self::MAX_PER_CONVERSATION {
            return Err(Invalid::new(
                "labels",
                format!(
                    "a conversation can carry at most {} labels",
                    Self::MAX_PER_CONVERSATION
                ),
            ));
        }
        Ok(out)
    }
}

/// A new password: long enough to resist guessing, short enough that hashing
/// it cannot be used to burn our CPU.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Shortest password accepted.
    pub const MIN_CHARS: usize = 8;
    /// Longest password accepted.
    pub const MAX_CHARS: usize = 256;

    /// Checks the length only: composition rules make passwords worse.
    pub fn parse(raw: String) -> Result<Self, Invalid> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(Invalid::new(
                "password",
                format!("password must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        if n > Self::MAX_CHARS {
            return Err(Invalid::new(
                "password",
                format!("password must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(Self(raw))
    }

    /// The secret, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_trimmed_for_the_check_but_stored_as_sent() {
        let b = MessageBody::parse("  hi  ".into()).map(MessageBody::into_inner);
        assert_eq!(b, Ok("  hi  ".to_string()));
        assert!(MessageBody::parse("   \n ".into()).is_err());
        assert!(MessageBody::parse("a".repeat(10_000)).is_ok());
        assert!(MessageBody::parse("a".repeat(10_001)).is_err());
        assert!(MessageBody::parse(format!("  {}  ", "é".repeat(10_000))).is_ok());
        assert!(MessageBody::parse("a\0b".into()).is_err());
    }

    #[test]
    fn emails_are_normalised_and_loosely_checked() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").map(Email::into_inner),
            Ok("ann@example.com".into())
        );
        for bad in ["", "ann", "ann@", "@x.com", "a b@x.com", "a@b", "a@b@c.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels_are_lowercased_and_deduplicated() {
        let l = Label::parse_list(&["Billing".into(), "billing".into(), "vip".into()]);
        assert_eq!(l, Ok(vec!["billing".to_string(), "vip".to_string()]));
        assert!(Label::parse("two words").is_err());
        assert!(Label::parse("").is_err());
    }

    #[test]
    fn passwords_have_length_bounds() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("long enough".into()).is_ok());
        assert!(Password::parse("x".repeat(257)).is_err());
    }
}
