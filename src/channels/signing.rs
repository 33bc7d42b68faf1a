//! Standard Webhooks v1 signatures, shared by the outbound webhooks
//! (`service::webhooks`) and the API channel's callbacks: one
//! implementation, in the channel layer, because channels import no
//! service.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};

/// `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>` where the key is
/// the base64 after `whsec_`. An undecodable secret is an error (the
/// delivery fails with it), never a panic.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "the signing secret is not whsec_ + base64".to_owned())?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// A POST of a JSON `body` carrying the Standard Webhooks headers
/// (`webhook-id`, `webhook-timestamp`, `webhook-signature`), ready to send
/// through the guarded client; the one shape of every signed call natter
/// makes (outbound webhooks and the API channel's callbacks).
pub fn signed_post(
    client: &reqwest::Client,
    url: reqwest::Url,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: String,
) -> Result<reqwest::RequestBuilder, String> {
    let sig = sign(secret, id, timestamp, body.as_bytes())?;
    Ok(client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sig)
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks specification.
    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Ok("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }
}
