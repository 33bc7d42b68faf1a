//! The parts of natter's HTTP API the bench drives, and the load workers
//! built on them (posting messages, reading pages).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::ceilings::message_body;
use super::http::Conn;
use super::measure::{closed_loop, OpFuture, Run, Worker};

/// One contact with one conversation, and the paths to post into it as
/// either side (built once, not per request).
#[derive(Debug, Clone)]
pub struct Thread {
    /// The contact's bearer token.
    pub contact_token: String,
    /// The conversation id.
    pub conversation_id: String,
    /// `POST` here as an agent.
    pub agent_path: String,
    /// `POST` here as the contact.
    pub customer_path: String,
}

impl Thread {
    /// A thread with its two posting paths built once.
    fn new(contact_token: String, conversation_id: String) -> Self {
        Self {
            agent_path: format!("/api/v1/conversations/{conversation_id}/messages"),
            customer_path: format!("/api/v1/customer/conversations/{conversation_id}/messages"),
            contact_token,
            conversation_id,
        }
    }
}

/// A fresh connection, with the route named in the error.
pub async fn connect(addr: SocketAddr) -> Result<Conn, String> {
    Conn::connect(addr)
        .await
        .map_err(|e| format!("connect to natter at {addr}: {e}"))
}

/// Signs in and returns the bearer token.
pub async fn login(conn: &mut Conn, email: &str, password: &str) -> Result<String, String> {
    let body = json!({"email": email, "password": password}).to_string();
    let r = conn
        .post_json("/api/v1/auth/login", None, body.as_bytes())
        .await
        .map_err(|e| format!("login: {e}"))?
        .expect_status(200, "login")?;
    r.json("login")?["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "login: no token in the answer".into())
}

/// The widget key of the first inbox (the "Website" inbox natter creates).
pub async fn widget_key(conn: &mut Conn, token: &str) -> Result<String, String> {
    let r = conn
        .get("/api/v1/inboxes", Some(token))
        .await
        .map_err(|e| format!("inboxes: {e}"))?
        .expect_status(200, "inboxes")?;
    r.json("inboxes")?["inboxes"][0]["widget_key"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "inboxes: no widget_key".into())
}

/// Creates an admin agent and signs it in: one of the agents whose
/// streams watch every inbox.
pub async fn new_admin(conn: &mut Conn, admin_token: &str, n: usize) -> Result<String, String> {
    let email = format!("agent{n}@bench.example.com");
    let password = "bench-agent-password";
    let body = json!({"email": email, "name": format!("Agent {n}"), "role": "admin", "password": password})
        .to_string();
    conn.post_json("/api/v1/agents", Some(admin_token), body.as_bytes())
        .await
        .map_err(|e| format!("create agent: {e}"))?
        .expect_status(201, "create agent")?;
    login(conn, &email, password).await
}

/// A new contact (through the widget) with one new conversation.
async fn new_thread(conn: &mut Conn, widget_key: &str, i: u64) -> Result<Thread, String> {
    let r = conn
        .post_json(
            &format!("/api/v1/widget/{widget_key}/contacts"),
            None,
            b"{}",
        )
        .await
        .map_err(|e| format!("create contact: {e}"))?
        .expect_status(201, "create contact")?;
    let token = r.json("create contact")?["token"]
        .as_str()
        .ok_or("create contact: no token")?
        .to_owned();
    let r = conn
        .post_json(
            "/api/v1/customer/conversations",
            Some(&token),
            &message_body(i),
        )
        .await
        .map_err(|e| format!("create conversation: {e}"))?
        .expect_status(201, "create conversation")?;
    let id = r.json("create conversation")?["conversation"]["id"]
        .as_str()
        .ok_or("create conversation: no id")?
        .to_owned();
    Ok(Thread::new(token, id))
}

/// Creates threads with 64 connections.
struct ThreadMaker {
    /// Its connection.
    conn: Conn,
    /// The inbox's widget key.
    widget_key: Arc<str>,
    /// Where thread `i` goes.
    out: Arc<Mutex<Vec<Option<Thread>>>>,
}

impl Worker for ThreadMaker {
    fn op(&mut self, i: u64) -> OpFuture<'_> {
        Box::pin(async move {
            let t = new_thread(&mut self.conn, &self.widget_key, i).await?;
            self.out.lock().expect("threads poisoned")[i as usize] = Some(t);
            Ok(())
        })
    }
}

