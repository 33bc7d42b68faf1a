//! The password pages anyone can reach: "Forgot password" (asks for a
//! mailed link) and choosing a password from a link (an invitation or a
//! reset), which signs the browser in. The rules are in
//! [`crate::service::password_links`]; both forms carry the
//! `natter_password` form cookie's token, so a hostile page cannot post
//! them (it could otherwise sign a visitor in to an account it holds a
//! link for).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::render;
use crate::error::ApiError;
use crate::service::password_links::Purpose;
use crate::web::extract::ClientIp;
use crate::web::session::{same_origin, session_cookie, PageError, PASSWORD_FORM};
use crate::web::AppState;

/// Registers the password routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/password/forgot", web::get().to(forgot_page))
        .route("/password/forgot", web::post().to(forgot_submit))
        .route("/password/set", web::get().to(set_page))
        .route("/password/set", web::post().to(set_submit));
}

#[derive(Template)]
#[template(path = "password_forgot.html")]
struct ForgotPage {
    csrf: String,
    email: String,
    sent: bool,
    can_mail: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "password_set.html")]
struct SetPage {
    csrf: String,
    token: String,
    /// The agent's name; `None` when the link is no good.
    name: Option<String>,
    email: String,
    invite: bool,
    error: Option<String>,
}

fn secure(state: &AppState) -> bool {
    state.config.base_url.starts_with("https://")
}

/// A page with the form cookie: this browser's token, and a fresh cookie
/// when it had none.
fn form_token(
    state: &AppState,
    req: &HttpRequest,
) -> (String, Option<actix_web::cookie::Cookie<'static>>) {
    match PASSWORD_FORM.token(req) {
        Some(t) => (t, None),
        None => {
            let (t, c) = PASSWORD_FORM.issue(secure(state));
            (t, Some(c))
        }
    }
}

fn page<T: Template>(
    status: StatusCode,
    t: &T,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> Result<HttpResponse, PageError> {
    let mut res = HttpResponse::build(status);
    res.content_type("text/html; charset=utf-8")
        // The link's token is in this page's address: never send it to
        // another site. (Not `no-referrer`: with it, Chromium posts the
        // form with `Origin: null`, which the CSRF check refuses.)
        .insert_header((header::REFERRER_POLICY, "same-origin"));
    if let Some(c) = cookie {
        res.cookie(c);
    }
    Ok(res.body(render(t)?))
}

/// Whether a post came from our own form in this browser.
fn genuine(state: &AppState, req: &HttpRequest, csrf: Option<&str>) -> bool {
    same_origin(req, &state.config.base_url) && PASSWORD_FORM.ok(req, csrf)
}

const NOT_OURS: &str = "This form has expired or did not come from this site. Please try again.";

#[tracing::instrument(skip_all)]
async fn forgot_page(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let (csrf, cookie) = form_token(&state, &req);
    page(
        StatusCode::OK,
        &ForgotPage {
            csrf,
            email: String::new(),
            sent: false,
            can_mail: state.svc.can_send_mail(),
            error: None,
        },
        cookie,
    )
}

/// The "Forgot password" form.
#[derive(Deserialize)]
pub struct ForgotForm {
    csrf: Option<String>,
    email: String,
}

#[tracing::instrument(skip_all, fields(ip = %ip.0))]
async fn forgot_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    ip: ClientIp,
    form: web::Form<ForgotForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.into_inner();
    let (csrf, cookie) = form_token(&state, &req);
    let mut p = ForgotPage {
        csrf,
        email: f.email.trim().to_owned(),
        sent: false,
        can_mail: state.svc.can_send_mail(),
        error: None,
    };
    if !genuine(&state, &req, f.csrf.as_deref()) {
        p.error = Some(NOT_OURS.into());
        return page(StatusCode::FORBIDDEN, &p, cookie);
    }
    match state.svc.forgot_password(&f.email, ip.0).await {
        Ok(()) => {
            p.sent = true;
            page(StatusCode::OK, &p, cookie)
        }
        Err(ApiError::TooManyRequests(_)) => {
            p.error = Some(
                "Too many links asked for. Wait an hour, or ask an admin of your team.".into(),
            );
            page(StatusCode::TOO_MANY_REQUESTS, &p, cookie)
        }
        Err(e) => Err(e.into()),
    }
}

/// `?t=` of a link.
#[derive(Deserialize)]
pub struct LinkQuery {
    t: Option<String>,
}

async fn set_form(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let (csrf, cookie) = form_token(state, req);
    let mut p = SetPage {
        csrf,
        token: token.to_owned(),
        name: None,
        email: String::new(),
        invite: false,
        error,
    };
    match state.svc.password_link(token).await {
        Ok(holder) => {
            p.name = Some(holder.agent.name);
            p.email = holder.agent.email;
            p.invite = holder.purpose == Purpose::Invite;
            page(status, &p, cookie)
        }
        Err(ApiError::Invalid(_)) => page(StatusCode::GONE, &p, cookie),
        Err(e) => Err(e.into()),
    }
}

#[tracing::instrument(skip_all)]
async fn set_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<LinkQuery>,
) -> Result<HttpResponse, PageError> {
    let token = q.into_inner().t.unwrap_or_default();
    set_form(&state, &req, &token, None, StatusCode::OK).await
}

/// The "choose a password" form.
#[derive(Deserialize)]
pub struct SetForm {
    csrf: Option<String>,
    t: String,
    password: String,
}

#[tracing::instrument(skip_all, fields(ip = %ip.0))]
async fn set_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    ip: ClientIp,
    form: web::Form<SetForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.into_inner();
    if !genuine(&state, &req, f.csrf.as_deref()) {
        return set_form(
            &state,
            &req,
            &f.t,
            Some(NOT_OURS.into()),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    match state.svc.set_password_by_link(&f.t, f.password, ip.0).await {
        Ok(signed_in) => Ok(HttpResponse::SeeOther()
            .cookie(session_cookie(
                &signed_in.credential.token,
                secure(&state),
                state.config.token_ttl_secs,
            ))
            .insert_header((header::LOCATION, "/inbox"))
            .finish()),
        // A refused password re-asks on the same link; a link that went
        // meanwhile shows the "expired" page.
        Err(ApiError::Invalid(e)) if e.field != "t" => {
            set_form(
                &state,
                &req,
                &f.t,
                Some(e.message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(ApiError::Invalid(_)) => set_form(&state, &req, &f.t, None, StatusCode::GONE).await,
        Err(e) => Err(e.into()),
    }
}
