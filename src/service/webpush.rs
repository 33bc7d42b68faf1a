//! Web Push for natter: payload encryption and VAPID authentication, the
//! sending side only.
//!
//! Browsers only accept push messages whose body is encrypted for the
//! subscription (RFC 8291, using the `aes128gcm` content coding of RFC 8188)
//! and, for subscriptions made with an `applicationServerKey`, only from a
//! sender that proves it holds that key with a VAPID token (RFC 8292, an ES256
//! JWT). The RFC 8188 framing and AES-GCM come from `ece-native` (on the same
//! RustCrypto crates as the rest of natter, no OpenSSL); this module derives
//! the RFC 8291 input key from the ECDH secret, signs the VAPID token and
//! checks what browsers send us. The receiving side (decryption, VAPID
//! verification) lives with the tests that need it.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::{PublicKey, SecretKey};
use rand::rngs::OsRng;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Record size written into the `aes128gcm` header. RFC 8291 requires a
/// single record, and 4096 is what browsers and push services expect.
const RECORD_SIZE: u32 = 4096;
/// Length of an uncompressed SEC1 P-256 point (0x04 || x || y).
const PUBLIC_KEY_LEN: usize = 65;
/// Length of a raw P-256 private scalar.
const PRIVATE_KEY_LEN: usize = 32;
/// Length of the RFC 8188 salt and of the RFC 8291 auth secret.
const SALT_LEN: usize = 16;
/// AES-GCM authentication tag length.
const TAG_LEN: usize = 16;
/// salt (16) || rs (4) || idlen (1) || keyid (65).
const HEADER_LEN: usize = SALT_LEN + 4 + 1 + PUBLIC_KEY_LEN;
/// VAPID tokens we issue are valid for 12 hours.
const VAPID_VALIDITY_SECS: u64 = 12 * 60 * 60;
/// The fixed JOSE header of every VAPID token.
const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"ES256"}"#;

/// Largest plaintext [`encrypt`] accepts.
///
/// Push services only have to accept 4096-byte bodies (RFC 8030 §7.2 and
/// RFC 8291 §4); this is what is left after the header, the padding delimiter
/// and the tag.
pub const MAX_PLAINTEXT_LEN: usize = RECORD_SIZE as usize - HEADER_LEN - TAG_LEN - 1;

/// base64url that accepts input with or without `=` padding, because browsers
/// and client libraries disagree on whether to pad subscription keys.
const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// Standard base64, accepted as a fallback for keys that some older client
/// code stored with `+` and `/`.
const B64STD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Everything that can go wrong in this module.
///
/// Callers need to tell a bad subscription (drop it) from a bad local key
/// (configuration error), so each cause has its own variant; none of them
/// carries secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// A base64 field could not be decoded; names the field so logs say which.
    #[error("invalid base64 in {0}")]
    Base64(&'static str),
    /// A private or public key is not a valid P-256 key of the expected form.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The subscription's `p256dh` or `auth` has the wrong shape.
    #[error("invalid subscription: {0}")]
    InvalidSubscription(&'static str),
    /// The push endpoint is not an absolute http(s) URL with a host.
    #[error("invalid push endpoint: {0}")]
    InvalidEndpoint(&'static str),
    /// The VAPID subject is not a `mailto:` or `https:` URI (RFC 8292 §2.1).
    #[error("VAPID subject must be a mailto: or https: URI")]
    InvalidSubject,
    /// The plaintext does not fit in one 4096-byte record.
    #[error("payload of {len} bytes exceeds the {max}-byte limit")]
    PayloadTooLarge {
        /// Size of the rejected plaintext.
        len: usize,
        /// Largest accepted plaintext, [`MAX_PLAINTEXT_LEN`].
        max: usize,
    },
    /// A cryptographic primitive reported an internal failure.
    #[error("cryptographic operation failed")]
    Crypto,
    /// A timestamp computation overflowed.
    #[error("timestamp out of range")]
    TimeOutOfRange,
    /// JSON (de)serialisation of the JWT failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The server's VAPID key pair (P-256).
///
/// One long-lived key identifies natter to every push service; its public
/// half is the `applicationServerKey` browsers subscribe with, so it must be
/// persisted (see [`VapidKeys::private_bytes`]) and never rotated casually:
/// rotating it invalidates every existing subscription.
#[derive(Clone)]
pub struct VapidKeys {
    /// The private scalar; the public key is derived from it on demand.
    secret: SecretKey,
}

impl VapidKeys {
    /// Creates a fresh random key pair, for first start-up or an explicit
    /// key rotation.
    pub fn generate() -> Self {
        Self {
            secret: SecretKey::random(&mut OsRng),
        }
    }

    /// Loads a key pair from the 32-byte big-endian private scalar stored by
    /// [`VapidKeys::private_bytes`], so the key survives restarts.
    pub fn from_private_bytes(bytes: &[u8]) -> Result<Self, PushError> {
        Ok(Self {
            secret: parse_private_key(bytes)?,
        })
    }

    /// The 32-byte private scalar, for storing in our database. Treat it as
    /// a secret: whoever has it can push to all of our subscribers.
    pub fn private_bytes(&self) -> Vec<u8> {
        self.secret.to_bytes().to_vec()
    }

    /// The public key as an uncompressed point in unpadded base64url: the
    /// exact form the browser's `applicationServerKey` and VAPID's `k=` need.
    pub fn public_key_b64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(encode_public(&self.secret.public_key()))
    }
}

impl fmt::Debug for VapidKeys {
    /// Shows only the public key so the private key never ends up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKeys")
            .field("public_key", &self.public_key_b64url())
            .finish_non_exhaustive()
    }
}

/// A browser push subscription, as stored after the browser sent us its
/// `PushSubscription.toJSON()`.
///
/// The keys are kept as the browser's base64url text (with or without
/// padding) so the stored form round-trips without conversion.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// URL of the push service resource to POST messages to.
    pub endpoint: String,
    /// The user agent's P-256 public key (`keys.p256dh`), base64url.
    pub p256dh: String,
    /// The user agent's 16-byte auth secret (`keys.auth`), base64url.
    pub auth: String,
}