/// Creates `n` contacts, each with one conversation (one stored message
/// each), over `concurrency` connections.
pub async fn create_threads(
    addr: SocketAddr,
    widget_key: &str,
    n: usize,
    concurrency: usize,
) -> Result<(Vec<Thread>, Run), String> {
    let out = Arc::new(Mutex::new(vec![None; n]));
    let key: Arc<str> = widget_key.into();
    let mut workers = Vec::new();
    for _ in 0..concurrency.min(n.max(1)) {
        workers.push(ThreadMaker {
            conn: connect(addr).await?,
            widget_key: key.clone(),
            out: out.clone(),
        });
    }
    let run = closed_loop(workers, 0, n as u64, Duration::from_secs(600)).await;
    if run.errors > 0 || run.truncated {
        return Err(format!(
            "creating {n} conversations failed ({} errors, truncated: {}): {}",
            run.errors,
            run.truncated,
            run.first_error.unwrap_or_default()
        ));
    }
    let threads = std::mem::take(&mut *out.lock().expect("threads poisoned"));
    let threads = threads
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("creating {n} conversations: some were not created"))?;
    Ok((threads, run))
}

/// Who posts a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Side {
    /// An agent replies (`POST /api/v1/conversations/{id}/messages`).
    Agent,
    /// The contact writes (`POST /api/v1/customer/conversations/{id}/messages`).
    Contact,
}

/// Posts messages into a set of threads, operation `i` into thread
/// `i % threads.len()`, checking for 201 each time.
pub struct Poster {
    /// Its connection.
    conn: Conn,
    /// The conversations it posts into, round robin by operation number.
    threads: Arc<Vec<Thread>>,
    /// The agent's token (for `Side::Agent`).
    agent_token: Arc<str>,
    /// Who posts.
    side: Side,
    /// The run's count of stored messages.
    stored: Arc<AtomicU64>,
}

impl Poster {
    /// `concurrency` posters on their own connections.
    pub async fn many(
        addr: SocketAddr,
        concurrency: usize,
        threads: Arc<Vec<Thread>>,
        agent_token: &str,
        side: Side,
        stored: Arc<AtomicU64>,
    ) -> Result<Vec<Self>, String> {
        let token: Arc<str> = agent_token.into();
        let mut out = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            out.push(Self {
                conn: connect(addr).await?,
                threads: threads.clone(),
                agent_token: token.clone(),
                side,
                stored: stored.clone(),
            });
        }
        Ok(out)
    }
}

