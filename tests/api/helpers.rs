//! `spawn_app()` starts the real server in-process on a random port with a
//! temporary data folder; the methods below are one per endpoint so tests
//! read like the contract.

use std::time::Duration;

use futures_util::StreamExt;
use natter::config::ServeConfig;
use natter::startup::{Application, Stopper};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password";
/// The metrics token every test server is given (`/metrics` needs it).
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub data: TempDir,
    /// The port of `metrics_bind`, when the test set one.
    pub metrics_port: Option<u16>,
    pub admin_token: String,
    pub widget_key: String,
    pub inbox_id: String,
    pub stopper: Stopper,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Test settings: the bootstrap admin, and generous limits unless a test
/// is about limits.
/// A 1x1 PNG, for attachments.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

/// A client builder for tests. reqwest is built with rustls but no crypto
/// provider (natter installs ring at start); tests may build clients
/// before any server started, so they install it here. Idle pooled
/// connections are given up well before the server closes them (see
/// `natter::startup::KEEP_ALIVE`): reusing one just as the server closes
/// it is a race HTTP/1.1 keep-alive cannot avoid.
pub fn client_builder() -> reqwest::ClientBuilder {
    natter::channels::http::install_crypto_provider();
    Client::builder().pool_idle_timeout(natter::startup::KEEP_ALIVE / 2)
}

/// A default client for tests (see [`client_builder`]).
pub fn new_client() -> Client {
    client_builder().build().expect("client")
}

pub fn test_config(data: &TempDir) -> ServeConfig {
    let mut c = ServeConfig::for_data(data.path().to_path_buf());
    c.bootstrap_admin = Some((ADMIN_EMAIL.into(), ADMIN_PASSWORD.into()));
    c.contacts_per_minute = 0;
    c.contact_messages_per_minute = 0;
    c.sse_keepalive_secs = 15;
    c.metrics_token = Some(METRICS_TOKEN.into());
    // Provider fakes and webhook receivers listen on 127.0.0.1.
    c.webhooks_allow_private = true;
    c
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&data);
    tweak(&mut config);
    start(data, config).await
}

