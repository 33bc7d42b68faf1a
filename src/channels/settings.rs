//! Channel settings: each adapter lists its own; this checks what an admin
//! sends against the list, fills defaults, and hides secrets in views.

use serde_json::{Map, Value};

use crate::domain::Invalid;

/// What kind of value a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// Text.
    Text,
    /// A URL (http/https; internal addresses only when allowed).
    Url,
    /// A host name or IP address natter dials over raw TCP (mail servers;
    /// internal addresses only when allowed, like URLs).
    Host,
    /// A whole number.
    Number,
    /// true / false.
    Bool,
}

/// One setting of a channel.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Its name in `settings`.
    pub name: &'static str,
    /// Its kind.
    pub kind: SettingKind,
    /// Write-only: never returned, never logged.
    pub secret: bool,
    /// Must be given (unless `one_of` names another that is).
    pub required: bool,
    /// Value when not given.
    pub default: Option<&'static str>,
    /// Shown in the settings page.
    pub label: &'static str,
    /// A developer's setting with a right default (a provider's base URL,
    /// an API version): the settings page folds it under "Advanced".
    pub advanced: bool,
}

impl Setting {
    /// A required text setting.
    pub const fn text(name: &'static str, label: &'static str) -> Self {
        Self {
            name,
            kind: SettingKind::Text,
            secret: false,
            required: true,
            default: None,
            label,
            advanced: false,
        }
    }

    /// A required secret.
    pub const fn secret(name: &'static str, label: &'static str) -> Self {
        Self {
            secret: true,
            ..Self::text(name, label)
        }
    }

    /// Not required.
    pub const fn optional(self) -> Self {
        Self {
            required: false,
            ..self
        }
    }

    /// A provider base URL with the real one as default.
    pub const fn api_base(default: &'static str) -> Self {
        Self {
            name: "api_base",
            kind: SettingKind::Url,
            secret: false,
            required: false,
            default: Some(default),
            label: "API base URL",
            advanced: true,
        }
    }

    /// Folded under "Advanced" in the settings page.
    pub const fn advanced(self) -> Self {
        Self {
            advanced: true,
            ..self
        }
    }

    /// With a default (and so not required).
    pub const fn with_default(self, d: &'static str) -> Self {
        Self {
            default: Some(d),
            required: false,
            ..self
        }
    }

    /// Of another kind.
    pub const fn of(self, kind: SettingKind) -> Self {
        Self { kind, ..self }
    }
}

/// Checks `given` against `spec`: unknown names, missing required values,
/// wrong types and refused URLs are 422s; defaults are filled in. With
/// `previous`, missing values keep their stored value (so an admin can
/// change one setting without retyping the secrets).
pub fn validate(
    spec: &[Setting],
    given: &Map<String, Value>,
    previous: Option<&Map<String, Value>>,
    allow_private: bool,
) -> Result<Map<String, Value>, Invalid> {
    for k in given.keys() {
        if !spec.iter().any(|s| s.name == k) {
            let names: Vec<_> = spec.iter().map(|s| s.name).collect();
            return Err(Invalid::new(
                "settings",
                format!("unknown setting {k:?}; this channel takes {names:?}"),
            ));
        }
    }
    let mut out = Map::new();
    for s in spec {
        let v = match given.get(s.name) {
            Some(Value::Null) | None => previous
                .and_then(|p| p.get(s.name).cloned())
                .or_else(|| s.default.map(|d| Value::String(d.to_owned()))),
            Some(v) => Some(v.clone()),
        };
        let Some(v) = v else {
            if s.required {
                return Err(Invalid::new(
                    "settings",
                    format!("settings.{} is required", s.name),
                ));
            }
            continue;
        };
        let v = match s.kind {
            SettingKind::Text => match &v {
                Value::String(t) if !t.trim().is_empty() && t.len() <= 2000 => {
                    Value::String(t.trim().to_owned())
                }
                Value::Number(n) => Value::String(n.to_string()),
                _ => {
                    return Err(Invalid::new(
                        "settings",
                        format!("settings.{} must be non-empty text", s.name),
                    ))
                }
            },
            SettingKind::Url => {
                let Value::String(t) = &v else {
                    return Err(Invalid::new(
                        "settings",
                        format!("settings.{} must be a URL", s.name),
                    ));
                };
                super::http::check_url(t, allow_private)
                    .map_err(|e| Invalid::new("settings", format!("settings.{}: {e}", s.name)))?;
                Value::String(t.trim().trim_end_matches('/').to_owned())
            }
            SettingKind::Host => {
                let Value::String(t) = &v else {
                    return Err(Invalid::new(
                        "settings",
                        format!("settings.{} must be a host name", s.name),
                    ));
                };
                super::http::check_host(t, allow_private)
                    .map_err(|e| Invalid::new("settings", format!("settings.{}: {e}", s.name)))?;
                Value::String(t.trim().to_owned())
            }
            SettingKind::Number => match &v {
                Value::Number(n) if n.as_u64().is_some_and(|n| n > 0 && n < 65536) => v.clone(),
                Value::String(t) if t.parse::<u16>().is_ok_and(|n| n > 0) => {
                    Value::from(t.parse::<u16>().unwrap_or(0))
                }
                _ => {
                    return Err(Invalid::new(
                        "settings",
                        format!("settings.{} must be a port number", s.name),
                    ))
                }
            },
            SettingKind::Bool => match &v {
                Value::Bool(_) => v.clone(),
                Value::String(t) if t == "true" || t == "false" => Value::Bool(t == "true"),
                _ => {
                    return Err(Invalid::new(
                        "settings",
                        format!("settings.{} must be true or false", s.name),
                    ))
                }
            },
        };
        out.insert(s.name.to_owned(), v);
    }
    Ok(out)
}

/// The settings without their secrets (what admins see).
pub fn public(spec: &[Setting], all: &Map<String, Value>) -> Map<String, Value> {
    all.iter()
        .filter(|(k, _)| !spec.iter().any(|s| s.name == k.as_str() && s.secret))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A text setting of an inbox ("" when missing).
pub fn get<'a>(all: &'a Map<String, Value>, name: &str) -> &'a str {
    all.get(name).and_then(Value::as_str).unwrap_or("")
}
