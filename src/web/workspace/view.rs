//! View models of the workspace: what templates show, built from records.
//! The same row and message views serve the full page and the partials
//! pushed over SSE.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};

use crate::domain::ids::{AgentId, ContactId, ConversationId, InboxId};
use crate::domain::time::{self, rfc3339, Micros};
use crate::domain::{format_id, parse_id, AuthorType, ConversationStatus, Label};
use crate::service::conversations::{ListFilter, NameBook, Thread};
use crate::store::{AgentRecord, ContactRecord, ConversationRecord, MessageRecord};

/// Which conversations a list shows: the query of `/inbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `all`, `mine` or `unassigned`.
    pub view: String,
    /// A status name or `all`.
    pub status: String,
    /// One inbox only.
    pub inbox: Option<InboxId>,
    /// One label only.
    pub label: Option<String>,
    /// `recent` (newest activity first) or `waiting` (the customers who
    /// wait for a reply, the longest waiting first).
    pub sort: String,
}

impl Filter {
    /// Reads the query, falling back to the default view on anything odd.
    pub fn from_query(q: &HashMap<String, String>) -> Self {
        let view = match q.get("view").map(String::as_str) {
            Some(v @ ("mine" | "unassigned" | "needs-reply")) => v.to_owned(),
            _ => "all".to_owned(),
        };
        let status = match q.get("status").map(String::as_str) {
            Some("all") => "all".to_owned(),
            Some(s) => ConversationStatus::parse(s)
                .map_or("open", |s| s.as_str())
                .to_owned(),
            None => "open".to_owned(),
        };
        Self {
            view,
            status,
            inbox: q.get("inbox").and_then(|s| parse_id(s)),
            label: q
                .get("label")
                .and_then(|l| Label::parse(l).ok())
                .map(Label::into_inner),
            sort: match q.get("sort").map(String::as_str) {
                Some("waiting") => "waiting".to_owned(),
                Some("priority") => "priority".to_owned(),
                _ => "recent".to_owned(),
            },
        }
    }

    /// Whether the list shows only customers who wait for a reply.
    pub fn waiting_only(&self) -> bool {
        self.view == "needs-reply" || self.sort == "waiting"
    }

    /// The query string that reproduces this filter (no leading `?`).
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        if self.view != "all" {
            parts.push(format!("view={}", self.view));
        }
        if self.status != "open" {
            parts.push(format!("status={}", self.status));
        }
        if let Some(i) = self.inbox {
            parts.push(format!("inbox={i}"));
        }
        if let Some(l) = &self.label {
            parts.push(format!("label={}", super::super::session::url_escape(l)));
        }
        if self.sort != "recent" {
            parts.push(format!("sort={}", self.sort));
        }
        parts.join("&")
    }

    /// This filter with another status.
    pub fn with_status(&self, status: &str) -> Self {
        Self {
            status: status.to_owned(),
            ..self.clone()
        }
    }

    /// Statuses to list.
    pub fn statuses(&self) -> Vec<ConversationStatus> {
        match ConversationStatus::parse(&self.status) {
            Ok(s) => vec![s],
            Err(_) => ConversationStatus::ALL.to_vec(),
        }
    }

    /// The service's list filter for `agent` (which applies what the agent
    /// may see).
    pub fn to_list(&self, agent: AgentId, limit: usize) -> ListFilter {
        ListFilter {
            inbox: self.inbox,
            statuses: self.statuses(),
            assignee: match self.view.as_str() {
                "mine" => Some(Some(agent)),
                "unassigned" => Some(None),
                _ => None,
            },
            label: self.label.clone(),
            waiting: self.waiting_only(),
            after: None,
            limit,
        }
    }

    /// Whether a conversation belongs in this list (visibility is checked
    /// separately).
    pub fn matches(&self, c: &ConversationRecord, agent: AgentId) -> bool {
        self.statuses().contains(&c.status)
            && self.inbox.is_none_or(|i| i == c.inbox_id)
            && self.label.as_ref().is_none_or(|l| c.labels.contains(l))
            && (!self.waiting_only() || c.waiting_since().is_some())
            && match self.view.as_str() {
                "mine" => c.assignee_id == Some(agent),
                "unassigned" => c.assignee_id.is_none(),
                _ => true,
            }
    }
}

