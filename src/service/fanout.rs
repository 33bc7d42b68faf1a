//! Which open streams hear of an event: a registry of the open streams
//! (contacts by contact id, agents by agent id, admins in their own set)
//! and the one dispatcher task that hands each durable event and typing
//! signal only to the streams that may see it.
//!
//! Before this, every stream task followed the store's broadcast of
//! durable events itself, so each event woke all of them (10,020 wake-ups
//! and `may_see` checks per message with 10,000 visitors online). Now the
//! dispatcher receives each event once and pushes it into the small
//! [`Mailbox`] of each interested stream.
//!
//! The registry is a filter for wake-ups, never the authority: a stream
//! still checks `may_see` (and its credential) itself before it sends.
//! Where the registry could be stale it routes to more streams, never to
//! fewer:
//! - a contact's stream gets the events whose `contact_id` is its contact
//!   and that are not private: exactly what `may_see` lets a contact see;
//! - an agent's stream gets every event of the inboxes the agent is a
//!   member of, read from the store when the event is routed (so a member
//!   added a moment ago is already there), and an admin's stream gets
//!   every event. Whether an agent is an admin is read when its stream
//!   opens and updated by [`Fanout::role_changed`]; while a role change is
//!   being written ([`Fanout::role_change`]) every agent stream gets every
//!   event. A demoted admin keeps getting everything until its streams
//!   end; `may_see` drops what it no longer sees.
//!
//! A stream whose mailbox is full is marked lagged and catches up from the
//! log itself; the dispatcher never waits for a stream. Replay stays
//! exact because a stream registers first and reads, under the registry's
//! lock, the last event routed so far: everything up to it is in the log
//! (its replay), everything after it is routed to it (its live part), and
//! it drops ids it already sent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, watch, Notify};

use super::realtime::{TypingEvent, Viewer};
use crate::domain::ids::{AgentId, ContactId, InboxId};
use crate::domain::Role;
use crate::metrics;
use crate::store::{EventRecord, Store};

/// Events the dispatcher reads from the log per batch when it fell behind.
const CATCH_UP_BATCH: usize = 500;

/// What the dispatcher hands a stream.
#[derive(Debug, Clone)]
pub enum Live {
    /// A durable event that the stream's viewer may see.
    Event(Arc<EventRecord>),
    /// A typing signal that the stream's viewer may see.
    Typing(Arc<TypingEvent>),
    /// Events were dropped because the stream's mailbox was full: read
    /// the log up to [`Subscription::upto`].
    Lagged,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Live>,
    lagged: bool,
}

/// One stream's small queue: filled by the dispatcher, drained by the
/// stream task. A `Notify` rather than a channel, so an idle stream costs
/// an empty queue.
pub struct Mailbox {
    queue: Mutex<Queue>,
    ready: Notify,
    /// How many routed items may wait before the stream is marked lagged
    /// (and catches up from the log instead).
    capacity: usize,
}

impl Mailbox {
    fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        match self.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Queues a durable event, or marks the stream lagged when it is full
    /// (the queued items are then dropped too: the catch-up reads them
    /// from the log).
    fn push_event(&self, ev: &Arc<EventRecord>) {
        {
            let mut q = self.lock();
            if q.lagged {
                return;
            }
            if q.items.len() >= self.capacity {
                q.lagged = true;
                q.items.clear();
            } else {
                q.items.push_back(Live::Event(ev.clone()));
            }
        }
        self.ready.notify_one();
    }

    /// Queues a typing signal unless the stream is behind (a missed
    /// signal is just gone).
    fn push_typing(&self, t: &Arc<TypingEvent>) {
        {
            let mut q = self.lock();
            if q.lagged || q.items.len() >= self.capacity {
                return;
            }
            q.items.push_back(Live::Typing(t.clone()));
        }
        self.ready.notify_one();
    }

    fn mark_lagged(&self) {
        {
            let mut q = self.lock();
            q.lagged = true;
            q.items.clear();
        }
        self.ready.notify_one();
    }

    fn take(&self) -> Option<Live> {
        let mut q = self.lock();
        if q.lagged {
            q.lagged = false;
            q.items.clear();
            return Some(Live::Lagged);
        }
        q.items.pop_front()
    }
}

/// A stream's place in the registry: what it was handed waits in its
/// mailbox; dropping it unregisters the stream.
pub struct Subscription {
    fanout: Arc<Fanout>,
    viewer: Viewer,
    stream: u64,
    mailbox: Arc<Mailbox>,
    /// The last event routed before this stream registered: everything
    /// after it is handed to it, everything up to it is in the log.
    routed_before: u64,
}

