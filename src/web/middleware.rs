//! Response headers every answer carries, request metrics, and the
//! deadline on request bodies.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse};

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
    let mut req = req;
    let timed_out = deadline_on_body(&mut req);
    let res = next.call(req).await?;
    let mut res = if timed_out.is_some_and(|t| t.load(Ordering::Relaxed)) {
        // Whatever the handler made of the broken body, the answer is a
        // 408 and the connection is closed (the rest of the body is never
        // read).
        let timeout = HttpResponse::RequestTimeout().force_close().json(serde_json::json!(
            {"error": {"code": "request_timeout", "message": "the request body arrived too slowly"}}
        ));
        let (request, _) = res.into_parts();
        ServiceResponse::new(request, timeout).map_into_right_body()
    } else {
        res.map_into_left_body()
    };
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    metrics::global().request(method, route, res.status().as_u16());
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A page whose address holds a secret (a password link) sets a
    // stricter one itself.
    if !h.contains_key(header::REFERRER_POLICY) {
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
    }
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
    Ok(res)
}

/// How fast a body must arrive once its grace period is used up: one
/// second more for every this many bytes received.
const BODY_BYTES_PER_SECOND: u64 = 16 * 1024;

/// Puts a deadline on the request's body, if it has one: it must arrive
/// within `NATTER_BODY_TIMEOUT_SECS` plus a second per 16 KiB received
/// (so large uploads on slow links pass, a trickle does not). Returns the
/// flag that turns true when the deadline passed.
fn deadline_on_body(req: &mut ServiceRequest) -> Option<Arc<AtomicBool>> {
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return None;
    }
    let grace = req
        .app_data::<web::Data<AppState>>()
        .map_or(10, |s| s.config.body_timeout_secs);
    let flag = Arc::new(AtomicBool::new(false));
    let inner = req.take_payload();
    let timed = TimedBody {
        inner,
        started: Instant::now(),
        grace: Duration::from_secs(grace),
        received: 0,
        sleep: Box::pin(tokio::time::sleep(Duration::from_secs(grace))),
        flag: flag.clone(),
        done: false,
    };
    let boxed: actix_http::BoxedPayloadStream = Box::pin(timed);
    req.set_payload(actix_web::dev::Payload::from(boxed));
    Some(flag)
}

/// A request body with a deadline that grows with what has arrived.
struct TimedBody {
    inner: actix_web::dev::Payload,
    started: Instant,
    grace: Duration,
    received: u64,
    sleep: Pin<Box<Sleep>>,
    flag: Arc<AtomicBool>,
    done: bool,
}

impl TimedBody {
    fn deadline(&self) -> Instant {
        self.started + self.grace + Duration::from_secs(self.received / BODY_BYTES_PER_SECOND)
    }
}

impl Stream for TimedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                let deadline = self.deadline();
                self.sleep.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.done = true;
                    self.flag.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body arrived too slowly",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
