//! Browser sessions for the agent workspace: an HttpOnly cookie holding a
//! session token (stored, like API tokens, only as a hash) and a CSRF token
//! derived from it, which pages put in every htmx request header and form.
//!
//! The CSRF token is SHA-256("natter-csrf:" + session token): only a page
//! that could read the cookie's secret (our own, served same-origin) can
//! know it, and it needs no storage.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
pub use crate::domain::text::url_escape;
use crate::domain::Role;
use crate::error::ApiError;
use crate::service::auth::hash_token;
use crate::store::AgentRecord;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "natter_session";
/// Header htmx sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token belonging to a session token.
pub fn csrf_for(session_token: &str) -> String {
    hex::encode(Sha256::digest(
        format!("natter-csrf:{session_token}").as_bytes(),
    ))
}

/// Whether `given` is the CSRF token of `session_token` (constant time).
pub fn csrf_ok(session_token: &str, given: &str) -> bool {
    csrf_for(session_token)
        .as_bytes()
        .ct_eq(given.as_bytes())
        .into()
}
/// The cookie that carries a new session.
pub fn session_cookie(token: &str, secure: bool, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// The cookie that ends a session in the browser.
pub fn cleared_cookie(secure: bool) -> Cookie<'static> {
    let mut c = session_cookie("", secure, 0);
    c.make_removal();
    c
}

/// The agent behind a valid, unexpired session cookie, if any.
pub fn session_agent(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(AgentRecord, String)>, ApiError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let token = cookie.value().to_owned();
    Ok(state
        .svc
        .agent_by_token(&hash_token(&token))?
        .map(|a| (a, token)))
}

/// A signed-in agent on a page. Without a session the page answers with a
/// redirect to `/login?next=<this page>`.
pub struct PageAgent {
    /// The agent as stored now.
    pub agent: AgentRecord,
    /// The session token (to derive the CSRF token, and to sign out).
    pub session: String,
}

impl PageAgent {
    /// The CSRF token pages embed.
    pub fn csrf(&self) -> String {
        csrf_for(&self.session)
    }

    /// Whether the agent is an admin.
    pub fn is_admin(&self) -> bool {
        self.agent.role == Role::Admin
    }

    /// Refuses a state change without the right CSRF token (from the htmx
    /// header or a form field).
    pub fn check_csrf(&self, req: &HttpRequest, form_field: Option<&str>) -> Result<(), PageError> {
        let given = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .or(form_field)
            .unwrap_or_default();
        if csrf_ok(&self.session, given) {
            Ok(())
        } else {
            Err(PageError::Api(ApiError::Forbidden(
                "missing or wrong CSRF token; reload the page",
            )))
        }
    }

    /// An API-style view of the same agent, for code shared with the API.
    pub fn as_auth(&self) -> super::extract::AgentAuth {
        super::extract::AgentAuth {
            agent: self.agent.clone(),
            token_hash: hash_token(&self.session),
        }
    }
}

/// What a page can fail with: a redirect to sign in, or an API error
/// rendered as a small HTML page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Not signed in: go to this URL.
    #[error("sign in first")]
    SignIn(String),
    /// Anything else.
    #[error("{0}")]
    Api(#[from] ApiError),
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Api(e.into())
    }
}

impl From<crate::domain::Invalid> for PageError {
    fn from(e: crate::domain::Invalid) -> Self {
        Self::Api(e.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn(_) => StatusCode::SEE_OTHER,
            Self::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn(to) => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to.clone()))
                .finish(),
            Self::Api(e) => {
                let msg = askama::filters::escape(e.to_string(), askama::filters::Html)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                HttpResponse::build(e.status_code())
                    .content_type("text/html; charset=utf-8")
                    .body(format!(
                        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Natter</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"card\"><h1>{}</h1><p role=\"alert\">{msg}</p><p><a href=\"/inbox\">Back to the inbox</a></p></main></body></html>",
                        e.status_code().canonical_reason().unwrap_or("Error")
                    ))
            }
        }
    }
}