impl Subscription {
    /// The next item for this stream. Cancel-safe: an item is taken only
    /// when it is returned, so a `select!` that picks another branch
    /// loses nothing.
    pub async fn recv(&self) -> Live {
        loop {
            if let Some(item) = self.mailbox.take() {
                return item;
            }
            self.mailbox.ready.notified().await;
        }
    }

    /// Where a replay or a catch-up may read the log to: every event up to
    /// it is durable and in the log, and every event after it will be
    /// handed to this stream if it may see it.
    pub fn upto(&self) -> u64 {
        self.fanout
            .published_upto()
            .max(self.fanout.routed_upto.load(Ordering::Acquire))
    }

    /// The last event routed before this stream registered (see
    /// [`Self::upto`]): a replay must read the log at least to it.
    pub fn routed_before(&self) -> u64 {
        self.routed_before
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.fanout.unregister(self.viewer, self.stream);
    }
}

struct Entry {
    stream: u64,
    mailbox: Arc<Mailbox>,
}

#[derive(Default)]
struct AgentStreams {
    /// Whether the agent was an admin when last read (see the module doc).
    admin: bool,
    streams: Vec<Entry>,
}

#[derive(Default)]
struct Routes {
    next_stream: u64,
    contacts: HashMap<ContactId, Vec<Entry>>,
    agents: HashMap<AgentId, AgentStreams>,
    /// The agents in `agents` whose streams get every inbox.
    admins: HashSet<AgentId>,
    /// When each agent's last stream closed (for "away after").
    left_at: HashMap<AgentId, std::time::Instant>,
}

/// The registry of open streams and the state the dispatcher shares with
/// them. Built once per server (inside `Services`), cheap to share.
pub struct Fanout {
    store: Arc<Store>,
    routes: Mutex<Routes>,
    /// The id of the last durable event the dispatcher routed (written
    /// under the `routes` lock).
    routed_upto: AtomicU64,
    /// Role changes being written now: while any is, every agent stream
    /// gets every event.
    role_changes: AtomicUsize,
    /// Each stream's mailbox size (`--event-buffer`).
    capacity: usize,
}

/// Held while an agent's role is being written (see
/// [`Fanout::role_change`]).
pub struct RoleChange<'a> {
    fanout: &'a Fanout,
}

