//! The first-run page: `/setup?token=...` creates the first admin in the
//! browser. The one-time token (logged at start, stored only as a hash)
//! is both the authorisation and the form's CSRF protection.

use actix_web::{web, HttpResponse, Responder};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::AppState;
use crate::domain::{time, Email, Name, Password};
use crate::error::ApiError;
use crate::service::auth::{hash_password, hash_token};

/// Where the setup token's hash lives in `meta`.
pub const SETUP_TOKEN_KEY: &str = "setup_token_hash";

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
struct SetupPage {
    token: String,
    valid: bool,
    done: bool,
    error: Option<String>,
    name: String,
    email: String,
}

/// `?token=` of the page.
#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn token_ok(state: &AppState, token: &str) -> Result<bool, ApiError> {
    if state.store.has_agents()? {
        return Ok(false);
    }
    let Some(stored) = state.store.meta_get(SETUP_TOKEN_KEY)? else {
        return Ok(false);
    };
    Ok(stored.as_slice().ct_eq(&hash_token(token)).into())
}

/// Shows the form if the token is the current one.
pub async fn page(
    state: web::Data<AppState>,
    q: web::Query<TokenQuery>,
) -> Result<impl Responder, ApiError> {
    let token = q.token.clone().unwrap_or_default();
    let valid = token_ok(&state, &token)?;
    Ok(SetupPage {
        token,
        valid,
        done: false,
        error: None,
        name: String::new(),
        email: String::new(),
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

/// Creates the first admin and retires the token.
pub async fn submit(
    state: web::Data<AppState>,
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
        };
        Ok(HttpResponse::Forbidden()
            .content_type("text/html; charset=utf-8")
            .body(page.render().map_err(|_| ApiError::Internal)?))
    };
    if !token_ok(&state, &f.token)? {
        return refused();
    }
    let checked = (|| {
        Ok::<_, crate::domain::Invalid>((
            Name::parse(&f.name, "name")?,
            Email::parse(&f.email)?,
            Password::parse(f.password.clone())?,
        ))
    })();
    let (name, email, password) = match checked {
        Ok(v) => v,
        Err(e) => {
            let page = SetupPage {
                token: f.token,
                valid: true,
                done: false,
                error: Some(e.message),
                name: f.name,
                email: f.email,
            };
            return Ok(HttpResponse::UnprocessableEntity()
                .content_type("text/html; charset=utf-8")
                .body(page.render().map_err(|_| ApiError::Internal)?));
        }
    };
    let hash = web::block(move || hash_password(password.expose()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|_| ApiError::Internal)?;
    // The token is checked again and retired in the same write as the
    // admin is created, so racing submissions create exactly one admin.
    let created = state
        .store
        .create_first_admin(
            SETUP_TOKEN_KEY,
            &hash_token(&f.token),
            name.into_inner(),
            email.into_inner(),
            hash,
            time::now(),
        )
        .await?;
    let Some(agent) = created else {
        return refused();
    };
    tracing::info!(agent = agent.id, "first admin created through /setup");
    let page = SetupPage {
        token: String::new(),
        valid: true,
        done: true,
        error: None,
        name: String::new(),
        email: String::new(),
    };
    Ok(HttpResponse::Created()
        .content_type("text/html; charset=utf-8")
        .body(page.render().map_err(|_| ApiError::Internal)?))
}