/// Where to send someone back to after sign-in: only local paths.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_local_path(n) && !n.starts_with("/login") => n.to_owned(),
        _ => "/inbox".to_owned(),
    }
}

/// Whether `n` can only mean a path on this site: it starts with one `/`
/// and is made of visible ASCII without backslashes. Browsers drop tabs
/// and newlines from a `Location` and read `\` as `/`, so `/\t/evil.com`
/// or `/\\evil.com` would leave the site; control bytes would also make
/// the header invalid.
fn is_local_path(n: &str) -> bool {
    let b = n.as_bytes();
    b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && b.iter().all(|c| (0x21..=0x7e).contains(c) && *c != b'\\')
}

/// A form cookie for pages without a session (the sign-in page, the
/// messenger): a random value in an `HttpOnly` cookie whose digest
/// ([`csrf_for`]) every form of the page carries as `csrf`. Another site
/// can neither read the page nor make the browser send the cookie with
/// its post, so a forged form is refused.
pub struct FormCookie {
    /// The cookie's name.
    pub name: &'static str,
    path: &'static str,
    same_site: SameSite,
    /// Lifetime; `None` lasts the browser session.
    max_age_hours: Option<i64>,
}

/// Ties the sign-in form to the browser that loaded it (login CSRF: a
/// hostile page must not sign a visitor in to the attacker's account).
/// `SameSite=Strict`: a cross-site post arrives without it.
pub const LOGIN_FORM: FormCookie = FormCookie {
    name: "natter_login",
    path: "/login",
    same_site: SameSite::Strict,
    max_age_hours: Some(12),
};

/// The password pages' forms ("Forgot password", choosing a password
/// from a link, which signs in): the same login CSRF guard as sign-in.
pub const PASSWORD_FORM: FormCookie = FormCookie {
    name: "natter_password",
    path: "/password",
    same_site: SameSite::Strict,
    max_age_hours: Some(12),
};

/// The messenger's forms (a hostile page must not switch the visitor's
/// identity or write as them).
pub const MESSENGER_FORM: FormCookie = FormCookie {
    name: "natter_m_csrf",
    path: "/m/",
    same_site: SameSite::Lax,
    max_age_hours: None,
};

impl FormCookie {
    /// A fresh cookie and the token its page's forms carry.
    pub fn issue(&self, secure: bool) -> (String, Cookie<'static>) {
        let value = crate::service::auth::random_string(24);
        let mut cookie = Cookie::build(self.name, value.clone())
            .path(self.path)
            .http_only(true)
            .same_site(self.same_site)
            .secure(secure)
            .finish();
        if let Some(h) = self.max_age_hours {
            cookie.set_max_age(actix_web::cookie::time::Duration::hours(h));
        }
        (csrf_for(&value), cookie)
    }

    /// The token of the cookie this browser holds, if any.
    pub fn token(&self, req: &HttpRequest) -> Option<String> {
        req.cookie(self.name).map(|c| csrf_for(c.value()))
    }

    /// Whether a post carries the token of this browser's cookie
    /// (constant time).
    pub fn ok(&self, req: &HttpRequest, given: Option<&str>) -> bool {
        match (req.cookie(self.name), given) {
            (Some(c), Some(g)) => csrf_ok(c.value(), g.trim()),
            _ => false,
        }
    }
}

/// `host[:port]` of an absolute URL (the port only when not the scheme's
/// default, as browsers write `Host`).
fn authority_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?.to_owned();
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// Whether a state-changing browser request comes from our own pages, by
/// what browsers say about it: `Sec-Fetch-Site` must be `same-origin` (or
/// `none`: typed or bookmarked), and an `Origin` must name this host (as
/// the request's `Host` says, or as `NATTER_BASE_URL` does, for a proxy
/// that rewrites `Host`). Requests without either header (older browsers,
/// non-browser clients) pass here and rely on the form's token.
pub fn same_origin(req: &HttpRequest, base_url: &str) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return false;
        }
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Some(origin_host) = origin.to_str().ok().and_then(authority_of) else {
        // `Origin: null` (sandboxed frames, some redirects) or garbage.
        return false;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let base_host = authority_of(base_url);
    host.is_some_and(|h| h.eq_ignore_ascii_case(&origin_host))
        || base_host.is_some_and(|h| h.eq_ignore_ascii_case(&origin_host))
}

