//! The first-run page: `/setup?token=...` creates the first admin in the
//! browser. The one-time token (logged at start, stored only as a hash)
//! is both the authorisation and the form's CSRF protection.

use actix_web::{web, HttpResponse, Responder};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::session::session_cookie;
use super::AppState;
use crate::error::ApiError;
use crate::service::sessions::CredentialKind;
use crate::service::setup::FirstAdmin;

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
struct SetupPage {
    token: String,
    valid: bool,
    done: bool,
    error: Option<String>,
    name: String,
    email: String,
    /// The new admin was signed in by the same answer (its session cookie
    /// is set): the page leads to the inbox rather than to a sign-in.
    signed_in: bool,
}

/// `?token=` of the page.
#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// Shows the form if the token is the current one.
#[tracing::instrument(skip_all)]
pub async fn page(
    state: web::Data<AppState>,
    q: web::Query<TokenQuery>,
) -> Result<impl Responder, ApiError> {
    let token = q.token.clone().unwrap_or_default();
    let valid = state.svc.setup_token_valid(&token)?;
    Ok(SetupPage {
        token,
        valid,
        done: false,
        error: None,
        name: String::new(),
        email: String::new(),
        signed_in: false,
    })
}

/// The form's fields.
#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    name: String,
    email: String,
    password: String,
}

/// Creates the first admin, retires the token and signs the admin in (so
/// setting up ends in the workspace, not on a page that says to go and
/// sign in).
#[tracing::instrument(skip_all)]
pub async fn submit(
    state: web::Data<AppState>,
    ip: super::extract::ClientIp,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, ApiError> {
    let f = form.into_inner();
    let refused = || {
        let page = SetupPage {
            token: String::new(),
            valid: false,
            done: false,
            error: None,
            name: String::new(),
            email: String::new(),
            signed_in: false,
        };
        Ok(HttpResponse::Forbidden()
            .content_type("text/html; charset=utf-8")
            .body(page.render().map_err(|_| ApiError::Internal)?))
    };
    let given = FirstAdmin {
        token: f.token.clone(),
        name: f.name.clone(),
        email: f.email.clone(),
        password: f.password.clone(),
    };
    match state.svc.create_first_admin(given).await {
        Ok(Some(_)) => {}
        Ok(None) => return refused(),
        Err(ApiError::Invalid(e)) => {
            let page = SetupPage {
                token: f.token,
                valid: true,
                done: false,
                error: Some(e.message),
                name: f.name,
                email: f.email,
                signed_in: false,
            };
            return Ok(HttpResponse::UnprocessableEntity()
                .content_type("text/html; charset=utf-8")
                .body(page.render().map_err(|_| ApiError::Internal)?));
        }
        Err(e) => return Err(e),
    }
    // Signed in as the sign-in form does (and logged like it); if that
    // fails the admin exists all the same and the page links to sign-in.
    let session = match state
        .svc
        .sign_in(&f.email, f.password, ip.0, CredentialKind::Session)
        .await
    {
        Ok(s) => Some(s.credential.token),
        Err(e) => {
            tracing::warn!(error = %e, "the new admin could not be signed in after setup");
            None
        }
    };
    let page = SetupPage {
        token: String::new(),
        valid: true,
        done: true,
        error: None,
        name: String::new(),
        email: String::new(),
        signed_in: session.is_some(),
    };
    let mut res = HttpResponse::Created();
    res.content_type("text/html; charset=utf-8");
    if let Some(token) = session {
        res.cookie(session_cookie(
            &token,
            state.config.base_url.starts_with("https://"),
            state.config.token_ttl_secs,
        ));
    }
    Ok(res.body(page.render().map_err(|_| ApiError::Internal)?))
}
