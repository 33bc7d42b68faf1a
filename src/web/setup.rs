//! The first-run page: `/setup?token=...` creates the first admin in the
//! browser. The one-time token (logged at start, stored only as a hash)
//! is both the authorisation and the form's CSRF protection.

use actix_web::{web, HttpResponse, Responder};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::AppState;
use crate::error::ApiError;
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
#[tracing::instrument(skip_all)]
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
    let given = FirstAdmin {
        token: f.token.clone(),
        name: f.name.clone(),
        email: f.email.clone(),
        password: f.password,
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
            };
            return Ok(HttpResponse::UnprocessableEntity()
                .content_type("text/html; charset=utf-8")
                .body(page.render().map_err(|_| ApiError::Internal)?));
        }
        Err(e) => return Err(e),
    }
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
