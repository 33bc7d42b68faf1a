//! `natter doctor`: checks a stopped data folder. Every derived tree (the
//! inbox lists, the tab counters, the indexes by contact, snooze time,
//! ordinal, file, email and team name) is computed again from the records
//! it derives from and compared with what is stored; every attachment a
//! message names must be on disk with its recorded size. `--repair`
//! rebuilds the derived trees from the records, and never changes a
//! record.

use std::collections::BTreeMap;

use super::conversations::counted_as;
use super::keys::{self, pair, time_id, u64_be};
use super::{
    decode, encode, AgentRecord, ContactRecord, ConversationRecord, MessageRecord, Result, Store,
    TeamRecord, Tree,
};
use crate::domain::ConversationStatus;

/// The trees derived from records: checked and rebuilt here, left out of
/// an export (an import rebuilds them).
pub(super) const DERIVED: [Tree; 12] = [
    Tree::InboxstatusactivityConversationid,
    Tree::ContactidConversationid,
    Tree::SnoozeuntilConversationid,
    Tree::InboxstatusassigneeCount,
    Tree::ConversationordinalSeq,
    Tree::FileidMessage,
    Tree::EmailAgentid,
    Tree::EmailContactid,
    Tree::TeamnameTeamid,
    Tree::WidgetkeyInboxid,
    Tree::AgentidTokenhash,
    Tree::ContactidTokenhash,
];

/// One problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What is wrong, in a sentence.
    pub what: String,
    /// Whether `--repair` fixes it (derived data), or only a person can
    /// (a missing file).
    pub repairable: bool,
}

/// What a check looked at and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Conversations, messages and attachments checked.
    pub conversations: u64,
    /// Messages checked.
    pub messages: u64,
    /// Attachments checked.
    pub attachments: u64,
    /// The problems, in the order found.
    pub findings: Vec<Finding>,
}

