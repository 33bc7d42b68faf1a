//! A local stand-in for provider APIs and webhook receivers, started by a
//! test on 127.0.0.1 and pointed at with `api_base` / `callback_url`. It
//! records every request and answers from rules the test sets (by path
//! substring), so a test can script outages, 410s and redirects.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status the fake answered.
    pub status: u16,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).expect("form body")
    }
    pub fn form_field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

#[derive(Clone)]
struct Rule {
    path: String,
    status: u16,
    body: Vec<u8>,
    content_type: String,
    headers: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    rules: Mutex<Vec<Rule>>,
    /// Per path substring, statuses for the next requests (an outage).
    failures: Mutex<Vec<(String, VecDeque<u16>)>>,
    changed: Notify,
}

pub struct Fake {
    pub url: String,
    state: Arc<State>,
}

async fn handle(state: web::Data<Arc<State>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let path = req.path().to_owned();
    let failure = {
        let mut f = state.failures.lock().unwrap();
        f.iter_mut()
            .find(|(p, q)| path.contains(p.as_str()) && !q.is_empty())
            .and_then(|(_, q)| q.pop_front())
    };
    let rule = state
        .rules
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|r| path.contains(r.path.as_str()))
        .cloned();
    let (status, resp) = match (failure, rule) {
        (Some(code), _) => (
            code,
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap())
                .content_type("application/json")
                .body(r#"{"error":{"message":"scripted failure"},"message":"scripted failure"}"#),
        ),
        (None, Some(r)) => {
            let mut b =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(r.status).unwrap());
            b.content_type(r.content_type.clone());
            for (k, v) in &r.headers {
                b.insert_header((k.clone(), v.clone()));
            }
            (r.status, b.body(r.body.clone()))
        }
        (None, None) => (404, HttpResponse::NotFound().body("no rule")),
    };
    let rec = Recorded {
        method: req.method().to_string(),
        path,
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.to_vec(),
        status,
    };
    state.requests.lock().unwrap().push(rec);
    state.changed.notify_waiters();
    resp
}

impl Fake {
    pub async fn start() -> Fake {
        let state = Arc::new(State::default());
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(32 * 1024 * 1024))
                .default_service(web::to(handle))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        // Runs until the test's runtime ends.
        tokio::spawn(server.run());
        Fake {
            url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// Answers requests whose path contains `path` (newest rule wins).
    pub fn json(&self, path: &str, status: u16, body: serde_json::Value) {
        self.raw(
            path,
            status,
            body.to_string().into_bytes(),
            "application/json",
            vec![],
        );
    }

    pub fn raw(
        &self,
        path: &str,
        status: u16,
        body: Vec<u8>,
        content_type: &str,
        headers: Vec<(&str, &str)>,
    ) {
        self.state.rules.lock().unwrap().push(Rule {
            path: path.to_owned(),
            status,
            body,
            content_type: content_type.to_owned(),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        });
    }

    /// The next requests to `path` get these statuses (an outage), then
    /// the rules apply again.
    pub fn fail_next(&self, path: &str, statuses: &[u16]) {
        self.state
            .failures
            .lock()
            .unwrap()
            .push((path.to_owned(), statuses.iter().copied().collect()));
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.contains(path))
            .cloned()
            .collect()
    }

    /// Waits (bounded) until `n` requests to `path` arrived.
    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.state.changed.notified();
            let got = self.requests(path);
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {n} requests to {path} within {within:?}, got {}: {:?}",
                    got.len(),
                    self.state
                        .requests
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|r| r.path.clone())
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}

/// A 1x1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Whether a request carries a Standard Webhooks v1 signature made with
/// `secret` (`whsec_` + base64 key).
pub fn verify_standard_webhook(secret: &str, r: &Recorded) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    let signed = format!(
        "{}.{}.",
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap()
    );
    mac.update(signed.as_bytes());
    mac.update(&r.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    r.header("webhook-signature")
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}