impl Subscription {
    /// Parses the JSON the browser's `PushSubscription.toJSON()` produces
    /// (`{"endpoint":…,"keys":{"p256dh":…,"auth":…}}`), whose keys are nested
    /// unlike this struct's, and checks the keys are usable.
    pub fn from_browser_json(json: &str) -> Result<Self, PushError> {
        #[derive(Deserialize)]
        struct Keys {
            p256dh: String,
            auth: String,
        }
        #[derive(Deserialize)]
        struct Browser {
            endpoint: String,
            keys: Keys,
        }
        let b: Browser = serde_json::from_str(json)?;
        let sub = Self {
            endpoint: b.endpoint,
            p256dh: b.keys.p256dh,
            auth: b.keys.auth,
        };
        endpoint_origin(&sub.endpoint)?;
        sub.ua_public()?;
        sub.auth_secret()?;
        Ok(sub)
    }

    /// Decodes and validates `p256dh`: it must be an uncompressed point on
    /// P-256, because RFC 8291 mixes its exact 65 bytes into the key schedule.
    fn ua_public(&self) -> Result<([u8; PUBLIC_KEY_LEN], PublicKey), PushError> {
        let bytes = decode_b64_lenient(&self.p256dh, "p256dh")?;
        let arr: [u8; PUBLIC_KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            PushError::InvalidSubscription("p256dh must be a 65-byte uncompressed point")
        })?;
        let key = parse_uncompressed_public(&arr)
            .map_err(|_| PushError::InvalidSubscription("p256dh is not a valid P-256 point"))?;
        Ok((arr, key))
    }

    /// Decodes `auth`, which RFC 8291 fixes at 16 bytes.
    fn auth_secret(&self) -> Result<[u8; SALT_LEN], PushError> {
        let bytes = decode_b64_lenient(&self.auth, "auth")?;
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| PushError::InvalidSubscription("auth must be 16 bytes"))
    }
}

impl fmt::Debug for Subscription {
    /// Redacts the auth secret, which is the one value here that must not
    /// leak into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("endpoint", &self.endpoint)
            .field("p256dh", &self.p256dh)
            .field("auth", &"<redacted>")
            .finish()
    }
}

/// The VAPID JWT claims (RFC 8292 §2). Deserialisable so the tests' push
/// service can check what we signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Origin of the push service the token is for.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Contact URI of the sender (`mailto:` or `https:`); optional in the RFC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

/// Encrypts `plaintext` for `sub` as an RFC 8291 `aes128gcm` body, ready to
/// POST to `sub.endpoint` with the headers from [`vapid_headers`].
///
/// Each call uses a fresh ephemeral key and a random salt, as the RFC
/// requires, so ciphertexts never repeat.
pub fn encrypt(sub: &Subscription, plaintext: &[u8]) -> Result<Vec<u8>, PushError> {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let ephemeral = SecretKey::random(&mut OsRng);
    encrypt_with_key(sub, plaintext, &ephemeral, salt)
}

