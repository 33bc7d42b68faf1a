//! Every key layout of the store, encoded and decoded in one place.
//!
//! Integers are 8-byte big-endian so that byte order is numeric order;
//! variable-length parts are joined with `0xff`, a byte UTF-8 never contains.
//! "Newest first" indexes store `u64::MAX - time` so a forward scan yields
//! the most recent entry first. Id parameters take any id type
//! (`domain::ids`, all `Into<u64>`), so a typed id encodes to the same 8
//! bytes a bare number did; decoders return the number and the caller,
//! who knows the kind, wraps it.

use super::StoreError;

/// Separator between variable-length key parts.
pub const SEP: u8 = 0xff;

/// 8 big-endian bytes.
pub fn u64_be(n: impl Into<u64>) -> [u8; 8] {
    n.into().to_be_bytes()
}

/// Reads 8 big-endian bytes at `at`; a short key means a corrupt database.
pub fn read_u64(key: &[u8], at: usize) -> Result<u64, StoreError> {
    key.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("short key: {} bytes", key.len())))
}

/// Inverts a time so that later times sort first.
pub fn newest_first(micros: i64) -> u64 {
    u64::MAX - micros.max(0) as u64
}

/// Undoes [`newest_first`].
pub fn from_newest_first(inv: u64) -> i64 {
    (u64::MAX - inv) as i64
}

/// Concatenates fixed-width parts.
pub fn concat(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// `InboxId + SEP + text`: for per-inbox string lookups (external ids).
pub fn id_text(id: impl Into<u64>, text: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + text.len());
    k.extend_from_slice(&u64_be(id));
    k.push(SEP);
    k.extend_from_slice(text.as_bytes());
    k
}

/// The id and the text of an [`id_text`] key.
pub fn read_id_text(key: &[u8]) -> Result<(u64, &str), StoreError> {
    let id = read_u64(key, 0)?;
    match key.get(8..) {
        Some([SEP, text @ ..]) => std::str::from_utf8(text)
            .map(|t| (id, t))
            .map_err(|_| StoreError::Corrupt("an id and text key is not UTF-8".into())),
        _ => Err(StoreError::Corrupt("not an id and text key".into())),
    }
}

/// `ConversationId + Seq`: messages of a conversation in seq order.
pub fn conversation_seq(conversation: impl Into<u64>, seq: u64) -> Vec<u8> {
    concat(&[&u64_be(conversation), &u64_be(seq)])
}

/// `ConversationId + Ordinal`: a conversation's public messages in the
/// contact's numbering (see `MessageRecord::ordinal`), to find the real seq
/// of a number a contact sends.
pub fn conversation_ordinal(conversation: impl Into<u64>, ordinal: u64) -> Vec<u8> {
    concat(&[&u64_be(conversation), &u64_be(ordinal)])
}

/// `InboxId + StatusByte + NewestFirst(activity) + ConversationId`: an
/// inbox's conversations of one status, most recent activity first.
pub fn inbox_status_activity(
    inbox: impl Into<u64>,
    status: u8,
    activity: i64,
    conversation: impl Into<u64>,
) -> Vec<u8> {
    concat(&[
        &u64_be(inbox),
        &[status],
        &u64_be(newest_first(activity)),
        &u64_be(conversation),
    ])
}

/// The prefix of [`inbox_status_activity`] keys for one inbox and status.
pub fn inbox_status_prefix(inbox: impl Into<u64>, status: u8) -> Vec<u8> {
    concat(&[&u64_be(inbox), &[status]])
}

/// `InboxId + StatusByte + AssigneeId`: one tab counter; 0 stands for
/// unassigned (ids are never 0).
pub fn inbox_status_assignee(
    inbox: impl Into<u64>,
    status: u8,
    assignee: Option<impl Into<u64>>,
) -> Vec<u8> {
    concat(&[
        &u64_be(inbox),
        &[status],
        &u64_be(assignee.map_or(0, Into::into)),
    ])
}

/// Decodes an [`inbox_status_activity`] key into (activity, conversation).
pub fn decode_inbox_status_activity(key: &[u8]) -> Result<(i64, u64), StoreError> {
    if key.len() != 25 {
        return Err(StoreError::Corrupt(format!(
            "inbox index key of {} bytes",
            key.len()
        )));
    }
    Ok((from_newest_first(read_u64(key, 9)?), read_u64(key, 17)?))
}

/// `text + SEP + Id`: ids found by a text (contacts by email).
pub fn text_id(text: &str, id: impl Into<u64>) -> Vec<u8> {
    concat(&[text.as_bytes(), &[SEP], &u64_be(id)])
}

/// The prefix of every [`text_id`] key of a text.
pub fn text_prefix(text: &str) -> Vec<u8> {
    concat(&[text.as_bytes(), &[SEP]])
}

/// `Id + Id`: membership-style pairs (inbox + agent, contact + conversation,
/// agent + token hash prefix).
pub fn pair(a: impl Into<u64>, b: impl Into<u64>) -> Vec<u8> {
    concat(&[&u64_be(a), &u64_be(b)])
}

/// `Time + ConversationId`: snoozed conversations by wake-up time.
pub fn time_id(micros: i64, id: impl Into<u64>) -> Vec<u8> {
    concat(&[&u64_be(micros.max(0) as u64), &u64_be(id)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_bytes_sort_like_numbers() {
        let mut nums = vec![0u64, 1, 255, 256, 65_535, 1 << 40, u64::MAX];
        let mut keys: Vec<_> = nums.iter().map(|n| u64_be(*n)).collect();
        keys.sort();
        nums.sort();
        let decoded: Vec<u64> = keys.iter().map(|k| u64::from_be_bytes(*k)).collect();
        assert_eq!(decoded, nums);
    }

    #[test]
    fn an_id_and_text_key_reads_back() {
        let k = id_text(7u64, "user-100");
        assert_eq!(read_id_text(&k).ok(), Some((7, "user-100")));
        assert!(read_id_text(&u64_be(7u64)).is_err());
        assert!(read_id_text(&conversation_seq(7u64, 1)).is_err());
    }

    #[test]
    fn messages_sort_by_conversation_then_seq() {
        let mut keys = vec![
            conversation_seq(2u64, 1),
            conversation_seq(1u64, 256),
            conversation_seq(1u64, 2),
            conversation_seq(1u64, 10),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                conversation_seq(1u64, 2),
                conversation_seq(1u64, 10),
                conversation_seq(1u64, 256),
                conversation_seq(2u64, 1),
            ]
        );
    }

    #[test]
    fn inbox_index_puts_newest_activity_first_and_round_trips() {
        let older = inbox_status_activity(7u64, 0, 1_000, 5u64);
        let newer = inbox_status_activity(7u64, 0, 2_000, 4u64);
        assert!(newer < older);
        assert!(older.starts_with(&inbox_status_prefix(7u64, 0)));
        assert!(!older.starts_with(&inbox_status_prefix(7u64, 1)));
        assert_eq!(
            decode_inbox_status_activity(&older).ok(),
            Some((1_000, 5u64))
        );
    }

    #[test]
    fn short_keys_are_an_error_not_a_panic() {
        assert!(read_u64(&[1, 2, 3], 0).is_err());
        assert!(decode_inbox_status_activity(&[0; 10]).is_err());
    }

    #[test]
    fn separator_never_occurs_in_utf8() {
        let k = id_text(1u64, "ünïcødé ☃");
        assert_eq!(k.iter().filter(|b| **b == SEP).count(), 1);
    }
}