fn page_agent(req: &HttpRequest) -> Result<PageAgent, PageError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Internal)?;
    match session_agent(state, req)? {
        Some((agent, session)) => Ok(PageAgent { agent, session }),
        None => {
            let here = req.uri().path_and_query().map_or("/inbox", |p| p.as_str());
            // htmx requests cannot follow a redirect into a full page.
            if req.headers().contains_key("hx-request") {
                return Err(PageError::Api(ApiError::Unauthorized(
                    "your session has ended; sign in again",
                )));
            }
            let next: String = url_escape(here);
            Err(PageError::SignIn(format!("/login?next={next}")))
        }
    }
}

impl FromRequest for PageAgent {
    type Error = PageError;
    type Future = std::future::Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(page_agent(req))
    }
}

/// A form that carries the page's CSRF token as its `csrf` field (the
/// header htmx sends wins when both are there).
pub trait CsrfField {
    /// The form's `csrf` field, if it has one.
    fn csrf_field(&self) -> Option<&str>;
}

/// Forms read as name/value pairs (channel settings have open-ended
/// field names).
impl CsrfField for Vec<(String, String)> {
    fn csrf_field(&self) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
    }
}

/// A state-changing form posted by a signed-in agent, its CSRF token
/// already checked: a handler that takes one starts from a session that
/// holds and a form our own page sent.
pub struct AgentForm<T> {
    /// The agent, as signed in.
    pub page: PageAgent,
    /// The form's fields.
    pub form: T,
}

/// An [`AgentForm`] from an admin (everyone else is refused with 403
/// before the handler runs): the settings pages' shape of "check the CSRF
/// token, then require an admin", written once.
pub struct AdminForm<T> {
    /// The admin, as signed in.
    pub page: PageAgent,
    /// The form's fields.
    pub form: T,
}

impl<T> FromRequest for AgentForm<T>
where
    T: serde::de::DeserializeOwned + CsrfField + 'static,
{
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, actix_web::Result<Self>>;

    /// Signs in, reads the form, checks its CSRF token: in that order, so
    /// a visitor without a session is sent to sign in and a forged post
    /// learns nothing.
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, mut payload) = (req.clone(), payload.take());
        Box::pin(async move {
            let page = page_agent(&req)?;
            let form = web::Form::<T>::from_request(&req, &mut payload)
                .await?
                .into_inner();
            page.check_csrf(&req, form.csrf_field())?;
            Ok(Self { page, form })
        })
    }
}

impl<T> FromRequest for AdminForm<T>
where
    T: serde::de::DeserializeOwned + CsrfField + 'static,
{
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, actix_web::Result<Self>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = AgentForm::<T>::from_request(req, payload);
        Box::pin(async move {
            let AgentForm { page, form } = form.await?;
            crate::service::agents::require_admin(&page.agent).map_err(PageError::from)?;
            Ok(Self { page, form })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let a = csrf_for("session-a");
        assert!(csrf_ok("session-a", &a));
        assert!(!csrf_ok("session-b", &a));
        assert!(!csrf_ok("session-a", ""));
    }

    #[test]
    fn next_is_only_ever_a_local_path() {
        assert_eq!(safe_next(Some("/conversations/4")), "/conversations/4");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil",
            "javascript:alert(1)",
            "/login?next=/x",
            "/\t/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            "/%09/evil.example\r\nSet-Cookie: x=1",
            "/caf\u{e9}",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/inbox", "{bad}");
        }
        assert_eq!(safe_next(None), "/inbox");
    }
}
