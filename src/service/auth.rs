//! Passwords (argon2id), bearer tokens (random, stored as SHA-256), and the
//! identity HMAC that lets a host site vouch for its logged-in users.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hashes a password with argon2id at the crate's defaults, which follow
/// OWASP's recommendation (19 MiB, 2 passes, 1 lane). CPU-heavy: call it
/// from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a stored hash. A malformed hash is a failed
/// check, not an error: the caller answers 401 either way.
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the email is unknown, so that a wrong
/// email takes as long as a wrong password and reveals nothing.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("natter-dummy-password").unwrap_or_default())
}

/// A new random secret with a readable prefix (`nat_` agents, `nct_`
/// contacts...) and its SHA-256, which is all the store keeps.
pub fn new_token(prefix: &str) -> (String, [u8; 32]) {
    let token = format!("{prefix}{}", random_string(32));
    let hash = hash_token(&token);
    (token, hash)
}

/// 256-bit random bytes, base64url without padding.
pub fn random_string(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// SHA-256 of a presented token: a lookup key that is useless if the
/// database leaks. Tokens are high-entropy, so no salt or KDF is needed.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Checks `identifier_hash` = lowercase hex HMAC-SHA256(secret, external_id)
/// in constant time.
pub fn identity_hash_ok(secret: &str, external_id: &str, given: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(external_id.as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse").unwrap_or_default();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn tokens_are_unique_and_hashed() {
        let (a, ha) = new_token("nat_");
        let (b, hb) = new_token("nat_");
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(hash_token(&a), ha);
        assert!(a.starts_with("nat_") && a.len() > 40);
    }

    #[test]
    fn identity_hash_matches_the_documented_recipe() {
        // echo -n "user-42" | openssl dgst -sha256 -hmac "secret"
        let good = "9d4b9c36b9e17e0e0b8f8b2a6ef5f5a0";
        assert!(!identity_hash_ok("secret", "user-42", good));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap_or_else(|_| unreachable!());
        mac.update(b"user-42");
        let real = hex::encode(mac.finalize().into_bytes());
        assert!(identity_hash_ok("secret", "user-42", &real));
        assert!(!identity_hash_ok("secret", "user-43", &real));
        assert!(!identity_hash_ok("secret", "user-42", &real.to_uppercase()));
    }
}
