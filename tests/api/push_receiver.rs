//! The receiving side of Web Push, as a browser and a push service do it:
//! decrypting an RFC 8291 body with the browser's keys and verifying a
//! VAPID token (RFC 8292). Natter only sends, so this lives with the
//! tests: the push tests open what natter really sent with it, and the
//! RFCs' own examples check it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::{PublicKey, SecretKey};
use rand::RngCore as _;

use natter::service::webpush::{
    encrypt, input_key, vapid_headers, Claims, Subscription, VapidKeys,
};

/// salt (16) || rs (4) || idlen (1) || keyid (65).
const HEADER_LEN: usize = 86;

/// Why a push was refused on the receiving side.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a single-record `aes128gcm` body with a P-256 keyid.
    Malformed(&'static str),
    /// Authentication failed: wrong keys, or a tampered body.
    Decrypt,
    /// Not a well-formed `vapid t=…, k=…` header.
    Authorization(&'static str),
    /// The signature does not verify under `k=`.
    BadSignature,
    /// The token is for another push service.
    Audience(String),
    /// `exp` has passed.
    Expired,
    /// `exp` is more than 24 hours ahead.
    ExpiryTooFar,
}

/// Decrypts a push body with the browser's private key and auth secret.
/// Strict as browsers are: one record, a 65-byte keyid.
pub fn decrypt(ua_private: &[u8], auth: &[u8; 16], body: &[u8]) -> Result<Vec<u8>, Refused> {
    let ua = SecretKey::from_slice(ua_private).map_err(|_| Refused::Malformed("private key"))?;
    if body.len() < HEADER_LEN {
        return Err(Refused::Malformed("shorter than the header"));
    }
    let rs = u32::from_be_bytes([body[16], body[17], body[18], body[19]]);
    if body[20] != 65 {
        return Err(Refused::Malformed("keyid must be a P-256 point"));
    }
    if rs < 18 || body.len() - HEADER_LEN >= rs as usize {
        return Err(Refused::Malformed("push messages are one record"));
    }
    let as_public = PublicKey::from_sec1_bytes(&body[21..HEADER_LEN])
        .map_err(|_| Refused::Malformed("keyid"))?;
    let mut as_bytes = [0u8; 65];
    as_bytes.copy_from_slice(&body[21..HEADER_LEN]);
    let mut ua_bytes = [0u8; 65];
    ua_bytes.copy_from_slice(ua.public_key().to_encoded_point(false).as_bytes());
    let shared = p256::ecdh::diffie_hellman(ua.to_nonzero_scalar(), as_public.as_affine());
    let ikm = input_key(shared.raw_secret_bytes(), auth, &ua_bytes, &as_bytes)
        .map_err(|_| Refused::Decrypt)?;
    ece_native::decrypt(ikm.as_slice(), body.to_vec()).map_err(|_| Refused::Decrypt)
}

/// Verifies a VAPID `Authorization` header against the current clock.
pub fn verify_vapid(header: &str, expected_aud: &str) -> Result<Claims, Refused> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Refused::Expired)?
        .as_secs();
    verify_vapid_at(header, expected_aud, now)
}

/// [`verify_vapid`] at a given time: the ES256 signature under `k=`, `aud`
/// and an `exp` in the future but at most 24 hours away.
pub fn verify_vapid_at(header: &str, expected_aud: &str, now: u64) -> Result<Claims, Refused> {
    let bad = Refused::Authorization;
    let (scheme, params) = header
        .trim()
        .split_once([' ', '\t'])
        .ok_or(bad("expected `vapid t=…, k=…`"))?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(bad("scheme is not vapid"));
    }
    let (mut token, mut key) = (None, None);
    for param in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = param.split_once('=').ok_or(bad("parameter without ="))?;
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "t" => &mut token,
            "k" => &mut key,
            _ => continue,
        };
        if slot.replace(value.trim()).is_some() {
            return Err(bad("duplicate parameter"));
        }
    }
    let (token, key) = (
        token.ok_or(bad("missing t="))?,
        key.ok_or(bad("missing k="))?,
    );
    let key = URL_SAFE_NO_PAD.decode(key).map_err(|_| bad("k"))?;
    if key.first() != Some(&4) {
        return Err(bad("k must be an uncompressed point"));
    }
    let public = PublicKey::from_sec1_bytes(&key).map_err(|_| bad("k"))?;
    let mut parts = token.split('.');
    let (Some(h64), Some(c64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("a JWT has three parts"));
    };
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h64).map_err(|_| bad("JWT header"))?)
            .map_err(|_| bad("JWT header"))?;
    if header["alg"] != "ES256" {
        return Err(bad("alg must be ES256"));
    }
    if header.get("typ").is_some_and(|t| t != "JWT") {
        return Err(bad("typ must be JWT"));
    }
    let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(s64).map_err(|_| bad("sig"))?)
        .map_err(|_| Refused::BadSignature)?;
    VerifyingKey::from(&public)
        .verify(format!("{h64}.{c64}").as_bytes(), &signature)
        .map_err(|_| Refused::BadSignature)?;
    let claims: Claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c64).map_err(|_| bad("claims"))?)
            .map_err(|_| bad("claims"))?;
    if claims.aud != expected_aud {
        return Err(Refused::Audience(claims.aud));
    }
    if claims.exp <= now {
        return Err(Refused::Expired);
    }
    if claims.exp - now > 24 * 3600 {
        return Err(Refused::ExpiryTooFar);
    }
    Ok(claims)
}

// RFC 8291 Appendix A.
const RFC_PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const RFC_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const RFC_BODY: &str = concat!(
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
);
// RFC 8292 §2.4.
const RFC8292_JWT: &str = concat!(
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.",
    "eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.",
    "i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA",
);
const RFC8292_K: &str =
    "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs";