/// [`encrypt`] with a caller-chosen sender key and salt, so tests can
/// reproduce RFC 8291 Appendix A byte for byte. Never use fixed values in
/// production: reusing them leaks plaintext.
#[cfg(test)]
pub(crate) fn encrypt_with(
    sub: &Subscription,
    plaintext: &[u8],
    as_private: &[u8],
    salt: [u8; SALT_LEN],
) -> Result<Vec<u8>, PushError> {
    let secret = parse_private_key(as_private)?;
    encrypt_with_key(sub, plaintext, &secret, salt)
}

/// Shared body of [`encrypt`]: validates the inputs, derives the input key
/// and lets `ece-native` write the one `aes128gcm` record, whose `keyid`
/// is the sender's public key (RFC 8291 §4).
fn encrypt_with_key(
    sub: &Subscription,
    plaintext: &[u8],
    as_secret: &SecretKey,
    salt: [u8; SALT_LEN],
) -> Result<Vec<u8>, PushError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(PushError::PayloadTooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT_LEN,
        });
    }
    let (ua_bytes, ua_public) = sub.ua_public()?;
    let auth = sub.auth_secret()?;
    let as_bytes = encode_public(&as_secret.public_key());
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_public.as_affine());
    let ikm = input_key(shared.raw_secret_bytes(), &auth, &ua_bytes, &as_bytes)?;
    ece_native::encrypt(
        ikm.as_slice(),
        salt,
        as_bytes,
        std::iter::once(plaintext.to_vec()),
        RECORD_SIZE,
    )
    .map_err(|_| PushError::Crypto)
}

/// RFC 8291 §3.4: the input keying material of the `aes128gcm` coding,
/// from the ECDH secret of the two keys and the subscription's auth
/// secret. Public so the tests can decrypt what natter sent, as a browser
/// does.
pub fn input_key(
    ecdh_secret: &[u8],
    auth: &[u8; SALT_LEN],
    ua_public: &[u8; PUBLIC_KEY_LEN],
    as_public: &[u8; PUBLIC_KEY_LEN],
) -> Result<Zeroizing<[u8; 32]>, PushError> {
    let mut key_info = Vec::with_capacity(14 + 2 * PUBLIC_KEY_LEN);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand(&key_info, ikm.as_mut_slice())
        .map_err(|_| PushError::Crypto)?;
    Ok(ikm)
}

/// Builds the request headers for one push: VAPID `Authorization` (RFC 8292
/// §3), `TTL` (RFC 8030 §5.2), the content coding, and `Urgency`.
///
/// `now_unix` is passed in rather than read from the clock so callers and
/// tests control token expiry; the token expires 12 hours after it.
pub fn vapid_headers(
    keys: &VapidKeys,
    endpoint: &str,
    subject: &str,
    ttl_secs: u64,
    now_unix: u64,
) -> Result<Vec<(String, String)>, PushError> {
    let is_mailto = subject
        .strip_prefix("mailto:")
        .is_some_and(|rest| !rest.is_empty());
    let is_https = subject
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty());
    if !(is_mailto || is_https) || subject.chars().any(char::is_control) {
        return Err(PushError::InvalidSubject);
    }
    let claims = Claims {
        aud: endpoint_origin(endpoint)?,
        exp: now_unix
            .checked_add(VAPID_VALIDITY_SECS)
            .ok_or(PushError::TimeOutOfRange)?,
        sub: Some(subject.to_owned()),
    };
    let jwt = sign_jwt(keys, &claims)?;
    Ok(vec![
        (
            "Authorization".to_owned(),
            format!("vapid t={jwt}, k={}", keys.public_key_b64url()),
        ),
        ("TTL".to_owned(), ttl_secs.to_string()),
        ("Content-Encoding".to_owned(), "aes128gcm".to_owned()),
        (
            "Content-Type".to_owned(),
            "application/octet-stream".to_owned(),
        ),
        ("Urgency".to_owned(), "normal".to_owned()),
    ])
}

