//! Response headers every answer carries, and request metrics.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};

use super::AppState;
use crate::metrics;

/// The strict policy of every page: no inline script, nothing from other
/// origins, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// The messenger is a widget: any site may frame it.
const CSP_MESSENGER: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors *";

/// Largest request head accepted (the contract's 32 KiB; actix itself
/// allows 128 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Adds the security headers and counts the request by route and status.
/// Refuses request heads over 32 KiB with 431.
pub async fn headers_and_metrics<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let head_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + req.uri().to_string().len();
    if req
        .conn_data::<super::connections::ConnectionSlot>()
        .is_some_and(|s| s.over_limit)
    {
        let res = HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, "5"))
            .insert_header((header::CONNECTION, "close"))
            .json(serde_json::json!({"error": {"code": "rate_limited", "message": "too many open connections from this address"}}));
        return Ok(req.into_response(res).map_into_right_body());
    }
    if head_bytes > MAX_HEADER_BYTES {
        let res = HttpResponse::build(actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).json(
            serde_json::json!({"error": {"code": "headers_too_large", "message": "request headers are larger than 32 KiB"}}),
        );
        return Ok(req.into_response(res).map_into_right_body());
    }
    let https = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.config.base_url.starts_with("https://"));
    let messenger = req.path().starts_with("/m/");
    let method = req.method().as_str().to_owned();
    let mut res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    metrics::global().request(&method, &route, res.status().as_u16());
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(if messenger { CSP_MESSENGER } else { CSP }),
        );
    }
    if !messenger {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    Ok(res.map_into_left_body())
}
