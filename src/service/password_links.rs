//! Links that let an agent choose a password without knowing one:
//! invitations (an admin adds someone by email; they set their own
//! password) and resets ("Forgot password" on the sign-in page, or a link
//! an admin hands over).
//!
//! A link needs no stored state: its token is an HMAC, under the server's
//! secret, of the agent, the purpose, when it was issued and the password
//! hash it replaces. So it expires by itself, and it works once: setting
//! the password changes the hash, which retires the link (and every other
//! link issued for the old hash), and the change is written only while
//! the hash is still the one the link was made for
//! ([`Store::set_agent_password_if`]), so two racing uses cannot both win.
//!
//! An invited agent's stored hash is `invite:` and random text: no
//! password verifies against it, so nobody signs in as them before they
//! chose one.

use std::net::IpAddr;

use crate::channels::email::smtp;
use crate::domain::ids::AgentId;
use crate::domain::{time, Email, Invalid, Name, Password, Role};
use crate::error::{ApiError, ApiResult};
use crate::service::auth::random_string;
use crate::service::sessions::{CredentialKind, SignedIn};
use crate::store::{AgentRecord, INVITED_HASH_PREFIX};

use super::agents::{hash_blocking, require_admin};
use super::Services;

/// How long an invitation stays valid.
pub const INVITE_TTL_SECS: i64 = 7 * 24 * 3600;
/// How long a reset link stays valid.
pub const RESET_TTL_SECS: i64 = 3600;

/// The one refusal of a link that is no good (forged, expired, used, or
/// its agent deactivated): the page shows "expired" for it.
fn link_gone() -> Invalid {
    Invalid::new("t", "this link has expired or has been used already")
}

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Choose a first password (an invitation).
    Invite,
    /// Replace a forgotten password.
    Reset,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Self::Invite => "i",
            Self::Reset => "r",
        }
    }

    /// How long the link works, in words for its mail.
    fn lasts(self) -> &'static str {
        match self {
            Self::Invite => "7 days",
            Self::Reset => "an hour",
        }
    }

    fn ttl_secs(self) -> i64 {
        match self {
            Self::Invite => INVITE_TTL_SECS,
            Self::Reset => RESET_TTL_SECS,
        }
    }
}

/// A new agent invited by email: no password, they choose one.
pub struct NewInvite {
    /// Display name.
    pub name: String,
    /// Sign-in email, where the invitation goes.
    pub email: String,
    /// `admin` or `agent`; none means `agent`.
    pub role: Option<String>,
}

/// A link handed out, and whether it was also mailed.
pub struct IssuedLink {
    /// The agent it is for.
    pub agent: AgentRecord,
    /// The link itself (absolute, under `NATTER_BASE_URL`).
    pub url: String,
    /// `Ok` once mailed; `Err` with the reason when it could not be (no
    /// mail server, or the server refused): the admin copies the link.
    pub mailed: Result<(), String>,
}

/// What a valid link stands for, for the page that asks for a password.
pub struct LinkHolder {
    /// The agent.
    pub agent: AgentRecord,
    /// Invitation or reset.
    pub purpose: Purpose,
}

/// The parts of a token: `<tag><agent>.<issued secs>.<mac>`.
fn parse_token(token: &str) -> Option<(Purpose, AgentId, i64, &str)> {
    let mut parts = token.trim().splitn(3, '.');
    let head = parts.next()?;
    let issued = parts.next()?.parse::<i64>().ok()?;
    let mac = parts.next()?;
    let purpose = match head.get(..1)? {
        "i" => Purpose::Invite,
        "r" => Purpose::Reset,
        _ => return None,
    };
    let id = head.get(1..)?.parse::<u64>().ok()?;
    Some((purpose, AgentId::new(id), issued, mac))
}

fn mac_of(
    secret: &[u8],
    purpose: Purpose,
    id: AgentId,
    issued: i64,
    password_hash: &str,
) -> String {
    super::notify::link_token(
        secret,
        &format!("agent-link:{}:{id}:{issued}:{password_hash}", purpose.tag()),
    )
}

impl Services {
    fn now_secs(&self) -> i64 {
        self.config.clock.now() / 1_000_000
    }

