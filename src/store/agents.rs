//! Agents and their bearer tokens (stored only as SHA-256 hashes).

use super::keys::{self, u64_be};
use super::{abort, AgentRecord, Result, Store, StoreError, TokenRecord, Tree, Tx, TxResult};
use crate::domain::ids::AgentId;
use crate::domain::Role;

/// Whose token: agents and contacts keep their tokens in separate trees, so
/// a contact token can never pass as an agent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOwner {
    /// An agent's API token or session.
    Agent,
    /// A contact's token.
    Contact,
}

impl TokenOwner {
    fn trees(self) -> (Tree, Tree) {
        match self {
            Self::Agent => (Tree::TokenhashAgenttoken, Tree::AgentidTokenhash),
            Self::Contact => (Tree::TokenhashContacttoken, Tree::ContactidTokenhash),
        }
    }
}

/// The changes an admin may make to an agent.
#[derive(Debug, Default, Clone)]
pub struct AgentUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// Sound for new messages.
    pub notify_sound: Option<bool>,
    /// Push for new conversations.
    pub push_new_conversations: Option<bool>,
    /// Push for replies in the agent's conversations.
    pub push_replies: Option<bool>,
    /// Time zone (already checked to be a known IANA name).
    pub timezone: Option<String>,
    /// What the agent set in the workspace header.
    pub availability: Option<crate::domain::Availability>,
    /// Open conversations auto-assignment may give (already checked).
    pub capacity: Option<u32>,
}

/// Adds an agent inside a write; the email must be free.
fn insert_agent(
    tx: &mut Tx<'_>,
    name: &str,
    email: &str,
    role: Role,
    password_hash: &str,
) -> TxResult<AgentRecord> {
    if tx.contains(Tree::EmailAgentid, email.as_bytes())? {
        return abort(StoreError::Conflict(
            "an agent with this email already exists".into(),
        ));
    }
    let id = AgentId::new(tx.new_id()?);
    let agent = AgentRecord {
        id,
        name: name.to_owned(),
        email: email.to_owned(),
        role,
        password_hash: password_hash.to_owned(),
        active: true,
        created_at: tx.now,
        notify_sound: false,
        push_new_conversations: true,
        push_replies: true,
        timezone: None,
        availability: crate::domain::Availability::Online,
        capacity: super::DEFAULT_CAPACITY,
    };
    tx.put(Tree::AgentidAgent, &u64_be(id), &agent)?;
    tx.put_raw(Tree::EmailAgentid, email.as_bytes(), &u64_be(id))?;
    Ok(agent)
}

impl Store {
    /// Adds an agent; the email must be free.
    pub async fn create_agent(
        &self,
        name: String,
        email: String,
        role: Role,
        password_hash: String,
        now: i64,
    ) -> Result<AgentRecord> {
        self.write(now, |tx| {
            insert_agent(tx, &name, &email, role, &password_hash)
        })
        .await
    }

