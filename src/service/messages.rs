//! Messages in a conversation: the one write path of a message (a
//! contact's, an agent's reply or note, a reply `via` another channel, with
//! the files staged by the upload), the agent's read of a thread, a failed
//! delivery put back in the outbox, typing signals and read positions.

use crate::domain::ids::{ContactId, ConversationId, InboxId};
use crate::domain::{time, AuthorType, ConversationStatus, Invalid, MessageBody};
use crate::error::{ApiError, ApiResult};
use crate::metrics;
use crate::store::{
    AgentRecord, AttachmentRecord, Author, ConversationRecord, MessagePage, MessageRecord,
    NewMessage, Reader, StoreError,
};

use super::access::InboxScope;
use super::files::Staged;
use super::realtime::TypingEvent;
use super::Services;

/// A message as submitted, once its body is read: what [`Services::post_message`]
/// needs, whichever surface (API, workspace, messenger) received it.
#[derive(Default)]
pub struct NewPost {
    /// The text (may be empty when files are attached).
    pub body: String,
    /// A team-only note (ignored for contacts).
    pub private: bool,
    /// The files, under temporary names until the message is stored
    /// (removed if it is not).
    pub files: Staged,
    /// Agents: the inbox (channel) to send the reply through instead of
    /// the conversation's own, as sent.
    pub via: Option<String>,
}

/// A message ready to be stored: its checked text and its files, named by
/// their ids. Call `files.keep()` once the message is stored; dropped
/// before, the files go.
pub struct Prepared {
    /// The checked text (empty only when files come with it).
    pub body: String,
    /// What the message record names.
    pub attachments: Vec<AttachmentRecord>,
    /// The files on disk.
    pub files: Staged,
}

/// An attachment the disk would not take: logged, and a 503 for the client.
pub fn io_failure(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "could not store an attachment");
    ApiError::Unavailable
}

/// Checks the text (which may be empty only when files come with it) and
/// gives the received files their ids, right before the message is written.
pub async fn prepare(body: String, files: Staged) -> ApiResult<Prepared> {
    let body = if files.is_empty() || !body.trim().is_empty() {
        MessageBody::parse(body)?.into_inner()
    } else {
        String::new()
    };
    if files.is_empty() {
        return Ok(Prepared {
            body,
            attachments: Vec::new(),
            files,
        });
    }
    let (files, attachments) = tokio::task::spawn_blocking(move || {
        let mut files = files;
        let r = files.commit();
        (files, r)
    })
    .await
    .map_err(|_| ApiError::Internal)?;
    Ok(Prepared {
        body,
        attachments: attachments.map_err(io_failure)?,
        files,
    })
}

/// A store write on a message that is gone (or never was) is a 404.
fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound,
        e => e.into(),
    }
}