    async fn link_for(&self, agent: &AgentRecord, purpose: Purpose) -> ApiResult<String> {
        let secret = self.store.server_secret().await?;
        let issued = self.now_secs();
        let mac = mac_of(&secret, purpose, agent.id, issued, &agent.password_hash);
        Ok(format!(
            "{}/password/set?t={}{}.{issued}.{mac}",
            self.config.base_url,
            purpose.tag(),
            agent.id.get()
        ))
    }

    /// Mails `text` to an agent through natter's outgoing mail server.
    async fn mail_agent(
        &self,
        agent: &AgentRecord,
        subject: &str,
        text: String,
    ) -> Result<(), String> {
        let Some(settings) = super::notify::outgoing_mail(
            &self.store,
            self.config.smtp.as_ref(),
            self.http.allow_private,
        ) else {
            return Err("no mail server is set".into());
        };
        let mail = super::notify::plain_mail(
            &settings,
            agent.email.clone(),
            Some(agent.name.clone()),
            subject,
            text,
            "agent",
        );
        smtp::send(&settings, &mail).await.map_err(|e| e.message)
    }

    /// Adds an agent without a password and mails them a link to choose
    /// one (admins). When no mail can be sent the link is still returned,
    /// for the admin to hand over.
    #[tracing::instrument(skip_all, fields(by = %actor.id))]
    pub async fn invite_agent(&self, actor: &AgentRecord, new: NewInvite) -> ApiResult<IssuedLink> {
        require_admin(actor)?;
        let email = Email::parse(&new.email)?.into_inner();
        let name = Name::parse(&new.name, "name")?.into_inner();
        let role = Role::parse(new.role.as_deref().unwrap_or("agent"))?;
        let placeholder = format!("{INVITED_HASH_PREFIX}{}", random_string(16));
        let agent = self
            .store
            .create_agent(name, email, role, placeholder, time::now())
            .await?;
        tracing::info!(agent = %agent.id, by = %actor.id, "agent invited");
        self.send_invitation(actor, agent).await
    }

    /// A fresh link for an agent (admins): an invitation again while they
    /// have not chosen a password, else a reset link. Mailed when mail can
    /// be sent.
    #[tracing::instrument(skip_all, fields(agent = %id, by = %actor.id))]
    pub async fn agent_link(&self, actor: &AgentRecord, id: AgentId) -> ApiResult<IssuedLink> {
        require_admin(actor)?;
        let agent = self.store.agent(id)?.ok_or(ApiError::NotFound)?;
        if !agent.active {
            return Err(Invalid::new("active", "reactivate this agent first").into());
        }
        if agent.invited() {
            return self.send_invitation(actor, agent).await;
        }
        let url = self.link_for(&agent, Purpose::Reset).await?;
        let text = format!(
            "{} made a link for you to choose a new password for Natter:\n\n{url}\n\nIt works once, for {}. If you did not ask for it, ignore this mail: your password stays as it is.\n",
            actor.name,
            Purpose::Reset.lasts()
        );
        let mailed = self
            .mail_agent(&agent, "Choose a new Natter password", text)
            .await;
        Ok(IssuedLink { agent, url, mailed })
    }

    async fn send_invitation(
        &self,
        actor: &AgentRecord,
        agent: AgentRecord,
    ) -> ApiResult<IssuedLink> {
        let url = self.link_for(&agent, Purpose::Invite).await?;
        let text = format!(
            "{} invited you to answer customers with Natter.\n\nChoose your password here (the link works once, for {}):\n\n{url}\n\nYou sign in with this address, {}.\n",
            actor.name,
            Purpose::Invite.lasts(),
            agent.email
        );
        let mailed = self
            .mail_agent(&agent, "You're invited to Natter", text)
            .await;
        if let Err(e) = &mailed {
            tracing::info!(agent = %agent.id, reason = %e, "invitation not mailed; the admin hands the link over");
        }
        Ok(IssuedLink { agent, url, mailed })
    }