/// Signs `claims` as a compact ES256 JWS (signature is raw r || s, RFC 7518
/// §3.4), which is the `t=` value of the VAPID header.
fn sign_jwt(keys: &VapidKeys, claims: &Claims) -> Result<String, PushError> {
    let mut signing_input = URL_SAFE_NO_PAD.encode(JWT_HEADER);
    signing_input.push('.');
    signing_input.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
    let signer = SigningKey::from(&keys.secret);
    let signature: Signature = signer
        .try_sign(signing_input.as_bytes())
        .map_err(|_| PushError::Crypto)?;
    signing_input.push('.');
    signing_input.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    Ok(signing_input)
}

/// The origin (`scheme://host[:port]`) of a push endpoint: the VAPID `aud`
/// a push service expects (RFC 8292 §2). Scheme and host are lower-cased and a default port
/// is dropped, as in RFC 6454 origin serialisation.
pub fn endpoint_origin(endpoint: &str) -> Result<String, PushError> {
    if endpoint
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(PushError::InvalidEndpoint("contains whitespace"));
    }
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or(PushError::InvalidEndpoint("not an absolute URL"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return Err(PushError::InvalidEndpoint("scheme must be http or https")),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest
        .get(..authority_end)
        .ok_or(PushError::InvalidEndpoint("authority"))?
        .to_ascii_lowercase();
    if authority.contains('@') {
        return Err(PushError::InvalidEndpoint("userinfo is not allowed"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or(PushError::InvalidEndpoint("unterminated IPv6 literal"))?;
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(PushError::InvalidEndpoint("bad IPv6 literal"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(PushError::InvalidEndpoint("junk after IPv6 literal"))?,
            ),
        };
        let host = authority
            .get(..addr.len() + 2)
            .ok_or(PushError::InvalidEndpoint("bad IPv6 literal"))?;
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority.as_str(), None),
        }
    };
    if host.is_empty() {
        return Err(PushError::InvalidEndpoint("missing host"));
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(PushError::InvalidEndpoint("bad host"));
    }
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(p) if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) => {
            Err(PushError::InvalidEndpoint("bad port"))
        }
        Some(p) if p.parse::<u16>().is_err() => Err(PushError::InvalidEndpoint("bad port")),
        Some(p) if p == default_port => Ok(format!("{scheme}://{host}")),
        Some(p) => Ok(format!("{scheme}://{host}:{p}")),
    }
}

/// Parses a raw 32-byte P-256 private scalar. Exactly 32 bytes are required
/// (the underlying crate would silently left-pad shorter input).
fn parse_private_key(bytes: &[u8]) -> Result<SecretKey, PushError> {
    if bytes.len() != PRIVATE_KEY_LEN {
        return Err(PushError::InvalidKey("private key must be 32 bytes"));
    }
    SecretKey::from_slice(bytes)
        .map_err(|_| PushError::InvalidKey("private key is not a valid P-256 scalar"))
}

