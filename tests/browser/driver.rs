//! Starts chromedriver on a free port and a headless Chromium session.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::process::{Child, Command};

pub struct Browser {
    pub client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Whether WebDriver gave up on a command because the page navigated
/// meanwhile (the page's own doing, e.g. "Resolve & next"): asked again, it
/// runs on the new page.
fn cut_by_navigation(e: &fantoccini::error::CmdError) -> bool {
    e.to_string().contains("aborted by navigation")
}

impl Browser {
    pub async fn start() -> Browser {
        Self::start_with(true, None).await
    }

    /// A browser with JavaScript switched off (progressive enhancement).
    pub async fn without_javascript() -> Browser {
        Self::start_with(false, None).await
    }

    /// A browser whose clock is in the time zone `tz` (an IANA name), as a
    /// user's abroad is.
    pub async fn in_zone(tz: &str) -> Browser {
        Self::start_with(true, Some(tz)).await
    }

    async fn start_with(javascript: bool, tz: Option<&str>) -> Browser {
        let port = free_port();
        let mut command =
            Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()));
        if let Some(tz) = tz {
            command.env("TZ", tz);
        }
        let driver = command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        // Wait until the driver answers, within a bound.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if crate::helpers::new_client()
                .get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    // The back/forward cache as a desktop browser keeps it
                    // (six pages), so the tests see what users see.
                    "--enable-features=BackForwardCache,BackForwardCacheSize:cache_size/6/foreground_cache_size/6",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": { "profile.managed_default_content_settings.javascript": if javascript { 1 } else { 2 } }
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("WebDriver session");
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits (up to 10 s) for an element. A look-up that a navigation the
    /// page started itself cut short (WebDriver's "aborted by navigation",
    /// e.g. after "Resolve & next" sets `window.location`) is asked again on
    /// the new page; any other error fails the test.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self
                .client
                .wait()
                .at_most(left)
                .for_element(Locator::Css(css))
                .await
            {
                Ok(e) => return e,
                Err(e) if cut_by_navigation(&e) && tokio::time::Instant::now() < deadline => {
                    continue
                }
                Err(e) => panic!("no element {css}: {e}"),
            }
        }
    }

    /// Waits (up to 10 s) until `css` matches an element whose text
    /// contains `text`.
    pub async fn find_text(&self, css: &str, text: &str) -> fantoccini::elements::Element {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = match self.client.find_all(Locator::Css(css)).await {
                Ok(found) => found,
                // The page is being replaced: look again on the new one.
                Err(e) if cut_by_navigation(&e) => Vec::new(),
                Err(e) => panic!("find_all {css}: {e}"),
            };
            for e in found {
                if e.text().await.unwrap_or_default().contains(text) {
                    return e;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                self.dump().await;
                panic!("no {css} containing {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs in through the login form.
    pub async fn sign_in(&self, base: &str, email: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.find("input[name=email]")
            .await
            .send_keys(email)
            .await
            .expect("type");
        self.find("input[name=password]")
            .await
            .send_keys(password)
            .await
            .expect("type");
        self.find("form button[type=submit]")
            .await
            .click()
            .await
            .expect("submit");
        self.find("[data-role=conversation-list]").await;
    }

    /// Saves a screenshot and the page source under the temp folder, to
    /// look at after a failure.
    pub async fn dump(&self) {
        let dir = std::env::temp_dir();
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(dir.join("natter-browser-failure.png"), png);
        }
        if let Ok(src) = self.client.source().await {
            let _ = std::fs::write(dir.join("natter-browser-failure.html"), src);
        }
        eprintln!(
            "browser state saved in {}/natter-browser-failure.*",
            dir.display()
        );
    }

    /// With `NATTER_SCREENSHOTS=<folder>`, saves the page as
    /// `<folder>/<name>.png`, to look at what a test saw (nothing otherwise).
    pub async fn snap(&self, name: &str) {
        let Some(dir) = std::env::var_os("NATTER_SCREENSHOTS") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
    }

    /// Waits (bounded) until every `<time>` of the page shows the viewer's
    /// zone, and checks that no text on it is a raw RFC 3339 timestamp.
    pub async fn assert_times_local(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v = self
                .client
                .execute(
                    "return [document.querySelectorAll('time[datetime]:not([data-local])').length, /\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}/.test(document.body.innerText), Array.from(document.querySelectorAll('time[title]')).filter(function (t) { return /\\d{4}-\\d{2}-\\d{2}T/.test(t.title); }).length];",
                    vec![],
                )
                .await
                .expect("script");
            if v == serde_json::json!([0, false, 0]) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                self.dump().await;
                panic!(
                    "times not shown in the viewer's zone (unlocalised, raw text, raw titles): {v}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What sticks out of the viewport sideways: each visible element whose
    /// box passes the left or right edge (elements in a container that
    /// scrolls or clips sideways, other than the page itself, are that
    /// container's business), and whether the page scrolls sideways.
    pub async fn overflowing(&self) -> Vec<String> {
        let v = self
            .client
            .execute(
                r#"
var W = document.documentElement.clientWidth;
var out = [];
if (document.documentElement.scrollWidth > W + 1) out.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + W);
document.querySelectorAll('body *').forEach(function (el) {
  var s = getComputedStyle(el);
  if (s.display === 'none' || s.visibility === 'hidden' || el.closest('[hidden], .sr-only, template')) return;
  var r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return;
  // A container that cuts its content off sideways (ellipsis aside).
  if (s.overflowX !== 'visible' && s.textOverflow !== 'ellipsis' && el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'TEXTAREA') {
    out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' cuts off sideways: ' + el.scrollWidth + ' > ' + el.clientWidth);
  }
  for (var p = el.parentElement; p && p !== document.body && p !== document.documentElement; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') return;
  }
  if (r.right > W + 1 || r.left < -1) {
    out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && el.className.baseVal === undefined ? '.' + String(el.className).trim().replace(/\s+/g, '.') : '') + ' ' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + W);
  }
});
return out;
"#,
                vec![],
            )
            .await
            .expect("script");
        serde_json::from_value(v).unwrap_or_default()
    }

    /// Resizes the window (a phone is 390 x 844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
