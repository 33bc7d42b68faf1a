//! The `natter` binary itself: start-up lines, clean errors, signals, and
//! `admin create`. These spawn the built executable.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_natter");

/// A running `natter serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: Vec<String>,
    /// The lines logged after the listening line.
    pub later: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Stops it as systemd would (SIGTERM) and waits until it has exited
    /// and let go of its data folder.
    pub async fn stop(mut self) {
        sigterm(&self.child);
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("stops within 30 s")
            .expect("wait");
        assert!(status.success(), "{status}");
    }

    /// Waits (bounded) for a line logged after the start that has every
    /// one of `parts`.
    pub async fn logged(&self, parts: &[&str]) -> String {
        self.logged_within(parts, Duration::from_secs(10)).await
    }

    /// [`Self::logged`] with another bound.
    pub async fn logged_within(&self, parts: &[&str], wait: Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(l) = self
                .later
                .lock()
                .unwrap()
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return l.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {parts:?} in {:?}",
                self.later.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Starts `natter serve` on a free port; `env` adds variables.
pub async fn serve(data: &std::path::Path, env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env("NATTER_DATA", data)
        .env("NATTER_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env_remove("NATTER_ADMIN_EMAIL")
        .env_remove("NATTER_ADMIN_PASSWORD")
        .env("NATTER_METRICS_TOKEN", crate::helpers::METRICS_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn natter");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut log = Vec::new();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            log.push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                if rest.starts_with("http://") || rest.starts_with("https://") {
                    return rest.split_whitespace().next().map(str::to_owned);
                }
            }
        }
        None
    })
    .await
    .expect("natter starts within 30 s")
    .unwrap_or_else(|| panic!("no 'listening on' line in {log:?}"));
    // Keep draining the log so the server never blocks on a full pipe.
    let later = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = later.clone();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(mut k) = keep.lock() {
                if k.len() < 10_000 {
                    k.push(l);
                }
            }
        }
    });
    Server {
        child,
        base: addr,
        log,
        later,
    }
}

/// Runs the binary to completion: (exit code, stderr).
pub async fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(input.as_bytes()).await.expect("write stdin");
    }
    drop(child.stdin.take());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exits")
        .expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("pid") as i32;
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