/// What one derived tree should hold.
struct Derived {
    tree: Tree,
    from: &'static str,
    expected: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Store {
    /// Every derived tree as the records say it should be.
    fn derive(&self, report: &mut Report) -> Result<Vec<Derived>> {
        let d = |tree, from| Derived {
            tree,
            from,
            expected: BTreeMap::new(),
        };
        let mut listed = d(Tree::InboxstatusactivityConversationid, "the conversations");
        let mut by_contact = d(Tree::ContactidConversationid, "the conversations");
        let mut snoozed = d(Tree::SnoozeuntilConversationid, "the conversations");
        let mut counters = d(Tree::InboxstatusassigneeCount, "the conversations");
        let mut ordinals = d(Tree::ConversationordinalSeq, "the messages");
        let mut files = d(Tree::FileidMessage, "the messages");
        let mut agent_emails = d(Tree::EmailAgentid, "the agents");
        let mut contact_emails = d(Tree::EmailContactid, "the contacts");
        let mut team_names = d(Tree::TeamnameTeamid, "the teams");
        let mut widget_keys = d(Tree::WidgetkeyInboxid, "the inboxes");
        let mut agent_tokens = d(Tree::AgentidTokenhash, "the agents' tokens");
        let mut contact_tokens = d(Tree::ContactidTokenhash, "the contacts' tokens");

        let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for v in self.tree(Tree::ConversationidConversation).iter().values() {
            let c: ConversationRecord = decode(&v?)?;
            report.conversations += 1;
            listed.expected.insert(
                keys::inbox_status_activity(c.inbox_id, c.status.key_byte(), c.updated_at, c.id),
                Vec::new(),
            );
            by_contact
                .expected
                .insert(pair(c.contact_id, c.id), Vec::new());
            if let (ConversationStatus::Snoozed, Some(t)) = (c.status, c.snoozed_until) {
                snoozed.expected.insert(time_id(t, c.id), Vec::new());
            }
            let (inbox, status, assignee) = counted_as(&c);
            *counts
                .entry(keys::inbox_status_assignee(inbox, status, assignee))
                .or_default() += 1;
        }
        counters.expected = counts
            .into_iter()
            .map(|(k, n)| (k, u64_be(n).to_vec()))
            .collect();
        for v in self.tree(Tree::ConversationseqMessage).iter().values() {
            let m: MessageRecord = decode(&v?)?;
            report.messages += 1;
            if !m.private {
                ordinals.expected.insert(
                    keys::conversation_ordinal(m.conversation_id, m.ordinal),
                    u64_be(m.seq).to_vec(),
                );
            }
            for a in &m.attachments {
                files.expected.insert(
                    a.id.as_bytes().to_vec(),
                    encode(&(m.conversation_id, m.seq, m.private))?,
                );
            }
        }
        for v in self.tree(Tree::AgentidAgent).iter().values() {
            let a: AgentRecord = decode(&v?)?;
            agent_emails
                .expected
                .insert(a.email.as_bytes().to_vec(), u64_be(a.id).to_vec());
        }
        for v in self.tree(Tree::ContactidContact).iter().values() {
            let c: ContactRecord = decode(&v?)?;
            if let Some(e) = c
                .email
                .as_deref()
                .map(|e| e.trim().to_lowercase())
                .filter(|e| !e.is_empty())
            {
                contact_emails
                    .expected
                    .insert(keys::text_id(&e, c.id), Vec::new());
            }
        }
        for v in self.tree(Tree::TeamidTeam).iter().values() {
            let t: TeamRecord = decode(&v?)?;
            team_names
                .expected
                .insert(t.name.to_lowercase().into_bytes(), encode(&t.id)?);
        }
        for v in self.tree(Tree::InboxidInbox).iter().values() {
            let i: super::InboxRecord = decode(&v?)?;
            widget_keys
                .expected
                .insert(i.widget_key.into_bytes(), u64_be(i.id).to_vec());
        }
        // Each token is found by its owner too (sign out everywhere).
        for (by_hash, by_owner) in [
            (Tree::TokenhashAgenttoken, &mut agent_tokens),
            (Tree::TokenhashContacttoken, &mut contact_tokens),
        ] {
            for kv in self.tree(by_hash).iter() {
                let (hash, v) = kv?;
                let t: super::TokenRecord = decode(&v)?;
                by_owner
                    .expected
                    .insert(keys::concat(&[&u64_be(t.owner), &hash]), Vec::new());
            }
        }
        Ok(vec![
            widget_keys,
            agent_tokens,
            contact_tokens,
            listed,
            by_contact,
            snoozed,
            counters,
            ordinals,
            files,
            agent_emails,
            contact_emails,
            team_names,
        ])
    }

    /// Checks the folder: derived trees against their records, and every
    /// attachment on disk. Call it on a stopped folder (nothing writes).
    pub fn doctor(&self) -> Result<Report> {
        let mut report = Report::default();
        for d in self.derive(&mut report)? {
            let (mut missing, mut wrong, mut extra) = (0u64, 0u64, 0u64);
            let mut seen = 0u64;
            for kv in self.tree(d.tree).iter() {
                let (k, v) = kv?;
                match d.expected.get(k.as_ref()) {
                    None => extra += 1,
                    Some(want) if want.as_slice() != v.as_ref() => {
                        wrong += 1;
                        seen += 1;
                    }
                    Some(_) => seen += 1,
                }
            }
            missing += d.expected.len() as u64 - seen;
            if missing + wrong + extra > 0 {
                let mut parts = Vec::new();
                for (n, what) in [
                    (missing, "missing"),
                    (wrong, "wrong"),
                    (extra, "not in the records"),
                ] {
                    if n > 0 {
                        parts.push(format!("{n} {what}"));
                    }
                }
                report.findings.push(Finding {
                    what: format!(
                        "{} disagrees with {}: {} entries {}",
                        d.tree.name(),
                        d.from,
                        missing + wrong + extra,
                        parts.join(", ")
                    ),
                    repairable: true,
                });
            }
        }
        let dir = self.files_dir();
        for v in self.tree(Tree::ConversationseqMessage).iter().values() {
            let m: MessageRecord = decode(&v?)?;
            for a in &m.attachments {
                report.attachments += 1;
                match std::fs::metadata(dir.join(&a.id)) {
                    Ok(meta) if meta.len() == a.size => {}
                    Ok(meta) => report.findings.push(Finding {
                        what: format!(
                            "attachment {} ({:?}, message {}) is {} bytes on disk, {} recorded",
                            a.id,
                            a.name,
                            m.id,
                            meta.len(),
                            a.size
                        ),
                        repairable: false,
                    }),
                    Err(_) => report.findings.push(Finding {
                        what: format!(
                            "attachment {} ({:?}, message {}) is missing from {}",
                            a.id,
                            a.name,
                            m.id,
                            dir.display()
                        ),
                        repairable: false,
                    }),
                }
            }
        }
        Ok(report)
    }

    /// Rebuilds every derived tree that disagrees with its records, from
    /// the records; returns the names of those rebuilt. Records are never
    /// written. Call it on a stopped folder.
    pub fn repair_derived(&self) -> Result<Vec<&'static str>> {
        let mut rebuilt = Vec::new();
        for d in self.derive(&mut Report::default())? {
            let tree = self.tree(d.tree);
            let mut same = tree.len() == d.expected.len();
            if same {
                for kv in tree.iter() {
                    let (k, v) = kv?;
                    if d.expected.get(k.as_ref()).map(Vec::as_slice) != Some(v.as_ref()) {
                        same = false;
                        break;
                    }
                }
            }
            if same {
                continue;
            }
            tree.clear()?;
            let mut batch = sled::Batch::default();
            for (k, v) in d.expected {
                batch.insert(k, v);
            }
            tree.apply_batch(batch)?;
            rebuilt.push(d.tree.name());
        }
        self.flush_now()?;
        Ok(rebuilt)
    }

    /// The id of the newest event in the log (0: none).
    pub fn last_event_id(&self) -> Result<u64> {
        match self.tree(Tree::EventidEvent).last()? {
            Some((k, _)) => Ok(keys::read_u64(&k, 0)?),
            None => Ok(0),
        }
    }
}
