//! Rate limits and sign-in lockouts, on the `governor` crate (GCRA).
//! `actix-governor` is GPL-3.0 and must not enter the tree.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::ServeConfig;
use crate::domain::ids::ContactId;

/// A keyed limit: `check` answers `Err(seconds)` when the key must wait.
pub struct Limit<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Limit<K> {
    /// `per_minute` requests a minute with the same burst; 0 disables.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// `per_hour` requests an hour with the same burst; 0 disables. For
    /// what must stay rare even when spread out (mails to a person).
    pub fn per_hour(per_hour: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_hour).map(|n| RateLimiter::keyed(Quota::per_hour(n))),
        }
    }

    /// Takes one request's worth; `Err` carries the seconds to wait.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        l.check_key(key)
            .map_err(|nu| nu.wait_time_from(DefaultClock::default().now()).as_secs() + 1)
    }

    /// Forgets keys that are back to full allowance.
    pub fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
        }
    }
}

/// Counts failures (not attempts) and locks a key out for a fixed time once
/// they exceed the allowance, so a correct password cannot be tried during
/// the lockout either.
pub struct Lockout<K: Hash + Eq + Clone> {
    failures: DefaultKeyedRateLimiter<K>,
    locked: Mutex<HashMap<K, Instant>>,
    period: Duration,
}