#[tokio::test]
async fn first_start_logs_the_setup_link_and_creates_the_website_inbox() {
    let data = tempfile::tempdir().unwrap();
    let mut s = serve(data.path(), &[]).await;
    let setup = s
        .log
        .iter()
        .find(|l| l.contains("/setup?token="))
        .expect("setup line");
    let url = setup
        .split_whitespace()
        .find(|w| w.contains("/setup?token="))
        .unwrap();
    assert!(url.starts_with(&s.base), "{url} under {}", s.base);
    let client = crate::helpers::new_client();
    let page = client.get(url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let token = url.split("token=").nth(1).unwrap();
    let r = client
        .post(format!("{}/setup", s.base))
        .form(&[
            ("token", token),
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("password", "ada-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Setting up ends signed in: the answer carries the session, and the
    // page leads to the inbox, which opens with it.
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("natter_session=") && !v.starts_with("natter_session=;"))
        .expect("a session cookie after setup")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let done = r.text().await.unwrap();
    assert!(done.contains("href=\"/inbox\""), "{done}");
    let inbox = crate::helpers::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/inbox", s.base))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(inbox.status(), StatusCode::OK, "the inbox opens signed in");
    // The link is single use.
    let again = client
        .post(format!("{}/setup", s.base))
        .form(&[
            ("token", token),
            ("name", "Eve"),
            ("email", "eve@example.com"),
            ("password", "eve-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    let login = client
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&json!({"email": "ada@example.com", "password": "ada-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let t: serde_json::Value = login.json().await.unwrap();
    assert_eq!(t["agent"]["role"], "admin");
    let inboxes: serde_json::Value = client
        .get(format!("{}/api/v1/inboxes", s.base))
        .bearer_auth(t["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inboxes["inboxes"][0]["name"], "Website");
    assert_eq!(inboxes["inboxes"].as_array().unwrap().len(), 1);
    s.child.kill().await.unwrap();
}

#[tokio::test]
async fn sigterm_closes_streams_flushes_and_exits_zero() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("NATTER_ADMIN_EMAIL", "a@example.com"),
        ("NATTER_ADMIN_PASSWORD", "a-password"),
    ];
    let mut s = serve(data.path(), &env).await;
    assert!(
        !s.log.iter().any(|l| l.contains("/setup?token=")),
        "no setup link when the admin comes from the environment"
    );
    let client = crate::helpers::new_client();
    let login: serde_json::Value = client
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&json!({"email": "a@example.com", "password": "a-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let stream = client
        .get(format!("{}/api/v1/events", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    sigterm(&s.child);
    let status = tokio::time::timeout(Duration::from_secs(10), s.child.wait())
        .await
        .expect("exits within 10 s")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // The stream was ended by the server, not left hanging.
    let rest = tokio::time::timeout(Duration::from_secs(5), stream.bytes())
        .await
        .expect("stream ended");
    drop(rest);
    // And the data is intact for the next start.
    let s2 = serve(data.path(), &[]).await;
    let r = client
        .get(format!("{}/api/v1/me", s2.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_port_in_use_ends_with_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let (code, err) = run(
        &[
            "serve",
            "--bind",
            &addr,
            "--data",
            data.path().to_str().unwrap(),
        ],
        &[],
        None,
    )
    .await;
    assert_ne!(code, 0);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("cannot listen on") && line.contains(&addr),
        "{line}"
    );
}

#[tokio::test]
async fn a_data_folder_in_use_by_another_natter_is_refused_and_left_unharmed() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("NATTER_ADMIN_EMAIL", "a@example.com"),
        ("NATTER_ADMIN_PASSWORD", "a-password"),
    ];
    let mut first = serve(data.path(), &env).await;
    let (code, err) = run(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data",
            data.path().to_str().unwrap(),
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("in use by another natter"), "{err}");
    let (code, err) = run(
        &[
            "admin",
            "create",
            "--email",
            "b@example.com",
            "--name",
            "B",
            "--password-stdin",
            "--data",
            data.path().to_str().unwrap(),
        ],
        &[],
        Some("b-password\n"),
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("in use by a running natter"), "{err}");
    // The first server still works.
    let r = crate::helpers::new_client()
        .get(format!("{}/healthz", first.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    first.child.kill().await.unwrap();
}

#[tokio::test]
async fn an_unusable_data_folder_and_bad_settings_end_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let (code, err) = run(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data",
            file.to_str().unwrap(),
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("cannot use the data folder"), "{err}");
    for args in [
        vec!["serve", "--bind", "nonsense"],
        vec!["serve", "--base-url", "ftp://example.com"],
        vec!["serve", "--cache-mb", "0"],
    ] {
        let (code, err) = run(&args, &[], None).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{args:?}: {err}"
        );
    }
    let (code, err) = run(&["serve"], &[("NATTER_BIND", "nonsense")], None).await;
    assert_eq!(code, 2, "{err}");
    let (code, err) = run(
        &["serve", "--data", dir.path().to_str().unwrap()],
        &[("NATTER_ADMIN_EMAIL", "x@example.com")],
        None,
    )
    .await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn admin_create_adds_an_agent_to_stopped_data() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let (code, err) = run(
        &[
            "admin",
            "create",
            "--email",
            "Root@Example.com",
            "--name",
            "Root",
            "--password-stdin",
            "--data",
            d,
        ],
        &[],
        Some("root-password\n"),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(
        &[
            "admin",
            "create",
            "--email",
            "root@example.com",
            "--name",
            "Root",
            "--password-stdin",
            "--data",
            d,
        ],
        &[],
        Some("root-password\n"),
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _) = run(
        &[
            "admin",
            "create",
            "--email",
            "x@example.com",
            "--name",
            "X",
            "--password-stdin",
            "--data",
            d,
        ],
        &[],
        Some("short\n"),
    )
    .await;
    assert_eq!(code, 2);
    let s = serve(data.path(), &[]).await;
    assert!(!s.log.iter().any(|l| l.contains("/setup?token=")));
    let r = crate::helpers::new_client()
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&json!({"email": "root@example.com", "password": "root-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn version_and_help_work() {
    let (code, _) = run(&["--version"], &[], None).await;
    assert_eq!(code, 0);
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["admin", "create", "--help"],
    ] {
        let (code, _) = run(&args, &[], None).await;
        assert_eq!(code, 0, "{args:?}");
    }
}

/// A sign-in through the form is logged as one through the API is: the
/// same line, with the agent, the address and the door.
#[tokio::test]
async fn browser_and_api_sign_ins_are_logged_alike() {
    let data = tempfile::tempdir().unwrap();
    let s = serve(
        data.path(),
        &[
            ("NATTER_ADMIN_EMAIL", "a@example.com"),
            ("NATTER_ADMIN_PASSWORD", "a-password"),
        ],
    )
    .await;
    let client = crate::helpers::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&serde_json::json!({"email": "a@example.com", "password": "a-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let api = s.logged(&["agent signed in", "via=\"api\""]).await;
    // The form: its cookie and token, then the post.
    let page = client
        .get(format!("{}/login", s.base))
        .send()
        .await
        .unwrap();
    let cookie = crate::helpers::set_cookie(&page, "natter_login").unwrap();
    let html = page.text().await.unwrap();
    let csrf = crate::helpers::form_csrf(&html);
    let r = client
        .post(format!("{}/login", s.base))
        .header(reqwest::header::COOKIE, cookie)
        .form(&[
            ("email", "a@example.com"),
            ("password", "a-password"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let browser = s.logged(&["agent signed in", "via=\"browser\""]).await;
    for line in [&api, &browser] {
        assert!(
            line.contains("agent=") && line.contains("ip=127.0.0.1"),
            "{line}"
        );
    }
    // A refused one is logged too, without the password.
    let r = client
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&serde_json::json!({"email": "a@example.com", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    let refused = s.logged(&["sign-in refused"]).await;
    assert!(!refused.contains("wrong-password"), "{refused}");
}

/// A data folder written by a newer natter (a higher schema version) is
/// refused with one clear line and exit code 2, by `serve` and by the
/// commands for stopped data, and left as it was.
#[tokio::test]
async fn a_newer_data_folder_is_refused_with_exit_code_2() {
    let data = tempfile::tempdir().unwrap();
    let mut s = serve(data.path(), &[]).await;
    sigterm(&s.child);
    s.child.wait().await.unwrap();
    {
        let db = sled::Config::new()
            .path(data.path().join("db"))
            .open()
            .unwrap();
        let meta = db.open_tree("meta").unwrap();
        let newer = natter::store::SCHEMA_VERSION + 1;
        meta.insert("schema_version", &newer.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let dir = data.path().to_str().unwrap();
    for args in [
        vec!["serve", "--bind", "127.0.0.1:0", "--data", dir],
        vec!["reindex", "--data", dir],
    ] {
        let (code, err) = run(&args, &[], None).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].contains("run a newer natter"), "{err}");
    }
    let db = sled::Config::new()
        .path(data.path().join("db"))
        .open()
        .unwrap();
    let v = db
        .open_tree("meta")
        .unwrap()
        .get("schema_version")
        .unwrap()
        .unwrap();
    assert_eq!(
        u32::from_be_bytes(v.as_ref().try_into().unwrap()),
        natter::store::SCHEMA_VERSION + 1,
        "left as it was"
    );
}
