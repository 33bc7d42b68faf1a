//! SLA policies: how long a customer may wait for the first reply, for
//! each next reply, and for the resolution, optionally counted in
//! business hours; and which of those clocks a conversation runs against
//! now. Pure functions of the facts and a time, so tests drive them with
//! a clock of their own.

use serde::{Deserialize, Serialize};

use super::hours::BusinessHours;
use super::time::Micros;
use super::Invalid;

const MINUTE: Micros = 60 * 1_000_000;

/// An inbox's targets, in minutes; `None` sets no target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SlaPolicy {
    /// From the first message to the team's first public reply.
    pub first_response_minutes: Option<u32>,
    /// From a customer's message after a reply to the next reply.
    pub next_response_minutes: Option<u32>,
    /// From the first message to the resolve.
    pub resolution_minutes: Option<u32>,
    /// Count only the inbox's business hours (when it has them).
    #[serde(default)]
    pub business_hours: bool,
}

/// Which target a clock runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaTarget {
    /// The first reply.
    FirstResponse,
    /// The next reply.
    NextResponse,
    /// The resolution.
    Resolution,
}

impl SlaTarget {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstResponse => "first_response",
            Self::NextResponse => "next_response",
            Self::Resolution => "resolution",
        }
    }
}

/// What a conversation's clocks are computed from.
#[derive(Debug, Clone, Copy)]
pub struct SlaFacts {
    /// Its first message.
    pub created_at: Micros,
    /// The team's first public reply.
    pub first_reply_at: Option<Micros>,
    /// Since when the customer waits for a reply.
    pub waiting_from: Option<Micros>,
    /// Resolved (no clock runs).
    pub resolved: bool,
}

/// The clock a conversation runs against now: the earliest deadline of
/// the targets still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaClock {
    /// Which target.
    pub target: SlaTarget,
    /// When it is breached.
    pub due_at: Micros,
    /// When the team is warned: a fifth of the target before (at least a
    /// minute), counted in wall-clock time.
    pub warn_at: Micros,
}