impl<K: Hash + Eq + Clone> Lockout<K> {
    /// Allows `max` failures, forgotten at `max` per `period`; beyond that
    /// the key is locked for `period`.
    pub fn new(max: u32, period: Duration) -> Self {
        let max = NonZeroU32::new(max).unwrap_or(NonZeroU32::MIN);
        let per_cell = period / max.get();
        let quota = Quota::with_period(per_cell.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(max);
        Self {
            failures: RateLimiter::keyed(quota),
            locked: Mutex::new(HashMap::new()),
            period,
        }
    }

    /// `Err(seconds)` while the key is locked out.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        let Ok(mut locked) = self.locked.lock() else {
            return Ok(());
        };
        match locked.get(key) {
            Some(until) if *until > Instant::now() => Err((*until - Instant::now()).as_secs() + 1),
            Some(_) => {
                locked.remove(key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Records a failure; `Err(seconds)` if that locked the key out.
    pub fn fail(&self, key: &K) -> Result<(), u64> {
        if self.failures.check_key(key).is_ok() {
            return Ok(());
        }
        if let Ok(mut locked) = self.locked.lock() {
            locked.insert(key.clone(), Instant::now() + self.period);
        }
        Err(self.period.as_secs().max(1))
    }

    /// Forgets expired lockouts and idle counters.
    pub fn prune(&self) {
        self.failures.retain_recent();
        if let Ok(mut locked) = self.locked.lock() {
            let now = Instant::now();
            locked.retain(|_, until| *until > now);
        }
    }
}

/// Bytes per key per hour (uploads): a fixed one-hour window per key,
/// started by its first bytes. Once the allowance is spent, `take` answers
/// `Err(seconds)` until the window ends.
pub struct ByteQuota<K: Hash + Eq + Clone> {
    per_hour: u64,
    used: Mutex<HashMap<K, (Instant, u64)>>,
}

/// The window of a [`ByteQuota`].
const QUOTA_WINDOW: Duration = Duration::from_secs(60 * 60);

impl<K: Hash + Eq + Clone> ByteQuota<K> {
    /// `per_hour` bytes an hour; 0 disables.
    pub fn per_hour(per_hour: u64) -> Self {
        Self {
            per_hour,
            used: Mutex::new(HashMap::new()),
        }
    }

    fn retry(start: Instant) -> u64 {
        (start + QUOTA_WINDOW)
            .saturating_duration_since(Instant::now())
            .as_secs()
            + 1
    }

    /// Counts `bytes` received; `Err(seconds)` if they go past the
    /// allowance (the bytes are counted all the same: received is spent).
    pub fn take(&self, key: &K, bytes: u64) -> Result<(), u64> {
        if self.per_hour == 0 {
            return Ok(());
        }
        let Ok(mut used) = self.used.lock() else {
            return Ok(());
        };
        let entry = used.entry(key.clone()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= QUOTA_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(bytes);
        if entry.1 > self.per_hour {
            return Err(Self::retry(entry.0));
        }
        Ok(())
    }

    /// Forgets keys whose window is over.
    pub fn prune(&self) {
        if let Ok(mut used) = self.used.lock() {
            used.retain(|_, (start, _)| start.elapsed() < QUOTA_WINDOW);
        }
    }
}

/// Mails natter sends at a visitor's request (email confirmations), per
/// contact and per recipient, an hour: enough to fix a typo, too few to
/// bomb anyone.
pub const VISITOR_MAILS_PER_HOUR: u32 = 3;
/// The same per client address (a household or office shares one).
pub const VISITOR_MAILS_PER_ADDRESS_PER_HOUR: u32 = 10;

/// Several limits charged at once: refused with the longest wait among
/// them (every one was charged either way, so retrying against one limit
/// does not help).
fn longest_wait<const N: usize>(waits: [Result<(), u64>; N]) -> Result<(), u64> {
    match waits.iter().filter_map(|w| w.err()).max() {
        Some(wait) => Err(wait),
        None => Ok(()),
    }
}

/// Every limit of the server.
pub struct Limits {
    /// Failed sign-ins per account (normalised email) from one client
    /// address: an attacker locks out only their own tries at the account,
    /// never its owner signing in from elsewhere.
    pub login_account: Lockout<(String, IpAddr)>,
    /// Failed sign-ins per client address.
    pub login_address: Lockout<IpAddr>,
    /// New contacts (and resume links) per client address.
    pub contacts: Limit<IpAddr>,
    /// Messages per contact.
    pub contact_messages: Limit<ContactId>,
    /// Searches per caller: (0 agent / 1 contact, id).
    pub searches: Limit<(u8, u64)>,
    /// Attachment bytes per contact per hour.
    pub upload_contact: ByteQuota<ContactId>,
    /// Attachment bytes per client address per hour (contacts and people
    /// writing their first message).
    pub upload_address: ByteQuota<IpAddr>,
    /// Mails sent at a visitor's request, per contact.
    pub visitor_mails_contact: Limit<ContactId>,
    /// Mails sent at a visitor's request, per client address.
    pub visitor_mails_address: Limit<IpAddr>,
    /// Mails sent at a visitor's request, per recipient (lower-case), so
    /// many contacts or addresses together cannot bomb one person.
    pub visitor_mails_recipient: Limit<String>,
    /// "Forgot password" mails per client address.
    pub password_mails_address: Limit<IpAddr>,
    /// "Forgot password" mails per recipient (lower-case).
    pub password_mails_recipient: Limit<String>,
}

impl Limits {
    /// The limits a configuration asks for.
    pub fn from_config(c: &ServeConfig) -> Self {
        let period = Duration::from_secs(c.login_lockout_secs);
        Self {
            login_account: Lockout::new(c.login_max_failures, period),
            // An address may try a few accounts (an office behind one NAT).
            login_address: Lockout::new(c.login_max_failures.saturating_mul(4), period),
            contacts: Limit::per_minute(c.contacts_per_minute),
            contact_messages: Limit::per_minute(c.contact_messages_per_minute),
            searches: Limit::per_minute(c.searches_per_minute),
            upload_contact: ByteQuota::per_hour(c.upload_bytes_per_hour_contact),
            upload_address: ByteQuota::per_hour(c.upload_bytes_per_hour_address),
            visitor_mails_contact: Limit::per_hour(VISITOR_MAILS_PER_HOUR),
            visitor_mails_address: Limit::per_hour(VISITOR_MAILS_PER_ADDRESS_PER_HOUR),
            visitor_mails_recipient: Limit::per_hour(VISITOR_MAILS_PER_HOUR),
            password_mails_address: Limit::per_hour(VISITOR_MAILS_PER_ADDRESS_PER_HOUR),
            password_mails_recipient: Limit::per_hour(VISITOR_MAILS_PER_HOUR),
        }
    }

    /// `Err(seconds)` while sign-ins to `email` from `ip` are locked out
    /// (after repeated failures of that account from that address, or of
    /// any accounts from that address).
    pub fn login_check(&self, email: &str, ip: IpAddr) -> Result<(), u64> {
        self.login_account.check(&(email.to_owned(), ip))?;
        self.login_address.check(&ip)
    }

    /// Records a failed sign-in; `Err(seconds)` if it locked the address
    /// (for this account or for all) out.
    pub fn login_failed(&self, email: &str, ip: IpAddr) -> Result<(), u64> {
        let by_account = self.login_account.fail(&(email.to_owned(), ip));
        let by_address = self.login_address.fail(&ip);
        by_account.and(by_address)
    }

    /// Forgets idle keys so memory stays flat.
    pub fn prune(&self) {
        self.login_account.prune();
        self.login_address.prune();
        self.contacts.prune();
        self.contact_messages.prune();
        self.searches.prune();
        self.upload_contact.prune();
        self.upload_address.prune();
        self.visitor_mails_contact.prune();
        self.visitor_mails_address.prune();
        self.visitor_mails_recipient.prune();
        self.password_mails_address.prune();
        self.password_mails_recipient.prune();
    }

    /// Takes one "forgot password" mail from the limits of the asking
    /// address and of the recipient; `Err` carries the longest wait.
    pub fn password_mail(&self, address: IpAddr, recipient: &str) -> Result<(), u64> {
        longest_wait([
            self.password_mails_address.check(&address),
            self.password_mails_recipient
                .check(&recipient.trim().to_lowercase()),
        ])
    }

    /// Takes one visitor-requested mail from every limit it counts
    /// against; `Err` carries the longest wait. Each attempt is charged to
    /// all three, refused or not, so retrying against one limit does not
    /// help.
    pub fn visitor_mail(
        &self,
        contact: ContactId,
        address: IpAddr,
        recipient: &str,
    ) -> Result<(), u64> {
        longest_wait([
            self.visitor_mails_contact.check(&contact),
            self.visitor_mails_address.check(&address),
            self.visitor_mails_recipient
                .check(&recipient.trim().to_lowercase()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_starts_after_the_allowed_failures_and_blocks_even_correct_tries() {
        let l = Lockout::new(3, Duration::from_secs(60));
        let k = "ann".to_string();
        for _ in 0..3 {
            assert!(l.check(&k).is_ok());
            assert!(l.fail(&k).is_ok());
        }
        assert!(l.fail(&k).is_err());
        let wait = l.check(&k).err();
        assert!(wait.is_some_and(|s| s > 0 && s <= 61), "{wait:?}");
        assert!(l.check(&"bob".to_string()).is_ok());
    }

    #[test]
    fn a_byte_quota_refuses_past_its_allowance_per_key() {
        let q: ByteQuota<u64> = ByteQuota::per_hour(100);
        assert!(q.take(&1, 60).is_ok());
        let wait = q.take(&1, 60).err();
        assert!(wait.is_some_and(|s| s > 0 && s <= 3601), "{wait:?}");
        assert!(q.take(&1, 1).is_err(), "spent stays spent");
        assert!(q.take(&2, 100).is_ok());
        let off: ByteQuota<u64> = ByteQuota::per_hour(0);
        assert!(off.take(&1, u64::MAX).is_ok());
    }

    #[test]
    fn an_hourly_limit_waits_in_minutes_not_seconds() {
        let l: Limit<u64> = Limit::per_hour(2);
        assert!(l.check(&1).is_ok() && l.check(&1).is_ok());
        let wait = l.check(&1).err();
        assert!(wait.is_some_and(|s| s > 60 && s <= 1801), "{wait:?}");
        assert!(l.check(&2).is_ok(), "per key");
    }

    #[test]
    fn a_zero_limit_is_off() {
        let l: Limit<u64> = Limit::per_minute(0);
        for _ in 0..1000 {
            assert!(l.check(&1).is_ok());
        }
        let l: Limit<u64> = Limit::per_minute(2);
        assert!(l.check(&1).is_ok() && l.check(&1).is_ok());
        assert!(l.check(&1).is_err());
    }
}