    /// "Forgot password": mails a reset link when `email` belongs to an
    /// active agent. Says nothing about whether it does (the caller shows
    /// the same answer either way); limited per address and per recipient
    /// so it cannot be used to flood anyone's mailbox.
    #[tracing::instrument(skip_all, fields(%ip))]
    pub async fn forgot_password(&self, email: &str, ip: IpAddr) -> ApiResult<()> {
        let email = email.trim().to_lowercase();
        self.limits
            .password_mail(ip, &email)
            .map_err(ApiError::TooManyRequests)?;
        let Some(agent) = self.store.agent_by_email(&email)?.filter(|a| a.active) else {
            tracing::info!(%ip, "password reset asked for an unknown address");
            return Ok(());
        };
        let purpose = if agent.invited() {
            Purpose::Invite
        } else {
            Purpose::Reset
        };
        let url = self.link_for(&agent, purpose).await?;
        let text = format!(
            "Someone (hopefully you) asked to choose a new Natter password for {}.\n\n{url}\n\nThe link works once, for {}. If it was not you, ignore this mail: your password stays as it is.\n",
            agent.email,
            purpose.lasts()
        );
        match self
            .mail_agent(&agent, "Choose a new Natter password", text)
            .await
        {
            Ok(()) => tracing::info!(agent = %agent.id, %ip, "password reset link mailed"),
            Err(e) => {
                tracing::warn!(agent = %agent.id, %ip, reason = %e, "password reset link not mailed")
            }
        }
        Ok(())
    }

    /// The agent a link is for, while it is valid (genuine, not expired,
    /// not used, the agent active); else [`link_gone`] (an invalid `t`).
    pub async fn password_link(&self, token: &str) -> ApiResult<LinkHolder> {
        let (purpose, id, issued, mac) = parse_token(token).ok_or_else(link_gone)?;
        let age = self.now_secs() - issued;
        if !(0..=purpose.ttl_secs()).contains(&age) {
            return Err(link_gone().into());
        }
        let agent = self
            .store
            .agent(id)?
            .filter(|a| a.active)
            .ok_or_else(link_gone)?;
        let secret = self.store.server_secret().await?;
        let want = mac_of(&secret, purpose, id, issued, &agent.password_hash);
        if !crate::channels::secret_eq(mac, &want) {
            return Err(link_gone().into());
        }
        Ok(LinkHolder { agent, purpose })
    }

    /// Sets the password a valid link allows, once; ends every session
    /// and token the agent had and signs this browser in.
    #[tracing::instrument(skip_all, fields(%ip))]
    pub async fn set_password_by_link(
        &self,
        token: &str,
        password: String,
        ip: IpAddr,
    ) -> ApiResult<SignedIn> {
        let holder = self.password_link(token).await?;
        let password = Password::parse(password)?;
        let hash = hash_blocking(password).await?;
        let agent = holder.agent;
        self.store
            .set_agent_password_if(agent.id, Some(&agent.password_hash), hash, time::now())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => ApiError::from(link_gone()),
                e => e.into(),
            })?;
        let credential = self
            .issue_agent_credential(agent.id, CredentialKind::Session)
            .await?;
        tracing::info!(agent = %agent.id, %ip, purpose = ?holder.purpose, "password set from a link; agent signed in");
        Ok(SignedIn { agent, credential })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_their_own_shape() {
        let (p, id, at, mac) = parse_token("i42.1700000000.abcd").expect("parses");
        assert_eq!(
            (p, id.get(), at, mac),
            (Purpose::Invite, 42, 1_700_000_000, "abcd")
        );
        assert_eq!(parse_token("r7.1.x").map(|t| t.0), Some(Purpose::Reset));
        for bad in ["", "x1.2.3", "i.2.3", "i1.two.3", "i1.2", "i-1.2.3"] {
            assert!(parse_token(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_link_is_bound_to_the_hash_it_replaces() {
        let s = b"server secret";
        let a = mac_of(s, Purpose::Reset, AgentId::new(3), 10, "hash-1");
        assert_eq!(a, mac_of(s, Purpose::Reset, AgentId::new(3), 10, "hash-1"));
        assert_ne!(a, mac_of(s, Purpose::Reset, AgentId::new(3), 10, "hash-2"));
        assert_ne!(a, mac_of(s, Purpose::Invite, AgentId::new(3), 10, "hash-1"));
        assert_ne!(a, mac_of(s, Purpose::Reset, AgentId::new(4), 10, "hash-1"));
        assert_ne!(a, mac_of(s, Purpose::Reset, AgentId::new(3), 11, "hash-1"));
    }
}
