//! A simple, correct search over stored messages: a case-insensitive
//! substring scan with access checks. The full-text index replaces it; its
//! interface (query, viewer, cursor) stays.

use std::collections::HashMap;

use crate::service::realtime::Viewer;
use crate::store::{ConversationRecord, MessageRecord, Result, Store};

/// One hit.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The message that matched.
    pub message: MessageRecord,
    /// Text around the match.
    pub snippet: String,
}

/// A page of hits and where the next starts.
#[derive(Debug)]
pub struct Hits {
    /// Hits in store order.
    pub hits: Vec<Hit>,
    /// Opaque cursor of the next page, if any.
    pub next_cursor: Option<String>,
}

/// Finds messages containing `query` that `viewer` may see.
pub fn search(
    store: &Store,
    viewer: Viewer,
    query: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Hits> {
    let needle = query.trim().to_lowercase();
    let from = cursor.and_then(parse_cursor);
    let mut visible: HashMap<u64, bool> = HashMap::new();
    let admin_or_member = |c: &ConversationRecord| -> Result<bool> {
        match viewer {
            Viewer::Contact { id } => Ok(c.contact_id == id),
            Viewer::Agent { id, admin } => Ok(admin || store.is_member(c.inbox_id, id)?),
        }
    };
    let include_private = matches!(viewer, Viewer::Agent { .. });
    let mut hits = Vec::new();
    let mut last = None;
    let mut more = false;
    let messages: Box<dyn Iterator<Item = Result<MessageRecord>>> = match viewer {
        Viewer::Contact { id } => {
            let mut convs = store.contact_conversations(id)?;
            convs.sort_by_key(|c| c.id);
            let mut all = Vec::new();
            for c in convs {
                for m in store.messages(
                    c.id,
                    crate::store::MessagePage {
                        after: Some(0),
                        before: None,
                        limit: usize::MAX,
                        include_private: false,
                    },
                )? {
                    if from.is_none_or(|(fc, fs)| (m.conversation_id, m.seq) > (fc, fs)) {
                        all.push(Ok(m));
                    }
                }
            }
            Box::new(all.into_iter())
        }
        Viewer::Agent { .. } => Box::new(store.scan_messages(from)),
    };
    for m in messages {
        let m = m?;
        if m.private && !include_private {
            continue;
        }
        let ok = match visible.get(&m.conversation_id) {
            Some(v) => *v,
            None => {
                let v = match store.conversation(m.conversation_id)? {
                    Some(c) => admin_or_member(&c)?,
                    None => false,
                };
                visible.insert(m.conversation_id, v);
                v
            }
        };
        if !ok {
            continue;
        }
        let Some(snippet) = snippet(&m.body, &needle) else {
            continue;
        };
        if hits.len() == limit {
            more = true;
            break;
        }
        last = Some((m.conversation_id, m.seq));
        hits.push(Hit {
            message: m,
            snippet,
        });
    }
    Ok(Hits {
        hits,
        next_cursor: if more {
            last.map(|(c, s)| format!("{c}.{s}"))
        } else {
            None
        },
    })
}

fn parse_cursor(c: &str) -> Option<(u64, u64)> {
    let (a, b) = c.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Up to ~60 characters either side of the first match, on character
/// boundaries; `None` if the text does not contain the needle.
fn snippet(body: &str, needle: &str) -> Option<String> {
    if needle.is_empty() {
        return None;
    }
    let lower: Vec<char> = body.chars().flat_map(char::to_lowercase).collect();
    let chars: Vec<char> = body.chars().collect();
    let n: Vec<char> = needle.chars().collect();
    let pos = lower.windows(n.len()).position(|w| w == n.as_slice())?;
    // Lower-casing can change lengths for a few scripts; clamp to the body.
    let start = pos.saturating_sub(60).min(chars.len());
    let end = (pos + n.len() + 60).min(chars.len());
    let mut s: String = chars[start..end].iter().collect();
    if start > 0 {
        s.insert(0, '…');
    }
    if end < chars.len() {
        s.push('…');
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_find_case_insensitive_matches() {
        assert_eq!(
            snippet("Where is my Refund?", "refund").as_deref(),
            Some("Where is my Refund?")
        );
        assert_eq!(snippet("nothing here", "refund"), None);
        let long = format!("{}refund{}", "a".repeat(100), "b".repeat(100));
        let s = snippet(&long, "refund").unwrap_or_default();
        assert!(s.starts_with('…') && s.ends_with('…') && s.contains("refund"));
    }
}