impl Worker for Poster {
    fn op(&mut self, i: u64) -> OpFuture<'_> {
        Box::pin(async move {
            let t = &self.threads[(i % self.threads.len() as u64) as usize];
            let (path, token) = match self.side {
                Side::Agent => (&t.agent_path, &*self.agent_token),
                Side::Contact => (&t.customer_path, t.contact_token.as_str()),
            };
            let r = self
                .conn
                .post_json(path, Some(token), &message_body(i))
                .await
                .map_err(|e| format!("post message: {e}"))?;
            r.expect_status(201, "post message")?;
            self.stored.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }
}

/// Signs in through the page form as a browser does (`GET /login` for the
/// form's cookie and token, then `POST /login`) and returns the session
/// cookie (`natter_session=...`) a browser would send.
pub async fn page_session(conn: &mut Conn, email: &str, password: &str) -> Result<String, String> {
    let form = conn
        .get("/login", None)
        .await
        .map_err(|e| format!("sign-in page: {e}"))?
        .expect_status(200, "sign-in page")?;
    let form_cookie = form
        .set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .find(|c| c.starts_with("natter_login="))
        .ok_or("sign-in page: no form cookie")?
        .to_owned();
    let html = String::from_utf8_lossy(&form.body);
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("sign-in page: no form token")?;
    let body = format!(
        "email={}&password={}&next=%2Finbox&csrf={}",
        form_escape(email),
        form_escape(password),
        form_escape(csrf)
    );
    let r = conn
        .post_form("/login", &form_cookie, &body)
        .await
        .map_err(|e| format!("page sign-in: {e}"))?;
    if r.status != 303 {
        return Err(format!("page sign-in: expected 303, got {}", r.status));
    }
    r.set_cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .find(|c| c.starts_with("natter_session=") && c.len() > "natter_session=".len())
        .map(str::to_owned)
        .ok_or_else(|| "page sign-in: no session cookie".into())
}

/// Percent-encodes a form value (everything but unreserved characters).
fn form_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How a page reader proves who it is.
#[derive(Debug, Clone)]
pub enum Auth {
    /// An API bearer token.
    Bearer(String),
    /// A browser session cookie (`natter_session=...`).
    Cookie(String),
}

/// What the first answer of a page must contain.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// A JSON array under this key with exactly this many items.
    JsonArray(&'static str, usize),
    /// An HTML page; this marker (e.g. `data-message-id=`) is counted and
    /// must occur at least once.
    Marker(&'static str),
}

/// Reads one page again and again on one connection (so the latency is
/// the server's time plus a loopback round trip), checking 200 and, on the
/// first read, that the page holds what it should.
pub struct PageReader {
    /// Its connection.
    conn: Conn,
    /// The page.
    path: String,
    /// Bearer token or session cookie.
    auth: Auth,
    /// What the first answer must hold.
    expect: Expect,
    /// Body size of the first answer, for the report.
    pub bytes: Arc<AtomicU64>,
    /// Items on the first answer (array length or marker count).
    pub items: Arc<AtomicU64>,
}

impl PageReader {
    /// A reader for `path`.
    pub async fn new(
        addr: SocketAddr,
        path: String,
        auth: Auth,
        expect: Expect,
    ) -> Result<Self, String> {
        Ok(Self {
            conn: connect(addr).await?,
            path,
            auth,
            expect,
            bytes: Arc::default(),
            items: Arc::default(),
        })
    }
}

impl Worker for PageReader {
    fn op(&mut self, i: u64) -> OpFuture<'_> {
        Box::pin(async move {
            let r = match &self.auth {
                Auth::Bearer(t) => self.conn.get(&self.path, Some(t)).await,
                Auth::Cookie(c) => self.conn.get_with_cookie(&self.path, c).await,
            }
            .map_err(|e| format!("GET {}: {e}", self.path))?
            .expect_status(200, &self.path)?;
            if i == 0 {
                let n = match self.expect {
                    Expect::JsonArray(key, want) => {
                        let n = r.json(&self.path)?[key].as_array().map_or(0, Vec::len);
                        if n != want {
                            return Err(format!("GET {}: {n} {key} instead of {want}", self.path));
                        }
                        n
                    }
                    Expect::Marker(marker) => {
                        let n = String::from_utf8_lossy(&r.body).matches(marker).count();
                        if n == 0 {
                            return Err(format!("GET {}: no {marker} on the page", self.path));
                        }
                        n
                    }
                };
                self.items.store(n as u64, Ordering::Relaxed);
                self.bytes.store(r.body.len() as u64, Ordering::Relaxed);
            }
            Ok(())
        })
    }
}

/// A number from natter's `/metrics` (e.g. `natter_sse_connections`).
pub async fn metric(addr: SocketAddr, name: &str) -> Result<f64, String> {
    let mut c = connect(addr).await?;
    let r = c
        .get("/metrics", Some(super::server::METRICS_TOKEN))
        .await
        .map_err(|e| format!("metrics: {e}"))?
        .expect_status(200, "metrics")?;
    let text = String::from_utf8_lossy(&r.body);
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok()).flatten()
        })
        .ok_or_else(|| format!("metrics: no {name}"))
}
