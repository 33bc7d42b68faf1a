//! Validated values of the product: everything that comes from outside is
//! parsed into one of these at the edge, so the rest of the code never has
//! to re-check a body's length or a status name.

pub mod hours;
pub mod ids;
pub mod sla;
pub mod text;
pub mod time;
pub mod types;

pub use ids::{format_id, parse_id};
pub use text::{ContactName, Email, Label, MessageBody, Name, Password};
pub use types::{
    AssignmentMode, AuthorType, Availability, ConversationStatus, Prechat, Priority, Role,
};

/// Why a value from outside was refused; the web layer turns it into a 422
/// that names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The JSON field (or query parameter) that was wrong.
    pub field: &'static str,
    /// A sentence a person can act on.
    pub message: String,
}

impl Invalid {
    /// Builds the refusal for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