impl Services {
    /// Stores a message and counts it; the one write path for both sides.
    /// A note is an agent's only; `via` (agents, not notes) must name an
    /// inbox the author reaches where the contact has an address, else the
    /// reply is refused exactly as for an inbox that does not exist. The
    /// caller has checked that the author may write in `c`, the
    /// conversation as it read it (read once per post and passed down).
    #[tracing::instrument(skip_all, fields(conversation = %c.id, author = ?author.kind))]
    pub async fn post_message(
        &self,
        c: &ConversationRecord,
        author: Author,
        post: NewPost,
    ) -> ApiResult<MessageRecord> {
        let private = post.private && author.kind == AuthorType::Agent;
        let via = match post.via.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() && author.kind == AuthorType::Agent && !private => {
                let id = InboxId::parse(v);
                if id == Some(c.inbox_id) {
                    None
                } else {
                    // The author's inboxes as stored now; one it does not reach
                    // is refused exactly like one that does not exist.
                    let scope = match author.agent_id() {
                        Some(agent) => InboxScope::of_agent(&self.store, agent)?,
                        None => InboxScope::Members(Vec::new()),
                    };
                    let ok = super::conversations::reply_options(&self.store, c, &scope)?
                        .into_iter()
                        .any(|(i, _)| Some(i.id) == id);
                    if !ok {
                        return Err(Invalid::new(
                            "via",
                            "the contact has no address in that inbox's channel",
                        )
                        .into());
                    }
                    id
                }
            }
            _ => None,
        };
        let prepared = prepare(post.body, post.files).await?;
        self.persist_message(c, author, private, via, prepared)
            .await
    }

    /// The one write of a checked message, whoever wrote it: its
    /// [`crate::store::Effects`] (a send, a notification) decided here and
    /// persisted by the store in the same write, then its staged files
    /// kept and the message counted. `c` is the conversation as the caller
    /// read it; the store's write reads it again in its transaction.
    pub(super) async fn persist_message(
        &self,
        c: &ConversationRecord,
        author: Author,
        private: bool,
        via: Option<InboxId>,
        prepared: Prepared,
    ) -> ApiResult<MessageRecord> {
        let kind = author.kind;
        let new = NewMessage {
            author,
            body: prepared.body,
            private,
            attachments: prepared.attachments,
            via,
        };
        let now = time::now();
        let effects = self.message_effects(c, &new, now)?;
        let (msg, conv) = self
            .store
            .post_message(c.id, new, effects, now)
            .await
            .map_err(not_found)?;
        prepared.files.keep();
        metrics::global().message_created(kind);
        if c.status != ConversationStatus::Open && conv.status == ConversationStatus::Open {
            // The contact reopened it.
            self.router.route().await;
        }
        if kind == AuthorType::Contact {
            self.out_of_office(&conv).await;
        }
        Ok(msg)
    }

    /// A reply or note by an agent in a conversation it reaches.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, conversation = %conversation_id))]
    pub async fn agent_post(
        &self,
        agent: &AgentRecord,
        conversation_id: ConversationId,
        post: NewPost,
    ) -> ApiResult<MessageRecord> {
        let c = self.visible_conversation(agent, conversation_id)?;
        self.post_message(&c, Author::agent(agent), post).await
    }

    /// A page of a thread the agent reaches, notes included when the page
    /// asks for them.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, conversation = %conversation_id))]
    pub fn agent_messages(
        &self,
        agent: &AgentRecord,
        conversation_id: ConversationId,
        page: MessagePage,
    ) -> ApiResult<Vec<MessageRecord>> {
        let c = self.visible_conversation(agent, conversation_id)?;
        Ok(self.store.messages(c.id, page)?)
    }

    /// The message before `seq` in its thread (none for the first), which
    /// decides whether a day separator goes before a message shown alone.
    pub fn message_before(
        &self,
        conversation_id: ConversationId,
        seq: u64,
    ) -> ApiResult<Option<MessageRecord>> {
        Ok(match seq {
            0 | 1 => None,
            seq => self.store.message(conversation_id, seq - 1)?,
        })
    }

    /// The channel name a message came or went through: the inbox of its
    /// `via`, else its conversation's (none when neither is found).
    pub fn message_channel(
        &self,
        conversation_id: ConversationId,
        via: Option<InboxId>,
    ) -> ApiResult<Option<String>> {
        let inbox = match via {
            Some(v) => Some(v),
            None => self
                .store
                .conversation(conversation_id)?
                .map(|c| c.inbox_id),
        };
        Ok(match inbox {
            Some(i) => self.store.inbox(i)?.map(|i| i.channel),
            None => None,
        })
    }

    /// Puts a failed channel reply back in the outbox (404 for a message
    /// that is not there or did not fail through a channel).
    #[tracing::instrument(skip_all, fields(agent = %agent.id, conversation = %conversation_id, seq))]
    pub async fn retry_delivery(
        &self,
        agent: &AgentRecord,
        conversation_id: ConversationId,
        seq: u64,
    ) -> ApiResult<MessageRecord> {
        let c = self.visible_conversation(agent, conversation_id)?;
        self.store
            .retry_delivery(c.id, seq, time::now())
            .await
            .map_err(not_found)
    }

    /// Tells the contact (unless it is a note) and colleagues that the
    /// agent is typing, or stopped.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, conversation = %conversation_id))]
    pub fn agent_typing(
        &self,
        agent: &AgentRecord,
        conversation_id: ConversationId,
        typing: bool,
        private: bool,
    ) -> ApiResult<()> {
        let c = self.visible_conversation(agent, conversation_id)?;
        self.typing.publish(TypingEvent::in_conversation(
            &c,
            Author::agent(agent),
            typing,
            private,
        ));
        Ok(())
    }

    /// The team has read up to `seq` (the newest message when `None`); a
    /// position the team has passed already writes nothing.
    #[tracing::instrument(skip_all, fields(agent = %agent.id, conversation = %conversation_id, seq))]
    pub async fn agent_read(
        &self,
        agent: &AgentRecord,
        conversation_id: ConversationId,
        seq: Option<u64>,
    ) -> ApiResult<()> {
        let c = self.visible_conversation(agent, conversation_id)?;
        let seq = seq.unwrap_or(c.last_seq);
        if seq > c.agent_read_seq {
            let reader = Reader {
                kind: AuthorType::Agent,
                id: agent.id.get(),
            };
            self.store.mark_read(c.id, reader, seq, time::now()).await?;
        }
        Ok(())
    }

    /// Whether the disk has room for `bytes` more of uploads above its
    /// free-space reserve (507 when it does not).
    pub fn check_room(&self, bytes: u64) -> ApiResult<()> {
        Ok(self.store.check_room(bytes)?)
    }

    /// Counts `bytes` more of an upload as it arrives: the contact's and
    /// the address's hourly quotas, then the free-space reserve; each
    /// refuses before the bytes are written.
    pub fn account_upload(
        &self,
        contact: Option<ContactId>,
        address: Option<std::net::IpAddr>,
        bytes: u64,
    ) -> ApiResult<()> {
        if let Some(c) = contact {
            self.limits
                .upload_contact
                .take(&c, bytes)
                .map_err(ApiError::TooManyRequests)?;
        }
        if let Some(a) = address {
            self.limits
                .upload_address
                .take(&a, bytes)
                .map_err(ApiError::TooManyRequests)?;
        }
        self.check_room(bytes)
    }

    /// Somewhere to receive a message's files, under temporary names in
    /// the store's files folder.
    pub fn staging(&self) -> Staged {
        Staged::new(self.store.files_dir())
    }
}