/// A link in the sidebar or the status tabs.
#[derive(Debug, Clone)]
pub struct Link {
    /// Where it goes.
    pub href: String,
    /// What it says.
    pub label: String,
    /// Whether it is the page shown.
    pub current: bool,
    /// A count, for tabs.
    pub count: String,
}

/// Names the page needs to render rows, looked up once per render.
#[derive(Default)]
pub struct Names {
    /// The inbox records (their SLA policies and hours).
    records: HashMap<InboxId, crate::store::InboxRecord>,
    inboxes: HashMap<InboxId, String>,
    channels: HashMap<InboxId, String>,
    agents: HashMap<AgentId, String>,
}

impl From<NameBook> for Names {
    /// The lookups of the records a page names (every inbox and agent for
    /// a full page, one conversation's for a live update).
    fn from(book: NameBook) -> Self {
        Self {
            records: book.inboxes.iter().map(|i| (i.id, i.clone())).collect(),
            channels: book
                .inboxes
                .iter()
                .map(|i| (i.id, i.channel.clone()))
                .collect(),
            inboxes: book.inboxes.into_iter().map(|i| (i.id, i.name)).collect(),
            agents: book.agents.into_iter().map(|a| (a.id, a.name)).collect(),
        }
    }
}

impl Names {
    /// The channel of an inbox (`web` when unknown).
    pub fn channel(&self, id: InboxId) -> &str {
        self.channels
            .get(&id)
            .map_or(crate::channels::ChannelKind::Web.as_str(), String::as_str)
    }

    fn inbox(&self, id: InboxId) -> String {
        self.inboxes.get(&id).cloned().unwrap_or_default()
    }

    fn agent(&self, id: AgentId) -> Option<String> {
        self.agents.get(&id).cloned()
    }
}

/// One row of the conversation list.
#[derive(Debug, Clone)]
pub struct RowView {
    /// Conversation id.
    pub id: String,
    /// Link to open it (keeping the list's filter).
    pub href: String,
    /// Who wrote.
    pub contact_name: String,
    /// Which inbox.
    pub inbox_name: String,
    /// Its channel (`web`, `sms`, ...), label and icon.
    pub channel: ChannelTag,
    /// Start of the newest message.
    pub preview: String,
    /// Whether that message is a note.
    pub preview_private: bool,
    /// Who wrote it when it was not the contact: "You", an agent's name,
    /// or empty (the contact, whose name is the row's title).
    pub last_by: String,
    /// `contact`, `agent` or `system`: who wrote the newest message.
    pub last_author_type: &'static str,
    /// The customer wrote last and the conversation is not resolved: how
    /// long they have been waiting ("5m"); empty when nobody waits.
    pub waiting: String,
    /// Since when, in ms since the epoch (0: nobody waits), for the
    /// page's script to keep the words current.
    pub waiting_ms: i64,
    /// "5m", "2h", "3d".
    pub time_rel: String,
    /// RFC 3339 of the latest activity.
    pub time_iso: String,
    /// Contact messages the team has not read.
    pub unread: u64,
    /// Assignee id or empty.
    pub assignee_id: String,
    /// Assignee name.
    pub assignee_name: Option<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Whether this is the open conversation.
    pub selected: bool,
    /// Its priority, empty when none is set.
    pub priority: &'static str,
    /// The SLA clock it runs against: `ok`, `warn` or `breached` (empty:
    /// none), the time left ("42m", or how long ago it was missed) and
    /// the target's words.
    pub sla: SlaBadge,
}

/// A channel as pages show it.
#[derive(Debug, Clone, Default)]
pub struct ChannelTag {
    /// `web`, `sms`, ...
    pub name: String,
    /// "WhatsApp".
    pub label: &'static str,
    /// A small icon.
    pub icon: &'static str,
}

impl ChannelTag {
    /// The tag of a channel name.
    pub fn of(name: &str) -> Self {
        let (label, icon) = crate::channels::label(name);
        Self {
            name: name.to_owned(),
            label,
            icon,
        }
    }
}

/// How a contact is called when it gave no name.
pub fn contact_display(name: Option<&str>, email: Option<&str>, id: ContactId) -> String {
    name.or(email)
        .map_or_else(|| format!("Visitor #{id}"), str::to_owned)
}

