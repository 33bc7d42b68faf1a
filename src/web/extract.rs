//! Extractors that turn a request into checked input: JSON bodies with the
//! contract's limits, bearer credentials (resolved by
//! [`crate::service::Services::agent_by_token`] and
//! [`crate::service::Services::contact_by_token`]), and the client's
//! address.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::domain::ids::InboxId;
use crate::error::ApiError;
use crate::service::auth::hash_token;
use crate::store::{AgentRecord, ContactRecord};

/// Largest JSON body accepted.
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// Deepest JSON nesting accepted.
pub const MAX_JSON_DEPTH: usize = 64;

/// A JSON body: `application/json`, at most 64 KiB, at most 64 levels deep.
/// Syntax errors are 400, wrong or missing fields 422.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
            m.subtype() == mime_guess::mime::JSON || m.suffix() == Some(mime_guess::mime::JSON)
        });
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType(
                    "send a JSON body with Content-Type: application/json",
                ));
            }
            if declared.is_some_and(|n| n > MAX_JSON_BYTES) {
                return Err(ApiError::TooLarge(MAX_JSON_BYTES));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::Malformed(format!("could not read the body: {e}")))?;
                if body.len() + chunk.len() > MAX_JSON_BYTES {
                    return Err(ApiError::TooLarge(MAX_JSON_BYTES));
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(ApiJson)
        })
    }
}

/// Parses a JSON body with the depth limit and the 400/422 split.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::Malformed("the body is not valid UTF-8".into()));
    }
    if depth(body) > MAX_JSON_DEPTH {
        return Err(ApiError::Malformed(format!(
            "JSON is nested deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::Invalid(crate::domain::Invalid::new("body", e.to_string())),
            _ => ApiError::Malformed(format!("invalid JSON: {e}")),
        }
    })
}

/// Maximum nesting of arrays and objects, ignoring brackets in strings.
fn depth(body: &[u8]) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in body {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                d += 1;
                max = max.max(d);
            }
            b']' | b'}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The token of an `Authorization: Bearer` header, if any.
pub(crate) fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Internal)
}

/// A signed-in, active agent (Bearer token).
pub struct AgentAuth {
    /// The agent as stored now.
    pub agent: AgentRecord,
    /// Hash of the presented token (for logout).
    pub token_hash: [u8; 32],
}

impl AgentAuth {
    /// Whether the agent is an admin.
    pub fn is_admin(&self) -> bool {
        self.agent.role == crate::domain::Role::Admin
    }

    /// Refuses non-admins with 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        crate::service::agents::require_admin(&self.agent)
    }
}

fn agent_auth(req: &HttpRequest) -> Result<AgentAuth, ApiError> {
    let st = state(req)?;
    let Some(token) = bearer(req) else {
        // Pages call the API with their session cookie, but only together
        // with the page's CSRF token; a cookie alone proves nothing.
        if let Some((agent, session)) = super::session::session_agent(st, req)? {
            let given = req
                .headers()
                .get(super::session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if super::session::csrf_ok(&session, given) {
                return Ok(AgentAuth {
                    agent,
                    token_hash: hash_token(&session),
                });
            }
            return Err(ApiError::Unauthorized(
                "a session cookie needs the page's X-CSRF-Token header",
            ));
        }
        return Err(ApiError::Unauthorized(
            "sign in first: send Authorization: Bearer <token>",
        ));
    };
    let hash = hash_token(token);
    let agent = st
        .svc
        .agent_by_token(&hash)?
        .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
    Ok(AgentAuth {
        agent,
        token_hash: hash,
    })
}

impl FromRequest for AgentAuth {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(agent_auth(req))
    }
}

/// A contact holding a valid contact token.
pub struct ContactAuth {
    /// The contact.
    pub contact: ContactRecord,
    /// The inbox the token was issued for (new conversations start there).
    pub inbox_id: InboxId,
    /// Hash of the presented token (an event stream lives as long as it).
    pub token_hash: [u8; 32],
}

fn contact_auth(req: &HttpRequest) -> Result<ContactAuth, ApiError> {
    let token = bearer(req).ok_or(ApiError::Unauthorized(
        "send Authorization: Bearer <contact token>",
    ))?;
    let st = state(req)?;
    let token_hash = hash_token(token);
    let (contact, inbox_id) = st
        .svc
        .contact_by_token(&token_hash)?
        .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
    Ok(ContactAuth {
        contact,
        inbox_id,
        token_hash,
    })
}

impl FromRequest for ContactAuth {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(contact_auth(req))
    }
}