pub async fn start(data: TempDir, config: ServeConfig) -> TestApp {
    let app = Application::build(config).await.expect("build app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let metrics_port = app.metrics_port();
    let stopper = app.stopper();
    let server = tokio::spawn(app.run_until_stopped());
    let client = client_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut t = TestApp {
        base,
        client,
        data,
        metrics_port,
        admin_token: String::new(),
        widget_key: String::new(),
        inbox_id: String::new(),
        stopper,
        server,
    };
    t.admin_token = t.login_ok(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let inboxes = t.get("/api/v1/inboxes", &t.admin_token.clone()).await;
    let website = &body(inboxes).await["inboxes"][0];
    t.widget_key = website["widget_key"]
        .as_str()
        .expect("widget key")
        .to_owned();
    t.inbox_id = website["id"].as_str().expect("inbox id").to_owned();
    t
}

impl TestApp {
    /// Stops the server gracefully and hands back its data folder.
    pub async fn stop(self) -> TempDir {
        self.stopper.stop();
        self.server.await.expect("join").expect("clean stop");
        self.data
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `/metrics` as Prometheus reads it, with the metrics token.
    pub async fn metrics(&self) -> String {
        let r = self
            .client
            .get(self.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("metrics");
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.text().await.expect("metrics text")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request")
    }

    pub async fn login_ok(&self, email: &str, password: &str) -> String {
        let r = self.login(email, password).await;
        assert_eq!(r.status(), StatusCode::OK);
        body(r).await["token"].as_str().expect("token").to_owned()
    }

    /// Creates an agent (as admin) and signs it in: (id, token).
    pub async fn create_agent(&self, email: &str, role: &str) -> (String, String) {
        let r = self
            .post(
                "/api/v1/agents",
                &self.admin_token,
                json!({"email": email, "name": "Agent", "role": role, "password": "agent-password"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = body(r).await["id"].as_str().expect("id").to_owned();
        (id, self.login_ok(email, "agent-password").await)
    }

    pub async fn add_member(&self, inbox_id: &str, agent_id: &str) {
        let r = self
            .post(
                &format!("/api/v1/inboxes/{inbox_id}/members"),
                &self.admin_token,
                json!({"agent_id": agent_id}),
            )
            .await;
        assert!(r.status().is_success(), "{}", r.status());
    }

    /// A member agent of the Website inbox: (id, token).
    pub async fn member_agent(&self, email: &str) -> (String, String) {
        let (id, token) = self.create_agent(email, "agent").await;
        self.add_member(&self.inbox_id, &id).await;
        (id, token)
    }

    pub async fn create_inbox(&self, name: &str) -> Value {
        let r = self
            .post(
                "/api/v1/inboxes",
                &self.admin_token,
                json!({"name": name, "channel": "web"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        body(r).await
    }

    /// An anonymous contact of the Website inbox: (contact_id, token).
    pub async fn contact(&self) -> (String, String) {
        self.contact_in(&self.widget_key.clone(), json!({"name": "Casey"}))
            .await
    }

    pub async fn contact_in(&self, widget_key: &str, payload: Value) -> (String, String) {
        let r = self
            .client
            .post(self.url(&format!("/api/v1/widget/{widget_key}/contacts")))
            .json(&payload)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::CREATED);
        let b = body(r).await;
        (
            b["contact_id"].as_str().expect("id").to_owned(),
            b["token"].as_str().expect("token").to_owned(),
        )
    }

    /// A contact starts a conversation: (conversation_id, first message).
    pub async fn start_conversation(&self, contact_token: &str, text: &str) -> (String, Value) {
        let r = self
            .post(
                "/api/v1/customer/conversations",
                contact_token,
                json!({"body": text}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let b = body(r).await;
        (
            b["conversation"]["id"].as_str().expect("id").to_owned(),
            b["message"].clone(),
        )
    }

    pub async fn agent_says(
        &self,
        token: &str,
        conversation: &str,
        text: &str,
        private: bool,
    ) -> Value {
        let r = self
            .post(
                &format!("/api/v1/conversations/{conversation}/messages"),
                token,
                json!({"body": text, "private": private}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        body(r).await
    }

    /// The contact sends `body` with [`PNG`] attached as `name`: the
    /// message (201 asserted).
    pub async fn contact_sends_png(
        &self,
        token: &str,
        conversation: &str,
        body_text: &str,
        name: &str,
    ) -> Value {
        let form = reqwest::multipart::Form::new()
            .text("body", body_text.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(PNG.to_vec())
                    .file_name(name.to_owned())
                    .mime_str("image/png")
                    .unwrap(),
            );
        let r = self
            .client
            .post(self.url(&format!(
                "/api/v1/customer/conversations/{conversation}/messages"
            )))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::CREATED);
        body(r).await
    }

    pub async fn contact_says(&self, token: &str, conversation: &str, text: &str) -> Value {
        let r = self
            .post(
                &format!("/api/v1/customer/conversations/{conversation}/messages"),
                token,
                json!({"body": text}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        body(r).await
    }

    pub async fn agent_messages(&self, token: &str, conversation: &str, query: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!("/api/v1/conversations/{conversation}/messages{query}"),
                token,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        body(r).await["messages"]
            .as_array()
            .expect("messages")
            .clone()
    }

    pub async fn customer_messages(&self, token: &str, conversation: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!("/api/v1/customer/conversations/{conversation}/messages?limit=500"),
                token,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        body(r).await["messages"]
            .as_array()
            .expect("messages")
            .clone()
    }

    pub async fn conversation(&self, token: &str, id: &str) -> Value {
        let r = self
            .get(&format!("/api/v1/conversations/{id}"), token)
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        body(r).await
    }

    /// Opens an event stream; `last` sets Last-Event-ID.
    pub async fn events(&self, path: &str, token: &str, last: Option<&str>) -> EventStream {
        let mut req = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .timeout(Duration::from_secs(3600));
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l);
        }
        let r = req.send().await.expect("events");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/event-stream"));
        let mut s = EventStream {
            inner: Box::pin(r.bytes_stream()),
            buf: String::new(),
        };
        // The stream is registered once its first comment arrives.
        let first = s
            .next_frame(Duration::from_secs(10))
            .await
            .expect("connected comment");
        assert!(first.comment.is_some(), "{first:?}");
        s
    }
}

pub async fn body(r: Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({status}): {e}: {text}"))
}

/// Asserts the contract's error shape and code.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) {
    assert_eq!(r.status(), status);
    let b = body(r).await;
    assert_eq!(b["error"]["code"], code, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{b}"
    );
}

#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub comment: Option<String>,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap_or("null")).expect("event data is JSON")
    }
}

pub struct EventStream {
    inner:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl EventStream {
    /// Reads an already opened `text/event-stream` response (a page's
    /// stream, opened with a cookie).
    pub fn of(r: Response) -> Self {
        Self {
            inner: Box::pin(r.bytes_stream()),
            buf: String::new(),
        }
    }

    /// Whether the server ends the stream within `wait` (frames before the
    /// end are skipped); false if it is still open then.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next frame (event or comment), or None at the end or on timeout.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..pos + 2).collect();
                let mut f = Frame::default();
                for line in raw.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        f.comment = Some(c.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        f.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        f.event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        f.data = Some(v.to_owned());
                    }
                }
                return Some(f);
            }
            let chunk = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .ok()??
                .ok()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event (comments skipped); panics after `wait`.
    pub async fn next_event(&mut self) -> Frame {
        loop {
            let f = self
                .next_frame(Duration::from_secs(10))
                .await
                .expect("an event within 10 s");
            if f.event.is_some() {
                return f;
            }
        }
    }

    /// The next event of a given name (others skipped).
    pub async fn next_named(&mut self, name: &str) -> Frame {
        loop {
            let f = self.next_event().await;
            if f.event.as_deref() == Some(name) {
                return f;
            }
        }
    }
}

/// Loads the sign-in form as a browser would: its login cookie (to send
/// back) and the form's token.
pub async fn login_form(client: &Client, app: &TestApp) -> (String, String) {
    let r = client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = set_cookie(&r, "natter_login").expect("the form sets its login cookie");
    let html = r.text().await.unwrap();
    (cookie, form_csrf(&html))
}

/// A client that does not follow redirects (to see a 303 and its cookies).
pub fn no_redirects() -> Client {
    client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `name=value` of the cookie `name` a response sets, if it sets one.
pub fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// The token of a page's form (its hidden `csrf` field).
pub fn form_csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the form carries its token")
        .to_owned()
}

/// Posts the sign-in form the way the page does (its cookie and token).
pub async fn post_login(
    client: &Client,
    app: &TestApp,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (cookie, csrf) = login_form(client, app).await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &csrf));
    client
        .post(app.url("/login"))
        .header(reqwest::header::COOKIE, cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A browser signed in to the workspace through the sign-in form: its
/// client (no automatic redirects), session cookie and the pages' CSRF
/// token.
pub struct PageSession {
    pub client: Client,
    pub cookie: String,
    pub csrf: String,
}

impl PageSession {
    /// The HTML of a page, fetched with the session's cookie.
    pub async fn page(&self, app: &TestApp, path: &str) -> String {
        self.client
            .get(app.url(path))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// Signs in through the form as a browser does and reads the CSRF token
/// from the inbox page; checks the session cookie's flags on the way.
pub async fn page_sign_in(app: &TestApp, email: &str, password: &str) -> PageSession {
    let client = client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = post_login(
        &client,
        app,
        &[("email", email), ("password", password), ("next", "/inbox")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("natter_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "no Secure flag on plain http: {set}"
    );
    let cookie = set.split(';').next().unwrap_or_default().to_owned();
    let page = client
        .get(app.url("/inbox"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("inbox")
        .text()
        .await
        .expect("inbox page");
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's CSRF token")
        .to_owned();
    PageSession {
        client,
        cookie,
        csrf,
    }
}

/// A small tmpfs mounted for a test (a disk that can fill up), unmounted
/// however the test ends. `None`, with the reason printed, where the test
/// cannot mount one (not root, or mounting not allowed): the test then
/// says it was skipped.
pub struct SmallDisk {
    /// Where it is mounted.
    pub path: std::path::PathBuf,
    _dir: TempDir,
}

impl SmallDisk {
    pub fn mount(megabytes: u32) -> Option<SmallDisk> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: this test mounts a small tmpfs and needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        std::fs::create_dir_all(&path).expect("mount point");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: this machine does not allow mounting a tmpfs");
            return None;
        }
        Some(SmallDisk { path, _dir: dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}