    /// Creates the first admin if `token_hash` is the one-time setup token
    /// stored under `meta[setup_key]`, and retires the token in the same
    /// write: of racing submissions exactly one creates an admin, the
    /// others get `None` (the token is no longer there for them).
    pub async fn create_first_admin(
        &self,
        setup_key: &str,
        token_hash: &[u8],
        name: String,
        email: String,
        password_hash: String,
        now: i64,
    ) -> Result<Option<AgentRecord>> {
        self.write(now, |tx| {
            let current = tx.get_raw(Tree::Meta, setup_key.as_bytes())?;
            let valid = current.is_some_and(|stored| {
                bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_slice(), token_hash))
            });
            if !valid {
                return Ok(None);
            }
            tx.del(Tree::Meta, setup_key.as_bytes())?;
            insert_agent(tx, &name, &email, Role::Admin, &password_hash).map(Some)
        })
        .await
    }

    /// One agent.
    pub fn agent(&self, id: AgentId) -> Result<Option<AgentRecord>> {
        self.get(Tree::AgentidAgent, &u64_be(id))
    }

    /// The agent signing in with this (normalised) email.
    pub fn agent_by_email(&self, email: &str) -> Result<Option<AgentRecord>> {
        match self.get_id(Tree::EmailAgentid, email.as_bytes())? {
            Some(id) => self.agent(AgentId::new(id)),
            None => Ok(None),
        }
    }

    /// Every agent, oldest first.
    pub fn agents(&self) -> Result<Vec<AgentRecord>> {
        self.tree(Tree::AgentidAgent)
            .iter()
            .values()
            .map(|v| super::decode(&v?))
            .collect()
    }

    /// Whether anyone can sign in yet (decides the first-run setup).
    pub fn has_agents(&self) -> Result<bool> {
        Ok(!self.tree(Tree::AgentidAgent).is_empty())
    }

    /// Changes name, role or active flag; deactivation revokes every token
    /// in the same write, so it takes effect at once.
    pub async fn update_agent(
        &self,
        id: AgentId,
        update: AgentUpdate,
        now: i64,
    ) -> Result<AgentRecord> {
        self.write(now, |tx| {
            let Some(mut agent) = tx.get::<AgentRecord>(Tree::AgentidAgent, &u64_be(id))? else {
                return abort(StoreError::NotFound);
            };
            if let Some(n) = &update.name {
                agent.name = n.clone();
            }
            if let Some(r) = update.role {
                agent.role = r;
            }
            if let Some(a) = update.active {
                agent.active = a;
            }
            if let Some(s) = update.notify_sound {
                agent.notify_sound = s;
            }
            if let Some(s) = update.push_new_conversations {
                agent.push_new_conversations = s;
            }
            if let Some(s) = update.push_replies {
                agent.push_replies = s;
            }
            if let Some(z) = &update.timezone {
                agent.timezone = Some(z.clone());
            }
            if let Some(a) = update.availability {
                agent.availability = a;
            }
            if let Some(c) = update.capacity {
                agent.capacity = c;
            }
            tx.put(Tree::AgentidAgent, &u64_be(id), &agent)?;
            if !agent.active {
                tx.revoke_all_tokens(TokenOwner::Agent, id)?;
            }
            Ok(agent)
        })
        .await
        .inspect(|_| {
            // A new role narrows (or widens) open streams at once.
            self.access_changed();
        })
    }

    /// Replaces the password hash and revokes every token of the agent.
    pub async fn set_agent_password(
        &self,
        id: AgentId,
        password_hash: String,
        now: i64,
    ) -> Result<()> {
        self.set_agent_password_if(id, None, password_hash, now)
            .await
    }

    /// [`Store::set_agent_password`], but only while the stored hash is
    /// still `expected` (when given), checked in the same write: of two
    /// uses of one invitation or reset link (which are bound to the hash
    /// they replace) exactly one succeeds, the other gets `Conflict`.
    pub async fn set_agent_password_if(
        &self,
        id: AgentId,
        expected: Option<&str>,
        password_hash: String,
        now: i64,
    ) -> Result<()> {
        self.write(now, |tx| {
            let Some(mut agent) = tx.get::<AgentRecord>(Tree::AgentidAgent, &u64_be(id))? else {
                return abort(StoreError::NotFound);
            };
            if expected.is_some_and(|e| e != agent.password_hash) {
                return abort(StoreError::Conflict(
                    "this link has been used already".into(),
                ));
            }
            agent.password_hash = password_hash.clone();
            tx.put(Tree::AgentidAgent, &u64_be(id), &agent)?;
            tx.revoke_all_tokens(TokenOwner::Agent, id)
        })
        .await?;
        self.access_changed();
        Ok(())
    }

    /// Stores a new token by its hash.
    pub async fn insert_token(
        &self,
        owner: TokenOwner,
        hash: [u8; 32],
        rec: TokenRecord,
    ) -> Result<()> {
        let (by_hash, by_owner) = owner.trees();
        self.write(rec.created_at, |tx| {
            tx.put(by_hash, &hash, &rec)?;
            tx.put_raw(by_owner, &keys::concat(&[&u64_be(rec.owner), &hash]), &[])?;
            Ok(())
        })
        .await
    }

    /// Looks a token up by its hash.
    pub fn token(&self, owner: TokenOwner, hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
        self.get(owner.trees().0, hash)
    }

    /// Revokes one token (logout).
    pub async fn revoke_token(&self, owner: TokenOwner, hash: [u8; 32], now: i64) -> Result<()> {
        let (by_hash, by_owner) = owner.trees();
        self.write(now, |tx| {
            if let Some(rec) = tx.get::<TokenRecord>(by_hash, &hash)? {
                tx.del(by_owner, &keys::concat(&[&u64_be(rec.owner), &hash]))?;
            }
            tx.del(by_hash, &hash)?;
            Ok(())
        })
        .await?;
        self.access_changed();
        Ok(())
    }
}

impl Tx<'_> {
    /// Revokes every token of one owner, in the write that makes them
    /// invalid (a deactivation, a new password), so no request can use one
    /// after that write is acknowledged.
    fn revoke_all_tokens(&mut self, owner: TokenOwner, id: AgentId) -> TxResult<()> {
        let (by_hash, by_owner) = owner.trees();
        for k in self.keys_under(by_owner, &u64_be(id))? {
            if let Some(hash) = k.get(8..) {
                self.del(by_hash, hash)?;
            }
            self.del(by_owner, &k)?;
        }
        Ok(())
    }
}