const RFC8292_EXP: u64 = 1_453_523_768;
const ENDPOINT: &str = "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV";
const NOW: u64 = 1_700_000_000;

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// A random browser: private key, auth secret and its subscription.
fn random_ua() -> (Vec<u8>, [u8; 16], Subscription) {
    let secret = SecretKey::random(&mut rand::rngs::OsRng);
    let mut auth = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut auth);
    let sub = Subscription {
        endpoint: "http://127.0.0.1:8080/push/abc".to_owned(),
        p256dh: URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes()),
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
fn rfc8291_appendix_a_decrypts() {
    let auth: [u8; 16] = b64(RFC_AUTH).try_into().unwrap();
    let plain = decrypt(&b64(RFC_UA_PRIVATE), &auth, &b64(RFC_BODY)).unwrap();
    assert_eq!(plain, RFC_PLAINTEXT);
}

#[test]
fn what_natter_encrypts_a_browser_decrypts_and_nobody_else() {
    for len in [0, 1, 41, 1000, natter::service::webpush::MAX_PLAINTEXT_LEN] {
        let (ua_private, auth, sub) = random_ua();
        let mut plain = vec![0u8; len];
        rand::rngs::OsRng.fill_bytes(&mut plain);
        let body = encrypt(&sub, &plain).unwrap();
        assert_eq!(body.len(), HEADER_LEN + len + 1 + 16);
        assert_eq!(&body[16..20], &[0, 0, 0x10, 0], "rs = 4096");
        assert_eq!(decrypt(&ua_private, &auth, &body).unwrap(), plain);
        let (other, other_auth, _) = random_ua();
        assert_eq!(decrypt(&other, &auth, &body), Err(Refused::Decrypt));
        assert_eq!(
            decrypt(&ua_private, &other_auth, &body),
            Err(Refused::Decrypt)
        );
        let mut tampered = body.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            decrypt(&ua_private, &auth, &tampered),
            Err(Refused::Decrypt)
        );
        assert!(decrypt(&ua_private, &auth, &body[..body.len() - 1]).is_err());
    }
}

#[test]
fn our_vapid_tokens_verify_for_the_push_services_origin() {
    let keys = VapidKeys::generate();
    let headers =
        vapid_headers(&keys, ENDPOINT, "https://natter.example/contact", 60, NOW).unwrap();
    let claims =
        verify_vapid_at(&authorization(&headers), "https://push.example.net", NOW).unwrap();
    assert_eq!(
        claims,
        Claims {
            aud: "https://push.example.net".into(),
            exp: NOW + 12 * 3600,
            sub: Some("https://natter.example/contact".into()),
        }
    );
    let headers =
        vapid_headers(&keys, "http://127.0.0.1:8080/push/x", "mailto:a@b", 60, NOW).unwrap();
    let claims = verify_vapid_at(&authorization(&headers), "http://127.0.0.1:8080", NOW).unwrap();
    assert_eq!(claims.aud, "http://127.0.0.1:8080");
}

#[test]
fn rfc8292_example_token_verifies_and_our_claims_match_its_shape() {
    let header = format!("vapid t={RFC8292_JWT}, k={RFC8292_K}");
    let claims = verify_vapid_at(&header, "https://push.example.net", RFC8292_EXP - 60).unwrap();
    assert_eq!(claims.exp, RFC8292_EXP);
    assert_eq!(claims.sub.as_deref(), Some("mailto:push@example.com"));
    let ours = serde_json::to_vec(&claims).unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(ours),
        RFC8292_JWT.split('.').nth(1).unwrap()
    );
}

#[test]
fn a_tampered_or_foreign_vapid_token_is_refused() {
    let keys = VapidKeys::generate();
    let good = authorization(
        &vapid_headers(&keys, ENDPOINT, "mailto:ops@natter.example", 60, NOW).unwrap(),
    );
    let aud = "https://push.example.net";
    let (prefix, rest) = good.split_once('.').unwrap();
    let (_, sig_and_k) = rest.split_once('.').unwrap();
    let forged_claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"aud":"{aud}","exp":{},"sub":"mailto:x@y"}}"#,
        NOW + 20 * 3600
    ));
    let forged = format!("{prefix}.{forged_claims}.{sig_and_k}");
    assert_eq!(
        verify_vapid_at(&forged, aud, NOW),
        Err(Refused::BadSignature)
    );
    let other = VapidKeys::generate();
    let swapped = good.replace(&keys.public_key_b64url(), &other.public_key_b64url());
    assert_eq!(
        verify_vapid_at(&swapped, aud, NOW),
        Err(Refused::BadSignature)
    );
    assert!(matches!(
        verify_vapid_at(&good, "https://other.example", NOW),
        Err(Refused::Audience(_))
    ));
    assert_eq!(
        verify_vapid_at(&good, aud, NOW + 12 * 3600),
        Err(Refused::Expired)
    );
    assert_eq!(
        verify_vapid_at(&good, aud, NOW - 13 * 3600),
        Err(Refused::ExpiryTooFar)
    );
    let (head, k) = good.split_once(", k=").unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"none"}"#);
    let claims_only = head.split('.').nth(1).unwrap();
    let none = format!("vapid t={none_header}.{claims_only}., k={k}");
    assert!(verify_vapid_at(&none, aud, NOW).is_err());
    for garbage in [
        "",
        "vapid",
        "Bearer t=a.b.c, k=x",
        "vapid t=a.b, k=abc",
        "vapid k=abc",
    ] {
        assert!(verify_vapid_at(garbage, aud, NOW).is_err(), "{garbage:?}");
    }
}