/// Builds a row of a conversation and its contact (none when gone).
pub fn row(
    names: &Names,
    c: &ConversationRecord,
    contact: Option<&ContactRecord>,
    filter: &Filter,
    open: Option<ConversationId>,
    viewer: AgentId,
) -> RowView {
    let (preview, private) = match &c.last_message {
        Some(m) => (truncate(&m.body, 90), m.private),
        None => (String::new(), false),
    };
    let (last_by, last_author_type) = match &c.last_message {
        Some(m) => match m.author.kind {
            AuthorType::Contact => (String::new(), "contact"),
            AuthorType::Agent if m.author.agent_id() == Some(viewer) => ("You".to_owned(), "agent"),
            AuthorType::Agent => (
                m.author
                    .name
                    .clone()
                    .unwrap_or_else(|| "An agent".to_owned()),
                "agent",
            ),
            AuthorType::System => ("Natter".to_owned(), "system"),
        },
        None => (String::new(), "contact"),
    };
    let waiting = c
        .waiting_since()
        .map(|t| relative(t, time::now()))
        .unwrap_or_default();
    let waiting_ms = c.waiting_since().map_or(0, |t| t / 1000);
    let q = filter.query();
    RowView {
        id: format_id(c.id),
        href: if q.is_empty() {
            format!("/conversations/{}", c.id)
        } else {
            format!("/conversations/{}?{q}", c.id)
        },
        contact_name: contact_display(
            contact.and_then(|k| k.name.as_deref()),
            contact.and_then(|k| k.email.as_deref()),
            c.contact_id,
        ),
        inbox_name: names.inbox(c.inbox_id),
        channel: ChannelTag::of(names.channel(c.inbox_id)),
        preview,
        preview_private: private,
        last_by,
        last_author_type,
        waiting,
        waiting_ms,
        time_rel: relative(c.updated_at, time::now()),
        time_iso: rfc3339(c.updated_at),
        unread: c.agent_unread,
        assignee_id: c.assignee_id.map(format_id).unwrap_or_default(),
        assignee_name: c.assignee_id.and_then(|a| names.agent(a)),
        labels: c.labels.clone(),
        selected: open == Some(c.id),
        priority: match c.priority {
            crate::domain::Priority::None => "",
            p => p.as_str(),
        },
        sla: SlaBadge::of(names, c, time::now()),
    }
}

/// An SLA target in the workspace's words.
fn target_words(t: crate::domain::sla::SlaTarget) -> &'static str {
    match t {
        crate::domain::sla::SlaTarget::FirstResponse => "First response",
        crate::domain::sla::SlaTarget::NextResponse => "Next response",
        crate::domain::sla::SlaTarget::Resolution => "Resolution",
    }
}

/// A conversation's SLA clock as a row and the controls show it.
#[derive(Debug, Clone, Default)]
pub struct SlaBadge {
    /// `ok`, `warn`, `breached`; empty when no clock runs.
    pub state: &'static str,
    /// "42m" left, or "missed 5m ago".
    pub text: String,
    /// "First response", "Next response", "Resolution".
    pub target: &'static str,
    /// RFC 3339 of the deadline.
    pub due_iso: String,
    /// The deadline and the warning, in ms since the epoch: the page's
    /// script counts the badge down from them between updates.
    pub due_ms: i64,
    /// When the badge turns to `warn`.
    pub warn_ms: i64,
}

impl SlaBadge {
    /// The badge of `c` at `now` (none unless its inbox has a policy).
    pub fn of(names: &Names, c: &ConversationRecord, now: Micros) -> Self {
        let Some(clock) = names
            .records
            .get(&c.inbox_id)
            .and_then(|i| crate::service::sla::clock_of(i, c))
        else {
            return Self::default();
        };
        let target = target_words(clock.target);
        let (state, text) = if now >= clock.due_at {
            (
                "breached",
                format!("missed {} ago", span(now - clock.due_at)),
            )
        } else {
            (
                if now >= clock.warn_at { "warn" } else { "ok" },
                format!("{} left", span(clock.due_at - now)),
            )
        };
        Self {
            state,
            text,
            target,
            due_iso: rfc3339(clock.due_at),
            due_ms: clock.due_at / 1000,
            warn_ms: clock.warn_at / 1000,
        }
    }
}