/// The client's address: the peer, or behind a configured trusted proxy the
/// nearest untrusted address of `X-Forwarded-For`.
pub struct ClientIp(pub IpAddr);

fn client_ip(req: &HttpRequest) -> Result<ClientIp, ApiError> {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let trusted = &state(req)?.config.trusted_proxies;
    if !trusted.contains(&peer) {
        return Ok(ClientIp(peer));
    }
    let headers: Vec<&[u8]> = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|v| v.as_bytes())
        .collect();
    Ok(ClientIp(forwarded_client(peer, trusted, &headers)))
}

/// Walks `X-Forwarded-For` from the right (the hop our trusted proxy
/// added) to the nearest address that is not a trusted proxy: that is the
/// client. Hops may carry a port (`1.2.3.4:5678`, `[2001:db8::1]:443`) or
/// brackets, as proxies write them. A hop that does not parse (`unknown`,
/// an obfuscated name, bytes that are not text) ends the walk at the last
/// address vouched for: skipping it would let a client choose its address
/// by writing a forged hop to its left.
pub fn forwarded_client(peer: IpAddr, trusted: &[IpAddr], headers: &[&[u8]]) -> IpAddr {
    let hops: Vec<Option<IpAddr>> = headers
        .iter()
        .flat_map(|h| match std::str::from_utf8(h) {
            Ok(s) => s.split(',').map(parse_hop).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    let mut ip = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(hop) => {
                ip = hop;
                if !trusted.contains(&hop) {
                    break;
                }
            }
            None => break,
        }
    }
    ip
}

/// One hop of `X-Forwarded-For`: an address, with or without a port and
/// IPv6 brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
}

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(client_ip(req))
    }
}

/// Reads an id from the path; foreign strings are 404.
pub fn path_id<I: crate::domain::ids::Id>(s: &str) -> Result<I, ApiError> {
    crate::domain::parse_id(s).ok_or(ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_hops_with_ports_count_and_unparseable_ones_stop_the_walk() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted = [proxy];
        let client = |h: &str| forwarded_client(proxy, &trusted, &[h.as_bytes()]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client("6.6.6.6, 7.7.7.7:5555"), ip("7.7.7.7"));
        assert_eq!(client("6.6.6.6, [2001:db8::7]:443"), ip("2001:db8::7"));
        assert_eq!(client("6.6.6.6, [2001:db8::7]"), ip("2001:db8::7"));
        assert_eq!(client("6.6.6.6, 2001:db8::7"), ip("2001:db8::7"));
        // The forged hop left of an unknown one is never used.
        assert_eq!(client("6.6.6.6, unknown"), proxy);
        assert_eq!(client("6.6.6.6, unknown, 10.0.0.1"), proxy);
        assert_eq!(client("6.6.6.6,, 8.8.8.8"), ip("8.8.8.8"));
        assert_eq!(client("6.6.6.6, _hidden, 8.8.8.8"), ip("8.8.8.8"));
        // Trusted proxies in the chain are walked past.
        assert_eq!(client("6.6.6.6, 10.0.0.1:80"), ip("6.6.6.6"));
        // Several headers are one list, in order; a value that is not text
        // stops the walk where it stands.
        assert_eq!(
            forwarded_client(proxy, &trusted, &[b"6.6.6.6", b"7.7.7.7"]),
            ip("7.7.7.7")
        );
        assert_eq!(
            forwarded_client(proxy, &trusted, &[b"6.6.6.6", b"\xff\xfe", b"10.0.0.1"]),
            proxy
        );
    }

    #[test]
    fn depth_ignores_brackets_inside_strings() {
        assert_eq!(depth(br#"{"a":[1,{"b":"[[[[{{{"}]}"#), 3);
        assert_eq!(depth(br#""\"[""#), 0);
        assert_eq!(depth(&[b'['; 100]), 100);
    }

    #[test]
    fn syntax_errors_are_400_and_type_errors_422() {
        #[derive(serde::Deserialize, Debug)]
        struct B {
            #[allow(dead_code)]
            body: String,
        }
        assert!(matches!(parse_json::<B>(b"{"), Err(ApiError::Malformed(_))));
        assert!(matches!(
            parse_json::<B>(b"{\"body\":1}"),
            Err(ApiError::Invalid(_))
        ));
        assert!(matches!(parse_json::<B>(b"{}"), Err(ApiError::Invalid(_))));
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(matches!(
            parse_json::<serde_json::Value>(deep.as_bytes()),
            Err(ApiError::Malformed(_))
        ));
    }
}