impl SlaPolicy {
    /// Reads `{"first_response_minutes"?, "next_response_minutes"?,
    /// "resolution_minutes"?, "business_hours"?}`: each target 1 to
    /// 525600 minutes (a year), at least one given.
    pub fn parse(v: &serde_json::Value) -> Result<Self, Invalid> {
        let bad = |m: &str| Invalid::new("sla", m);
        let obj = v.as_object().ok_or_else(|| bad("sla must be an object"))?;
        for k in obj.keys() {
            if ![
                "first_response_minutes",
                "next_response_minutes",
                "resolution_minutes",
                "business_hours",
            ]
            .contains(&k.as_str())
            {
                return Err(Invalid::new("sla", format!("sla has no setting {k:?}")));
            }
        }
        let minutes = |k: &str| -> Result<Option<u32>, Invalid> {
            match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(n) => n
                    .as_u64()
                    .filter(|n| (1..=525_600).contains(n))
                    .map(|n| Some(n as u32))
                    .ok_or_else(|| Invalid::new("sla", format!("{k} must be 1 to 525600 minutes"))),
            }
        };
        let p = Self {
            first_response_minutes: minutes("first_response_minutes")?,
            next_response_minutes: minutes("next_response_minutes")?,
            resolution_minutes: minutes("resolution_minutes")?,
            business_hours: match obj.get("business_hours") {
                None | Some(serde_json::Value::Null) => false,
                Some(b) => b
                    .as_bool()
                    .ok_or_else(|| bad("sla.business_hours must be true or false"))?,
            },
        };
        if p.first_response_minutes.is_none()
            && p.next_response_minutes.is_none()
            && p.resolution_minutes.is_none()
        {
            return Err(bad(
                "an SLA needs at least one target (or null to remove it)",
            ));
        }
        Ok(p)
    }

    /// The clock `facts` run against, if any target is open; `hours`
    /// counts when the policy says so and the inbox has them.
    pub fn clock(&self, hours: Option<&BusinessHours>, facts: &SlaFacts) -> Option<SlaClock> {
        if facts.resolved {
            return None;
        }
        let hours = hours.filter(|_| self.business_hours);
        let due = |from: Micros, minutes: u32| {
            let span = Micros::from(minutes) * MINUTE;
            let at = match hours {
                Some(h) => h.add_open(from, span)?,
                None => from + span,
            };
            Some((at, span))
        };
        let mut open = Vec::new();
        if let (Some(m), None) = (self.first_response_minutes, facts.first_reply_at) {
            open.extend(due(facts.created_at, m).map(|d| (SlaTarget::FirstResponse, d)));
        }
        if let (Some(m), Some(_), Some(w)) = (
            self.next_response_minutes,
            facts.first_reply_at,
            facts.waiting_from,
        ) {
            open.extend(due(w, m).map(|d| (SlaTarget::NextResponse, d)));
        }
        if let Some(m) = self.resolution_minutes {
            open.extend(due(facts.created_at, m).map(|d| (SlaTarget::Resolution, d)));
        }
        open.into_iter()
            .min_by_key(|(_, (at, _))| *at)
            .map(|(target, (due_at, span))| SlaClock {
                target,
                due_at,
                warn_at: due_at - (span / 5).max(MINUTE),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Micros {
        super::super::time::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn the_earliest_open_target_is_the_clock() {
        let p = SlaPolicy::parse(&json!({"first_response_minutes": 60, "next_response_minutes": 30, "resolution_minutes": 480})).unwrap();
        let created = at("2026-11-05T10:00:00Z");
        let mut f = SlaFacts {
            created_at: created,
            first_reply_at: None,
            waiting_from: Some(created),
            resolved: false,
        };
        let c = p.clock(None, &f).unwrap();
        assert_eq!(c.target, SlaTarget::FirstResponse);
        assert_eq!(c.due_at, at("2026-11-05T11:00:00Z"));
        assert_eq!(c.warn_at, at("2026-11-05T10:48:00Z"));
        // Answered at 10:20, the customer writes again at 12:00.
        f.first_reply_at = Some(at("2026-11-05T10:20:00Z"));
        f.waiting_from = Some(at("2026-11-05T12:00:00Z"));
        let c = p.clock(None, &f).unwrap();
        assert_eq!(
            (c.target, c.due_at),
            (SlaTarget::NextResponse, at("2026-11-05T12:30:00Z"))
        );
        // Nobody waits: the resolution is what is left.
        f.waiting_from = None;
        let c = p.clock(None, &f).unwrap();
        assert_eq!(
            (c.target, c.due_at),
            (SlaTarget::Resolution, at("2026-11-05T18:00:00Z"))
        );
        f.resolved = true;
        assert_eq!(p.clock(None, &f), None);
    }

    #[test]
    fn in_business_hours_the_night_does_not_count() {
        let h = BusinessHours::parse(&json!({"timezone": "UTC", "week": {
            "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]]}}))
        .unwrap();
        let p = SlaPolicy::parse(&json!({"first_response_minutes": 120, "business_hours": true}))
            .unwrap();
        let f = SlaFacts {
            created_at: at("2026-11-05T16:00:00Z"),
            first_reply_at: None,
            waiting_from: None,
            resolved: false,
        };
        assert_eq!(
            p.clock(Some(&h), &f).unwrap().due_at,
            at("2026-11-06T10:00:00Z")
        );
        // Without business_hours, the wall clock.
        let wall = SlaPolicy {
            business_hours: false,
            ..p
        };
        assert_eq!(
            wall.clock(Some(&h), &f).unwrap().due_at,
            at("2026-11-05T18:00:00Z")
        );
    }

    #[test]
    fn bad_policies_are_refused() {
        for v in [
            json!({}),
            json!({"first_response_minutes": 0}),
            json!({"first_response_minutes": "soon"}),
            json!({"first_respons_minutes": 5}),
            json!({"resolution_minutes": 60, "business_hours": "yes"}),
        ] {
            assert!(SlaPolicy::parse(&v).is_err(), "{v}");
        }
    }
}