/// One message in a thread.
#[derive(Debug, Clone)]
pub struct MessageView {
    /// Message id.
    pub id: String,
    /// Position.
    pub seq: u64,
    /// contact, agent or system.
    pub author_type: &'static str,
    /// Display name.
    pub author_name: String,
    /// Escaped body with links made clickable.
    pub body_html: String,
    /// Team-only note.
    pub private: bool,
    /// RFC 3339.
    pub time_iso: String,
    /// "14:05".
    pub time_short: String,
    /// A day separator to show before it ("Today", "12 March 2026").
    pub day: Option<String>,
    /// Files, images first shown inline.
    pub attachments: Vec<AttachmentView>,
    /// Conversation id (the retry button's target).
    pub conversation_id: String,
    /// Delivery step of an outbound channel message.
    pub delivery: Option<&'static str>,
    /// Why it failed.
    pub delivery_error: String,
    /// The channel it came or went through (empty: not shown).
    pub channel: ChannelTag,
}

impl MessageView {
    /// Whether the agent should be offered a retry.
    pub fn failed(&self) -> bool {
        self.delivery == Some("failed")
    }

    /// The ticks of a delivery step (what chat apps taught people).
    pub fn ticks(&self) -> &'static str {
        match self.delivery {
            Some("queued") => "🕓",
            Some("sent") => "✓",
            Some("delivered") => "✓✓",
            Some("read") => "✓✓ Read",
            Some("failed") => "Not delivered",
            _ => "",
        }
    }
}

/// A file in a message.
#[derive(Debug, Clone)]
pub struct AttachmentView {
    /// Where it is served.
    pub url: String,
    /// Its name.
    pub name: String,
    /// "12 KB".
    pub size: String,
    /// Shown inline.
    pub image: bool,
}

/// Human file sizes.
pub fn human_size(n: u64) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1_048_575 => format!("{} KB", n / 1024),
        _ => format!("{:.1} MB", n as f64 / 1_048_576.0),
    }
}

/// [`message`] for the messenger: numbered (`data-seq`) by its ordinal
/// among public messages, the contact's numbering, which the messenger
/// posts back as its read position. `prev` is the public message before.
pub fn customer_message(m: &MessageRecord, prev: Option<&MessageRecord>) -> MessageView {
    MessageView {
        seq: m.ordinal,
        ..message(m, prev)
    }
}

/// Builds a message view; `prev` decides the day separator.
pub fn message(m: &MessageRecord, prev: Option<&MessageRecord>) -> MessageView {
    let t = DateTime::<Utc>::from_timestamp_micros(m.created_at).unwrap_or_default();
    let day_of = |x: i64| {
        DateTime::<Utc>::from_timestamp_micros(x)
            .unwrap_or_default()
            .date_naive()
    };
    let new_day = prev.is_none_or(|p| day_of(p.created_at) != t.date_naive());
    let today = Utc::now().date_naive();
    let day = new_day.then(|| {
        if t.date_naive() == today {
            "Today".to_owned()
        } else if today.pred_opt() == Some(t.date_naive()) {
            "Yesterday".to_owned()
        } else if t.year() == Utc::now().year() {
            t.format("%A %-d %B").to_string()
        } else {
            t.format("%-d %B %Y").to_string()
        }
    });
    MessageView {
        id: format_id(m.id),
        seq: m.seq,
        author_type: m.author.kind.as_str(),
        author_name: m
            .author
            .name
            .clone()
            .unwrap_or_else(|| match m.author.kind {
                AuthorType::Contact => "Visitor".to_owned(),
                AuthorType::Agent => "Agent".to_owned(),
                AuthorType::System => "Natter".to_owned(),
            }),
        body_html: super::linkify::linkify(&m.body),
        private: m.private,
        conversation_id: format_id(m.conversation_id),
        delivery: m.delivery.as_ref().map(|d| d.status.as_str()),
        delivery_error: m
            .delivery
            .as_ref()
            .and_then(|d| d.error.clone())
            .unwrap_or_default(),
        channel: ChannelTag::default(),
        time_iso: rfc3339(m.created_at),
        time_short: t.format("%H:%M").to_string(),
        day,
        attachments: m
            .attachments
            .iter()
            .map(|a| AttachmentView {
                url: crate::contract::attachment_url(a),
                name: a.name.clone(),
                size: human_size(a.size),
                image: crate::service::files::is_inline_image(&a.content_type),
            })
            .collect(),
    }
}