/// Parses an uncompressed SEC1 point, rejecting the compressed and identity
/// encodings the RFCs do not allow.
fn parse_uncompressed_public(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<PublicKey, PushError> {
    if bytes[0] != 0x04 {
        return Err(PushError::InvalidKey("public key must be uncompressed"));
    }
    PublicKey::from_sec1_bytes(bytes)
        .map_err(|_| PushError::InvalidKey("public key is not on P-256"))
}

/// Serialises a public key as the 65-byte uncompressed point.
fn encode_public(key: &PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    let point = key.to_encoded_point(false);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    // An uncompressed P-256 point is always 65 bytes; copy defensively anyway.
    for (dst, src) in out.iter_mut().zip(point.as_bytes()) {
        *dst = *src;
    }
    out
}

/// Decodes base64url with or without padding, falling back to standard
/// base64, since subscription keys arrive in all of these forms.
fn decode_b64_lenient(input: &str, field: &'static str) -> Result<Vec<u8>, PushError> {
    let input = input.trim();
    B64URL_LENIENT
        .decode(input)
        .or_else(|_| B64STD_LENIENT.decode(input))
        .map_err(|_| PushError::Base64(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8291 Appendix A.
    const RFC_PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
    const RFC_AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const RFC_AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const RFC_UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const RFC_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const RFC_SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const RFC_BODY: &str = concat!(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
        "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
        "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    );

    const ENDPOINT: &str = "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV";
    const NOW: u64 = 1_700_000_000;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    fn rfc_sub() -> Subscription {
        Subscription {
            endpoint: ENDPOINT.to_owned(),
            p256dh: RFC_UA_PUBLIC.to_owned(),
            auth: RFC_AUTH.to_owned(),
        }
    }

    /// A random user agent: private key, auth secret and its subscription.
    fn random_ua() -> (Vec<u8>, [u8; 16], Subscription) {
        let secret = SecretKey::random(&mut OsRng);
        let mut auth = [0u8; 16];
        OsRng.fill_bytes(&mut auth);
        let sub = Subscription {
            endpoint: "http://127.0.0.1:8080/push/abc".to_owned(),
            p256dh: URL_SAFE_NO_PAD.encode(encode_public(&secret.public_key())),
            auth: URL_SAFE_NO_PAD.encode(auth),
        };
        (secret.to_bytes().to_vec(), auth, sub)
    }

    fn authorization(headers: &[(String, String)]) -> String {
        headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    #[test]
    fn rfc8291_appendix_a_keys_are_consistent() {
        let ua = VapidKeys::from_private_bytes(&b64(RFC_UA_PRIVATE)).unwrap();
        assert_eq!(ua.public_key_b64url(), RFC_UA_PUBLIC);
        let as_ = VapidKeys::from_private_bytes(&b64(RFC_AS_PRIVATE)).unwrap();
        assert_eq!(as_.public_key_b64url(), RFC_AS_PUBLIC);
    }

    #[test]
    fn rfc8291_appendix_a_encrypts_byte_for_byte() {
        let salt: [u8; 16] = b64(RFC_SALT).try_into().unwrap();
        let body = encrypt_with(&rfc_sub(), RFC_PLAINTEXT, &b64(RFC_AS_PRIVATE), salt).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(&body), RFC_BODY);
    }

    #[test]
    fn fresh_salt_and_key_each_time() {
        let (_, _, sub) = random_ua();
        let a = encrypt(&sub, b"same").unwrap();
        let b = encrypt(&sub, b"same").unwrap();
        assert_ne!(a[..SALT_LEN], b[..SALT_LEN]);
        assert_ne!(a[21..HEADER_LEN], b[21..HEADER_LEN]);
    }

    #[test]
    fn too_large_payload_is_rejected() {
        let (_, _, sub) = random_ua();
        let err = encrypt(&sub, &vec![b'x'; MAX_PLAINTEXT_LEN + 1]).unwrap_err();
        assert!(matches!(err, PushError::PayloadTooLarge { .. }));
    }

    #[test]
    fn subscription_keys_accept_padding_and_reject_bad_shapes() {
        let (_, auth, sub) = random_ua();
        let padded = Subscription {
            endpoint: sub.endpoint.clone(),
            p256dh: base64::engine::general_purpose::URL_SAFE.encode(b64(&sub.p256dh)),
            auth: base64::engine::general_purpose::URL_SAFE.encode(auth),
        };
        assert!(padded.auth.ends_with("=="));
        assert!(encrypt(&padded, b"padded").is_ok());

        let bad = |p256dh: String, auth: String| {
            encrypt(
                &Subscription {
                    endpoint: ENDPOINT.to_owned(),
                    p256dh,
                    auth,
                },
                b"x",
            )
            .is_err()
        };
        let ua_pub = b64(RFC_UA_PUBLIC);
        // Compressed point, truncated point, point off the curve.
        let mut compressed = vec![0x02 | (ua_pub[64] & 1)];
        compressed.extend_from_slice(&ua_pub[1..33]);
        assert!(bad(URL_SAFE_NO_PAD.encode(&compressed), RFC_AUTH.into()));
        assert!(bad(URL_SAFE_NO_PAD.encode(&ua_pub[..64]), RFC_AUTH.into()));
        let mut off_curve = ua_pub.clone();
        off_curve[64] ^= 1;
        assert!(bad(URL_SAFE_NO_PAD.encode(&off_curve), RFC_AUTH.into()));
        assert!(bad("!!not base64!!".into(), RFC_AUTH.into()));
        assert!(bad(RFC_UA_PUBLIC.into(), URL_SAFE_NO_PAD.encode([0u8; 15])));
        assert!(bad(RFC_UA_PUBLIC.into(), String::new()));
    }

    #[test]
    fn subscription_serde_and_browser_json() {
        let sub = rfc_sub();
        let json = serde_json::to_string(&sub).unwrap();
        assert_eq!(serde_json::from_str::<Subscription>(&json).unwrap(), sub);
        let browser = format!(
            r#"{{"endpoint":"{ENDPOINT}","expirationTime":null,"keys":{{"p256dh":"{RFC_UA_PUBLIC}","auth":"{RFC_AUTH}"}}}}"#
        );
        assert_eq!(Subscription::from_browser_json(&browser).unwrap(), sub);
        assert!(Subscription::from_browser_json(r#"{"endpoint":"x"}"#).is_err());
        assert!(!format!("{sub:?}").contains(RFC_AUTH));
    }

    #[test]
    fn vapid_keys_persist_and_reject_bad_bytes() {
        let keys = VapidKeys::generate();
        let bytes = keys.private_bytes();
        assert_eq!(bytes.len(), 32);
        let again = VapidKeys::from_private_bytes(&bytes).unwrap();
        assert_eq!(again.public_key_b64url(), keys.public_key_b64url());
        let public = b64(&keys.public_key_b64url());
        assert_eq!(public.len(), 65);
        assert_eq!(public[0], 4);
        assert!(!format!("{keys:?}").contains(&URL_SAFE_NO_PAD.encode(&bytes)));
        for bad in [&[][..], &[1u8; 31], &[1u8; 33], &[0u8; 32], &[0xffu8; 32]] {
            assert!(VapidKeys::from_private_bytes(bad).is_err());
        }
    }

    #[test]
    fn vapid_headers_have_the_expected_shape() {
        let keys = VapidKeys::generate();
        let headers =
            vapid_headers(&keys, ENDPOINT, "mailto:ops@natter.example", 3600, NOW).unwrap();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("TTL"), Some("3600"));
        assert_eq!(get("Content-Encoding"), Some("aes128gcm"));
        assert_eq!(get("Content-Type"), Some("application/octet-stream"));
        assert_eq!(get("Urgency"), Some("normal"));
        let auth = authorization(&headers);
        let rest = auth.strip_prefix("vapid t=").unwrap();
        let (jwt, k) = rest.split_once(", k=").unwrap();
        assert_eq!(k, keys.public_key_b64url());
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(b64(parts[0]), br#"{"typ":"JWT","alg":"ES256"}"#);
        assert_eq!(
            String::from_utf8(b64(parts[1])).unwrap(),
            format!(
                r#"{{"aud":"https://push.example.net","exp":{},"sub":"mailto:ops@natter.example"}}"#,
                NOW + 12 * 3600
            )
        );
        assert_eq!(b64(parts[2]).len(), 64);
    }

    #[test]
    fn vapid_rejects_bad_subject_and_overflow() {
        let keys = VapidKeys::generate();
        for subject in [
            "",
            "ops@natter.example",
            "mailto:",
            "http://x",
            "https://",
            "mailto:a\n",
        ] {
            assert!(matches!(
                vapid_headers(&keys, ENDPOINT, subject, 60, NOW),
                Err(PushError::InvalidSubject)
            ));
        }
        assert!(matches!(
            vapid_headers(&keys, ENDPOINT, "mailto:a@b", 60, u64::MAX),
            Err(PushError::TimeOutOfRange)
        ));
    }

    #[test]
    fn aud_is_the_endpoint_origin() {
        let cases = [
            (
                "https://fcm.googleapis.com/fcm/send/abc:def",
                "https://fcm.googleapis.com",
            ),
            (
                "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
                "https://updates.push.services.mozilla.com",
            ),
            (
                "https://web.push.apple.com/QGuQ?x=1#y",
                "https://web.push.apple.com",
            ),
            ("HTTPS://Push.Example.NET:443/p", "https://push.example.net"),
            (
                "https://push.example.net:8443",
                "https://push.example.net:8443",
            ),
            ("http://127.0.0.1:8080/push/x", "http://127.0.0.1:8080"),
            ("http://localhost:80/x", "http://localhost"),
            ("http://[::1]:9000/push", "http://[::1]:9000"),
            ("http://[::1]/push", "http://[::1]"),
        ];
        for (endpoint, origin) in cases {
            assert_eq!(endpoint_origin(endpoint).unwrap(), origin, "{endpoint}");
        }
        let keys = VapidKeys::generate();

        for bad in [
            "",
            "push.example.net/p",
            "ftp://push.example.net/p",
            "https://",
            "https:///p",
            "https://user@push.example.net/p",
            "https://push.example.net:/p",
            "https://push.example.net:99999/p",
            "https://push.example.net:8a/p",
            "https://push example.net/p",
            "https://[::1/p",
            "https://[::1]x/p",
            "https://ex\u{e9}mple.net/p",
        ] {
            assert!(endpoint_origin(bad).is_err(), "{bad:?}");
            assert!(vapid_headers(&keys, bad, "mailto:a@b", 60, NOW).is_err());
        }
    }
}