impl Drop for RoleChange<'_> {
    fn drop(&mut self) {
        self.fanout.role_changes.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Fanout {
    /// An empty registry whose streams may each fall `capacity` items
    /// behind before they catch up from the log; nothing is routed before
    /// the last event published when the store opened.
    pub fn new(store: Arc<Store>, capacity: usize) -> Self {
        let upto = store.durability().published_upto();
        Self {
            store,
            routes: Mutex::new(Routes::default()),
            routed_upto: AtomicU64::new(upto),
            role_changes: AtomicUsize::new(0),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Routes> {
        match self.routes.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn published_upto(&self) -> u64 {
        self.store.durability().published_upto()
    }

    /// Whether the agent had a stream open within `grace` (one open now
    /// counts; one that closed less than `grace` ago too, so a reload or a
    /// click to the next page is not a departure).
    pub fn agent_seen_within(&self, agent: AgentId, grace: Duration) -> bool {
        let routes = self.lock();
        if routes
            .agents
            .get(&agent)
            .is_some_and(|a| !a.streams.is_empty())
        {
            return true;
        }
        routes
            .left_at
            .get(&agent)
            .is_some_and(|t| t.elapsed() < grace)
    }

    /// Registers a new stream of `viewer`. An agent's role is read here,
    /// under the lock, so a concurrent [`Self::role_changed`] either sees
    /// this stream or is seen by this read.
    pub fn register(self: &Arc<Self>, viewer: Viewer) -> Subscription {
        let mailbox = Arc::new(Mailbox::new(self.capacity));
        let mut routes = self.lock();
        let stream = routes.next_stream;
        routes.next_stream += 1;
        let entry = Entry {
            stream,
            mailbox: mailbox.clone(),
        };
        match viewer {
            Viewer::Contact { id } => routes.contacts.entry(id).or_default().push(entry),
            Viewer::Agent { id, .. } => {
                // A read that fails counts as an admin: more wake-ups,
                // never a missed event.
                let admin = match self.store.agent(id) {
                    Ok(Some(a)) => a.role == Role::Admin,
                    Ok(None) => false,
                    Err(_) => true,
                };
                let a = routes.agents.entry(id).or_default();
                a.admin = admin;
                a.streams.push(entry);
                if admin {
                    routes.admins.insert(id);
                }
            }
        }
        let routed_before = self.routed_upto.load(Ordering::Acquire);
        drop(routes);
        Subscription {
            fanout: self.clone(),
            viewer,
            stream,
            mailbox,
            routed_before,
        }
    }

    fn unregister(&self, viewer: Viewer, stream: u64) {
        let mut routes = self.lock();
        match viewer {
            Viewer::Contact { id } => {
                if let Some(list) = routes.contacts.get_mut(&id) {
                    list.retain(|e| e.stream != stream);
                    if list.is_empty() {
                        routes.contacts.remove(&id);
                    }
                }
            }
            Viewer::Agent { id, .. } => {
                let gone = routes.agents.get_mut(&id).is_some_and(|a| {
                    a.streams.retain(|e| e.stream != stream);
                    a.streams.is_empty()
                });
                if gone {
                    routes.agents.remove(&id);
                    routes.admins.remove(&id);
                    routes.left_at.insert(id, std::time::Instant::now());
                }
            }
        }
    }

    /// Call before writing a change of an agent's role and hold the guard
    /// until [`Self::role_changed`] has been told the outcome: meanwhile
    /// every agent stream gets every event, so no event written after the
    /// change misses a newly promoted admin.
    pub fn role_change(&self) -> RoleChange<'_> {
        self.role_changes.fetch_add(1, Ordering::SeqCst);
        RoleChange { fanout: self }
    }

    /// Records an agent's role as now stored.
    pub fn role_changed(&self, agent: AgentId, role: Role) {
        let mut routes = self.lock();
        let admin = role == Role::Admin;
        if let Some(a) = routes.agents.get_mut(&agent) {
            a.admin = admin;
            if admin {
                routes.admins.insert(agent);
            } else {
                routes.admins.remove(&agent);
            }
        }
    }

    /// The mailboxes of the agent streams that may see `inbox`: admins,
    /// and the inbox's members as stored now (everyone while a role change
    /// is being written, or when the members cannot be read).
    fn agent_targets(&self, routes: &Routes, inbox: InboxId, out: &mut Vec<Arc<Mailbox>>) {
        let before = out.len();
        let every = |out: &mut Vec<Arc<Mailbox>>| {
            for a in routes.agents.values() {
                out.extend(a.streams.iter().map(|e| e.mailbox.clone()));
            }
        };
        if routes.agents.is_empty() {
            return;
        }
        if self.role_changes.load(Ordering::SeqCst) > 0 {
            return every(out);
        }
        for id in &routes.admins {
            if let Some(a) = routes.agents.get(id) {
                out.extend(a.streams.iter().map(|e| e.mailbox.clone()));
            }
        }
        match self.store.members(inbox) {
            Ok(members) => {
                for id in members {
                    if routes.admins.contains(&id) {
                        continue;
                    }
                    if let Some(a) = routes.agents.get(&id) {
                        out.extend(a.streams.iter().map(|e| e.mailbox.clone()));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, %inbox, "could not read an inbox's members; waking every agent stream");
                out.truncate(before);
                every(out);
            }
        }
    }

    /// Hands one durable event to the streams that may see it; returns how
    /// many. Events at or below the last routed one are skipped.
    fn route_event(&self, ev: &Arc<EventRecord>) -> usize {
        let mut targets = Vec::new();
        {
            let routes = self.lock();
            if ev.id.get() <= self.routed_upto.load(Ordering::Acquire) {
                return 0;
            }
            if !ev.is_private() {
                if let Some(list) = routes.contacts.get(&ev.contact_id) {
                    targets.extend(list.iter().map(|e| e.mailbox.clone()));
                }
            }
            self.agent_targets(&routes, ev.inbox_id, &mut targets);
            self.routed_upto.store(ev.id.get(), Ordering::Release);
        }
        // Counted before any stream can act on it, so a client that saw
        // the event also sees it counted.
        metrics::global()
            .stream_wakeups
            .inc_by(targets.len() as u64);
        for m in &targets {
            m.push_event(ev);
        }
        targets.len()
    }

    /// Hands a typing signal to the streams that may see it.
    fn route_typing(&self, t: &Arc<TypingEvent>) {
        let mut targets = Vec::new();
        {
            let routes = self.lock();
            if !t.private {
                if let Some(list) = routes.contacts.get(&t.contact_id) {
                    targets.extend(list.iter().map(|e| e.mailbox.clone()));
                }
            }
            self.agent_targets(&routes, t.inbox_id, &mut targets);
        }
        for m in &targets {
            m.push_typing(t);
        }
    }

    /// Routes every logged event in `(routed_upto, upto]`. If the log
    /// cannot be read, every stream is told it lagged (each then reads
    /// the log itself) rather than miss anything.
    fn catch_up(&self, upto: u64) {
        loop {
            let after = self.routed_upto.load(Ordering::Acquire);
            if after >= upto {
                return;
            }
            match self.store.events_between(after, upto, CATCH_UP_BATCH) {
                Ok(batch) if !batch.is_empty() => {
                    for ev in batch {
                        self.route_event(&Arc::new(ev));
                    }
                }
                Ok(_) => {
                    // A hole below `upto` (should not happen): move on
                    // rather than spin.
                    self.skip_to(upto);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the dispatcher could not read the log; every stream catches up itself");
                    self.skip_to(upto);
                    return;
                }
            }
        }
    }

    /// Marks `(routed_upto, upto]` as routed by telling every stream it
    /// lagged.
    fn skip_to(&self, upto: u64) {
        let routes = self.lock();
        if upto > self.routed_upto.load(Ordering::Acquire) {
            self.routed_upto.store(upto, Ordering::Release);
        }
        for list in routes.contacts.values() {
            list.iter().for_each(|e| e.mailbox.mark_lagged());
        }
        for a in routes.agents.values() {
            a.streams.iter().for_each(|e| e.mailbox.mark_lagged());
        }
    }

    /// The dispatcher: receives each durable event and typing signal once
    /// and routes it, until the feeds close or the server stops. Run it
    /// once per server.
    #[tracing::instrument(skip_all)]
    pub async fn run(
        self: Arc<Self>,
        typing: broadcast::Receiver<Arc<TypingEvent>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut events = self.store.durability().subscribe();
        let mut typing = typing;
        // What was published before the subscription is in the log.
        self.catch_up(self.published_upto());
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        break;
                    }
                }
                r = events.recv() => match r {
                    Ok(ev) => {
                        self.catch_up(ev.id.get().saturating_sub(1));
                        self.route_event(&ev);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.catch_up(self.published_upto());
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                r = typing.recv() => match r {
                    Ok(t) => self.route_typing(&t),
                    // Typing signals are ephemeral: a missed one is gone.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventPayload;

    fn event(id: u64, inbox_id: u64, contact_id: u64, team_only: bool) -> Arc<EventRecord> {
        let contact_id = ContactId::new(contact_id);
        Arc::new(EventRecord {
            id: crate::domain::ids::EventId::new(id),
            inbox_id: InboxId::new(inbox_id),
            contact_id,
            at: 0,
            payload: EventPayload::ContactDeleted { contact_id },
            team_only,
        })
    }

    fn drain(m: &Mailbox) -> Vec<String> {
        std::iter::from_fn(|| m.take())
            .map(|l| match l {
                Live::Event(e) => format!("event {}", e.id),
                Live::Typing(_) => "typing".into(),
                Live::Lagged => "lagged".into(),
            })
            .collect()
    }

    #[test]
    fn a_full_mailbox_says_lagged_instead_of_queueing_more() {
        let m = Mailbox::new(2);
        m.push_event(&event(1, 1, 1, false));
        m.push_event(&event(2, 1, 1, false));
        m.push_event(&event(3, 1, 1, false));
        m.push_event(&event(4, 1, 1, false));
        assert_eq!(drain(&m), ["lagged"]);
        m.push_event(&event(5, 1, 1, false));
        assert_eq!(drain(&m), ["event 5"]);
    }

    #[test]
    fn events_reach_their_contact_unless_private_and_admins_always() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_for_test(dir.path());
        let fanout = Arc::new(Fanout::new(store, 16));
        let mine = fanout.register(Viewer::Contact {
            id: ContactId::new(7),
        });
        let other = fanout.register(Viewer::Contact {
            id: ContactId::new(8),
        });
        // No such agent in the store: not an admin, a member of nothing.
        let agent = fanout.register(Viewer::Agent {
            id: AgentId::new(99),
            admin: false,
        });
        assert_eq!(fanout.route_event(&event(1, 1, 7, false)), 1);
        assert_eq!(fanout.route_event(&event(2, 1, 7, true)), 0);
        // Already routed ids are not routed again.
        assert_eq!(fanout.route_event(&event(1, 1, 7, false)), 0);
        assert_eq!(drain(&mine.mailbox), ["event 1"]);
        assert!(drain(&other.mailbox).is_empty());
        assert!(drain(&agent.mailbox).is_empty());

        fanout.role_changed(AgentId::new(99), Role::Admin);
        assert_eq!(fanout.route_event(&event(3, 1, 8, true)), 1);
        assert_eq!(drain(&agent.mailbox), ["event 3"]);
        {
            // While a role is being written, every agent stream is woken.
            fanout.role_changed(AgentId::new(99), Role::Agent);
            let _writing = fanout.role_change();
            assert_eq!(fanout.route_event(&event(4, 2, 8, true)), 1);
        }
        assert_eq!(fanout.route_event(&event(5, 2, 8, true)), 0);
        assert_eq!(drain(&agent.mailbox), ["event 4"]);

        drop(mine);
        assert_eq!(fanout.route_event(&event(6, 1, 7, false)), 0);
        assert_eq!(other.routed_before(), 0);
        assert_eq!(other.upto(), 6);
    }
}
