//! Live page changes that depend on what a page shows: the fragments of an
//! SSE `ui` event that htmx cannot swap by itself.
//!
//! Why not out-of-band swaps for these: an `hx-swap-oob` whose target is
//! not on the page is an `htmx:oobErrorNoTarget` error in the console, and
//! the server does not know which rows, messages or previews a page holds
//! (a list filtered, a thread paged, a conversation list not open). So a
//! change that may miss is sent as a `<div data-patch>` into the stream's
//! hidden sink, and `static/live.js` applies it when its target is there
//! (and drops it when not). Out-of-band swaps stay for targets every page
//! of the kind has (the open thread's typing line, the status tabs).

/// Where [`upsert`] puts its element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// First in the parent (a row with new activity moves to the top).
    Start,
    /// Last in the parent (a new message in a thread).
    End,
    /// Where it is already; first in the parent when it is new (a row that
    /// changed without new activity, say read or assigned, stays put).
    Keep,
    /// Where it is already; last in the parent when it is new (a list with
    /// the longest waiting first: a new waiter comes last).
    KeepElseEnd,
}

impl Place {
    fn name(self) -> &'static str {
        match self {
            Place::Start => "start",
            Place::End => "end",
            Place::Keep => "keep",
            Place::KeepElseEnd => "keep-end",
        }
    }
}

/// Puts `html` (whose top element has the id `id`) into the element with
/// the id `parent`, replacing the element `id` and removing the elements
/// `also_remove` first (say a message's day separator). Nothing happens
/// when the parent is not on the page.
pub fn upsert(id: &str, parent: &str, place: Place, also_remove: &[String], html: &str) -> String {
    format!(
        "<div data-patch=\"upsert\" data-id=\"{}\" data-parent=\"{}\" data-place=\"{}\" data-remove=\"{}\">{html}</div>",
        attr(id),
        attr(parent),
        place.name(),
        attr(&also_remove.join(" ")),
    )
}

/// A message (its `<li>` and perhaps its day line, `html`) at the end of
/// the thread of `conversation`, replacing a copy shown already: what the
/// workspace and the messenger both send for a new message.
pub fn thread_message(
    conversation: impl std::fmt::Display,
    message_id: &str,
    html: &str,
) -> String {
    upsert(
        &format!("msg-{message_id}"),
        &format!("thread-{conversation}"),
        Place::End,
        &[format!("day-{message_id}")],
        html,
    )
}

/// Removes the element with the id `id`, if the page has it.
pub fn remove(id: &str) -> String {
    format!("<div data-patch=\"remove\" data-id=\"{}\"></div>", attr(id))
}

/// Sets the contents of the element with the id `id`, if the page has it.
pub fn inner(id: &str, html: &str) -> String {
    format!(
        "<div data-patch=\"inner\" data-id=\"{}\">{html}</div>",
        attr(id)
    )
}

/// Ids here are made of our own numbers and names; escaped all the same,
/// so no value can leave its attribute.
fn attr(v: &str) -> String {
    crate::web::workspace::linkify::escape(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_names_its_target_and_keeps_its_html() {
        let p = upsert(
            "row-7",
            "conversation-list",
            Place::Keep,
            &[],
            "<li id=\"row-7\">x</li>",
        );
        assert_eq!(
            p,
            "<div data-patch=\"upsert\" data-id=\"row-7\" data-parent=\"conversation-list\" data-place=\"keep\" data-remove=\"\"><li id=\"row-7\">x</li></div>"
        );
        assert_eq!(
            remove("a\"b"),
            "<div data-patch=\"remove\" data-id=\"a&quot;b\"></div>"
        );
        assert!(inner("m-preview-3", "hi &amp; bye").contains(">hi &amp; bye</div>"));
    }
}
