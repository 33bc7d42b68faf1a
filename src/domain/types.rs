//! Small closed sets of the product: roles, statuses, author types.

use serde::{Deserialize, Serialize};

use super::Invalid;

/// What an agent may do: admins manage agents and inboxes and see every
/// inbox; agents see only the inboxes they are members of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full access.
    Admin,
    /// Access to member inboxes.
    Agent,
}

impl Role {
    /// Reads the contract's role names.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "admin" => Ok(Self::Admin),
            "agent" => Ok(Self::Agent),
            _ => Err(Invalid::new("role", "role must be 'admin' or 'agent'")),
        }
    }

    /// The contract's name for the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Agent => "agent",
        }
    }
}

/// How urgent a conversation is (agents set it; the inbox can sort by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Not set.
    #[default]
    None,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Self; 5] = [
        Self::None,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::Urgent,
    ];

    /// Reads the contract's names.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| {
                Invalid::new(
                    "priority",
                    "priority must be one of none, low, medium, high, urgent",
                )
            })
    }

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

/// Whether an agent takes conversations now, as the agent set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    /// Takes conversations (auto-assignment may give them).
    #[default]
    Online,
    /// Signed in but takes no new conversations.
    Busy,
    /// Away.
    Offline,
}

impl Availability {
    /// Reads the contract's names.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s.trim() {
            "online" => Ok(Self::Online),
            "busy" => Ok(Self::Busy),
            "offline" => Ok(Self::Offline),
            _ => Err(Invalid::new(
                "availability",
                "availability must be one of online, busy, offline",
            )),
        }
    }

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Busy => "busy",
            Self::Offline => "offline",
        }
    }
}

/// How an inbox hands out its new conversations (the contract's
/// `assignment.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// Nobody is assigned automatically.
    #[default]
    Off,
    /// Each free agent in turn.
    RoundRobin,
    /// The free agent with the fewest open conversations (ties: the one
    /// whose last assignment is oldest).
    Balanced,
}

impl AssignmentMode {
    /// Reads the contract's names.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s.trim() {
            "off" | "" => Ok(Self::Off),
            "round_robin" => Ok(Self::RoundRobin),
            "balanced" => Ok(Self::Balanced),
            _ => Err(Invalid::new(
                "assignment.mode",
                "assignment.mode must be one of off, round_robin, balanced",
            )),
        }
    }

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::RoundRobin => "round_robin",
            Self::Balanced => "balanced",
        }
    }
}

/// Whether the messenger asks a first-time visitor for a name and email
/// before the first message (an inbox's "pre-chat form").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prechat {
    /// Not asked up front (the start form still offers them, folded).
    #[default]
    Off,
    /// Asked, may be left empty.
    Ask,
    /// Both must be given before the first message is sent.
    Require,
}

impl Prechat {
    /// Reads the contract's names.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s.trim() {
            "off" | "" => Ok(Self::Off),
            "ask" => Ok(Self::Ask),
            "require" => Ok(Self::Require),
            _ => Err(Invalid::new(
                "prechat",
                "prechat must be one of off, ask, require",
            )),
        }
    }

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Ask => "ask",
            Self::Require => "require",
        }
    }
}

/// Where a conversation stands. The byte value is part of index keys, so it
/// must never change for an existing status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    /// Waiting for the team.
    Open,
    /// Waiting for something else (the customer, a colleague).
    Pending,
    /// Hidden until a time or the customer's next message.
    Snoozed,
    /// Done, until the customer writes again.
    Resolved,
}

impl ConversationStatus {
    /// Every status, in the order of their index bytes.
    pub const ALL: [Self; 4] = [Self::Open, Self::Pending, Self::Snoozed, Self::Resolved];

    /// Reads the contract's status names.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "open" => Ok(Self::Open),
            "pending" => Ok(Self::Pending),
            "snoozed" => Ok(Self::Snoozed),
            "resolved" => Ok(Self::Resolved),
            _ => Err(Invalid::new(
                "status",
                "status must be one of open, pending, snoozed, resolved",
            )),
        }
    }

    /// The contract's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Snoozed => "snoozed",
            Self::Resolved => "resolved",
        }
    }

    /// The byte this status takes in index keys.
    pub fn key_byte(self) -> u8 {
        match self {
            Self::Open => 0,
            Self::Pending => 1,
            Self::Snoozed => 2,
            Self::Resolved => 3,
        }
    }

    /// The rule of the contract: a customer's new message brings a
    /// conversation back to the team's attention.
    pub fn after_contact_message(self) -> Self {
        Self::Open
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorType {
    /// The customer.
    Contact,
    /// Someone on the team.
    Agent,
    /// Natter itself (status changes, greetings).
    System,
}

impl AuthorType {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_and_has_its_own_key_byte() {
        let mut bytes = Vec::new();
        for s in ConversationStatus::ALL {
            assert_eq!(ConversationStatus::parse(s.as_str()), Ok(s));
            bytes.push(s.key_byte());
        }
        bytes.dedup();
        assert_eq!(bytes.len(), 4);
        assert!(ConversationStatus::parse("closed").is_err());
    }

    #[test]
    fn a_contact_message_reopens_every_status() {
        for s in ConversationStatus::ALL {
            assert_eq!(s.after_contact_message(), ConversationStatus::Open);
        }
    }
}