/// The open conversation, with everything its pane shows.
#[derive(Debug, Clone)]
pub struct ConvView {
    /// Conversation id.
    pub id: String,
    /// Contact name as displayed.
    pub contact_name: String,
    /// Contact email.
    pub contact_email: Option<String>,
    /// Contact external id.
    pub contact_external_id: Option<String>,
    /// When the contact was created.
    pub contact_since: String,
    /// Same, RFC 3339.
    pub contact_since_iso: String,
    /// Inbox name.
    pub inbox_name: String,
    /// The conversation's channel.
    pub channel: ChannelTag,
    /// The contact's id (merge forms).
    pub contact_id: String,
    /// Every channel address the person used.
    pub contact_channels: Vec<(ChannelTag, String)>,
    /// Other channels the reply can go out on: (inbox id, "SMS to +1…").
    pub reply_via: Vec<(String, String)>,
    /// Other contacts with the same email: (id, how they are shown).
    pub duplicates: Vec<(String, String)>,
    /// Status name.
    pub status: &'static str,
    /// Newest seq.
    pub last_seq: u64,
    /// The thread (newest 200).
    pub messages: Vec<MessageView>,
    /// "Seen" line.
    pub seen: String,
    /// Wake-up time: RFC 3339 and as [`human_utc`] says it.
    pub snoozed_until: Option<(String, String)>,
    /// Assignee id.
    pub assignee_id: Option<String>,
    /// Agents it can be assigned to: (id, name with their availability).
    pub assignable: Vec<(String, String)>,
    /// The viewing agent's id.
    pub me: String,
    /// Labels.
    pub labels: Vec<String>,
    /// The priority picker: (value, label, whether it is this one's).
    pub priorities: Vec<(&'static str, &'static str, bool)>,
    /// The SLA clock it runs against now.
    pub sla: SlaBadge,
    /// The deadlines it missed: (target, when).
    pub sla_breaches: Vec<(&'static str, String)>,
    /// The contact's other conversations: (id, preview, status).
    pub other_conversations: Vec<(String, String, &'static str)>,
}

/// Builds the conversation pane from its [`Thread`] (read without
/// messages for the controls partial alone).
pub fn conversation(
    thread: &Thread,
    names: &Names,
    c: &ConversationRecord,
    me: &AgentRecord,
) -> ConvView {
    let contact = thread.contact.as_ref();
    let mut messages = Vec::with_capacity(thread.messages.len());
    let mut prev: Option<&MessageRecord> = None;
    let tag = ChannelTag::of(names.channel(c.inbox_id));
    for (m, via) in &thread.messages {
        let mut v = message(m, prev);
        // A reply sent through another channel shows that channel.
        v.channel = match via {
            Some(channel) => ChannelTag::of(channel),
            None => tag.clone(),
        };
        messages.push(v);
        prev = Some(m);
    }
    let since = contact.map_or(c.created_at, |k| k.created_at);
    ConvView {
        id: format_id(c.id),
        contact_name: contact_display(
            contact.and_then(|k| k.name.as_deref()),
            contact.and_then(|k| k.email.as_deref()),
            c.contact_id,
        ),
        contact_email: contact.and_then(|k| k.email.clone()),
        contact_external_id: contact.and_then(|k| k.external_id.clone()),
        contact_since: DateTime::<Utc>::from_timestamp_micros(since)
            .unwrap_or_default()
            .format("%-d %B %Y")
            .to_string(),
        contact_since_iso: rfc3339(since),
        inbox_name: names.inbox(c.inbox_id),
        channel: ChannelTag::of(names.channel(c.inbox_id)),
        contact_id: format_id(c.contact_id),
        contact_channels: thread
            .contact_channels
            .iter()
            .map(|(channel, address)| (ChannelTag::of(channel), address.clone()))
            .collect(),
        duplicates: thread
            .duplicates
            .iter()
            .map(|d| {
                (
                    format_id(d.id),
                    contact_display(d.name.as_deref(), d.email.as_deref(), d.id),
                )
            })
            .collect(),
        reply_via: thread
            .reply_options
            .iter()
            .map(|(i, a)| {
                let (label, icon) = crate::channels::label(&i.channel);
                (
                    format_id(i.id),
                    format!("{icon} {label} to {a} ({})", i.name),
                )
            })
            .collect(),
        status: c.status.as_str(),
        last_seq: c.last_seq,
        messages,
        seen: seen_line(c),
        snoozed_until: c.snoozed_until.map(|u| (rfc3339(u), human_utc(u))),
        assignee_id: c.assignee_id.map(format_id),
        assignable: thread
            .assignable
            .iter()
            .map(|(a, now)| (format_id(a.id), name_and_availability(&a.name, *now)))
            .collect(),
        me: format_id(me.id),
        sla: SlaBadge::of(names, c, time::now()),
        sla_breaches: c
            .sla_breaches
            .iter()
            .map(|b| (target_words(b.target), human_utc(b.due_at)))
            .collect(),
        priorities: crate::domain::Priority::ALL
            .into_iter()
            .map(|p| {
                let label = match p {
                    crate::domain::Priority::None => "No priority",
                    crate::domain::Priority::Low => "Low",
                    crate::domain::Priority::Medium => "Medium",
                    crate::domain::Priority::High => "High",
                    crate::domain::Priority::Urgent => "Urgent",
                };
                (p.as_str(), label, p == c.priority)
            })
            .collect(),
        labels: c.labels.clone(),
        other_conversations: thread
            .other_conversations
            .iter()
            .map(|o| {
                let preview = o
                    .last_message
                    .as_ref()
                    .map(|m| truncate(&m.body, 40))
                    .unwrap_or_default();
                (format_id(o.id), preview, o.status.as_str())
            })
            .collect(),
    }
}

/// "Seen" when the contact has read the team's latest public reply.
pub fn seen_line(c: &ConversationRecord) -> String {
    match c.last_public() {
        Some(m) if m.author.kind != AuthorType::Contact && c.contact_read_seq >= m.seq => {
            "Seen".to_owned()
        }
        _ => String::new(),
    }
}

/// At most `n` characters, with an ellipsis.
pub fn truncate(s: &str, n: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= n {
        flat
    } else {
        let mut t: String = flat.chars().take(n).collect();
        t.push('…');
        t
    }
}

/// An instant for people, without a script: "1 Jan 2099, 09:00 UTC".
/// Pages name the instant in `<time datetime>` too, and `static/live.js`
/// shows it in the viewer's own zone and language.
pub fn human_utc(t: Micros) -> String {
    DateTime::<Utc>::from_timestamp_micros(t)
        .map(|d| d.format("%-d %b %Y, %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// "now", "5m", "2h", "3d", "12 Mar".
pub fn relative(t: Micros, now: Micros) -> String {
    let secs = (now - t).max(0) / 1_000_000;
    match secs {
        0..=59 => "now".to_owned(),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        86_400..=604_799 => format!("{}d", secs / 86_400),
        _ => DateTime::<Utc>::from_timestamp_micros(t)
            .unwrap_or_default()
            .format("%-d %b")
            .to_string(),
    }
}

/// A length of time in a badge: "<1m", "42m", "3h", "2d".
pub fn span(t: Micros) -> String {
    let secs = t.max(0) / 1_000_000;
    match secs {
        0..=59 => "<1m".to_owned(),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// An agent's name with their availability, for a `<select>`'s option
/// (which holds text only, so the presence dot becomes a word).
pub fn name_and_availability(name: &str, now: crate::domain::Availability) -> String {
    format!("{name} · {}", now.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_are_short() {
        let now = 10_000_000_000_000;
        assert_eq!(relative(now - 5_000_000, now), "now");
        assert_eq!(relative(now - 300_000_000, now), "5m");
        assert_eq!(relative(now - 7_200_000_000, now), "2h");
        assert_eq!(relative(now - 3 * 86_400_000_000, now), "3d");
    }

    #[test]
    fn filters_round_trip_through_their_query() {
        let mut q = HashMap::new();
        q.insert("view".to_owned(), "mine".to_owned());
        q.insert("status".to_owned(), "pending".to_owned());
        q.insert("label".to_owned(), "VIP".to_owned());
        let f = Filter::from_query(&q);
        assert_eq!(f.query(), "view=mine&status=pending&label=vip");
        let junk: HashMap<String, String> = [("view", "x"), ("status", "y")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let d = Filter::from_query(&junk);
        assert_eq!((d.view.as_str(), d.status.as_str()), ("all", "open"));
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo   wörld", 5), "héllo…");
        assert_eq!(truncate("short", 10), "short");
    }
}
