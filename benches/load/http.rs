//! A lean HTTP/1.1 client over one keep-alive TCP connection.
//!
//! The load generator shares two cores with the server it measures, so every
//! cycle it spends is a cycle the server does not get. A hand-rolled client
//! that writes one buffer per request and parses only the status, the
//! framing headers and the body costs far less than a general client, and
//! it is the same client for natter and for the bare ceilings, so the
//! ratios stay fair.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One answer: the status and the whole body.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Every `Set-Cookie` value (a page sign-in answers with the session).
    pub set_cookies: Vec<String>,
}

impl Response {
    /// The body as JSON; a bench-level error names the route on failure.
    pub fn json(&self, what: &str) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "{what}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Fails unless the status is `want`, quoting the body so a failure in
    /// a long run says what the server answered.
    pub fn expect_status(self, want: u16, what: &str) -> Result<Self, String> {
        if self.status == want {
            Ok(self)
        } else {
            Err(format!(
                "{what}: expected {want}, got {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            ))
        }
    }
}

/// A keep-alive connection to one server. Not `Clone`: each load worker
/// owns one, exactly like a browser tab or an app would.
pub struct Conn {
    /// Where to (re)connect.
    addr: SocketAddr,
    /// The open connection, if any.
    io: Option<BufReader<TcpStream>>,
    /// The request being written, reused to avoid an allocation each time.
    request: Vec<u8>,
}

impl Conn {
    /// Opens the connection now, so connect time is not part of the first
    /// measured request.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let mut c = Self {
            addr,
            io: None,
            request: Vec::with_capacity(1024),
        };
        c.reopen().await?;
        Ok(c)
    }

    /// Opens a fresh connection (Nagle off: requests are one write each).
    async fn reopen(&mut self) -> io::Result<()> {
        let s = TcpStream::connect(self.addr).await?;
        s.set_nodelay(true)?;
        self.io = Some(BufReader::with_capacity(64 * 1024, s));
        Ok(())
    }

    /// `GET path`, optionally with a bearer token.
    pub async fn get(&mut self, path: &str, bearer: Option<&str>) -> io::Result<Response> {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        self.send("GET", path, &headers, None).await
    }

    /// `GET path` as a signed-in browser would, with the session cookie.
    pub async fn get_with_cookie(&mut self, path: &str, cookie: &str) -> io::Result<Response> {
        self.send("GET", path, &[("Cookie", cookie)], None).await
    }

    /// `POST path` with a JSON body, optionally with a bearer token.
    pub async fn post_json(
        &mut self,
        path: &str,
        bearer: Option<&str>,
        body: &[u8],
    ) -> io::Result<Response> {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        self.send("POST", path, &headers, Some(("application/json", body)))
            .await
    }

    /// `POST path` with a form body, as a browser submits a form (with the
    /// cookies its page set).
    pub async fn post_form(
        &mut self,
        path: &str,
        cookie: &str,
        body: &str,
    ) -> io::Result<Response> {
        self.send(
            "POST",
            path,
            &[("Cookie", cookie)],
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        )
        .await
    }

    /// Sends one request and reads its whole answer. A connection the server
    /// closed (a `Connection: close` answer) is reopened for the next
    /// request; a failure in the middle of an exchange is an error, never
    /// retried, so a request is never sent twice.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> io::Result<Response> {
        if self.io.is_none() {
            self.reopen().await?;
        }
        self.request.clear();
        self.request.extend_from_slice(method.as_bytes());
        self.request.push(b' ');
        self.request.extend_from_slice(path.as_bytes());
        self.request
            .extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: natter-bench\r\n");
        for (name, value) in headers {
            self.request.extend_from_slice(name.as_bytes());
            self.request.extend_from_slice(b": ");
            self.request.extend_from_slice(value.as_bytes());
            self.request.extend_from_slice(b"\r\n");
        }
        if let Some((content_type, b)) = body {
            self.request.extend_from_slice(b"Content-Type: ");
            self.request.extend_from_slice(content_type.as_bytes());
            self.request.extend_from_slice(b"\r\nContent-Length: ");
            self.request
                .extend_from_slice(b.len().to_string().as_bytes());
            self.request.extend_from_slice(b"\r\n\r\n");
            self.request.extend_from_slice(b);
        } else {
            self.request.extend_from_slice(b"\r\n");
        }
        let result = self.exchange(method == "HEAD").await;
        // After a failure the connection's state is unknown: start afresh.
        if !matches!(result, Ok((_, true))) {
            self.io = None;
        }
        result.map(|(r, _)| r)
    }

    /// Writes the prepared request and reads the answer; the flag says
    /// whether the connection stays open.
    async fn exchange(&mut self, is_head: bool) -> io::Result<(Response, bool)> {
        let io = self
            .io
            .as_mut()
            .ok_or_else(|| io::Error::other("connection not open"))?;
        io.get_mut().write_all(&self.request).await?;
        let head = read_head(io).await?;
        let body = read_body(io, &head, is_head).await?;
        let keep = !head.close;
        Ok((
            Response {
                status: head.status,
                body,
                set_cookies: head.set_cookies,
            },
            keep,
        ))
    }
}

/// What the response head says about the status and the body's framing.
pub struct Head {
    /// Status code.
    pub status: u16,
    /// `Content-Length`, if given.
    pub content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Connection: close`.
    pub close: bool,
    /// Every `Set-Cookie` value.
    pub set_cookies: Vec<String>,
}

/// Reads a response head (status line and headers) up to the blank line.
pub async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(io: &mut R) -> io::Result<Head> {
    let mut line = Vec::with_capacity(128);
    let mut head = Head {
        status: 0,
        content_length: None,
        chunked: false,
        close: false,
        set_cookies: Vec::new(),
    };
    let mut first = true;
    loop {
        line.clear();
        let n = io.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection before answering",
            ));
        }
        let text = trim_crlf(&line);
        if first {
            first = false;
            // "HTTP/1.1 201 Created"
            let status = text
                .split(|b| *b == b' ')
                .nth(1)
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad status line {:?}", String::from_utf8_lossy(text)),
                    )
                })?;
            head.status = status;
            continue;
        }
        if text.is_empty() {
            return Ok(head);
        }
        let Some(colon) = text.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = &text[..colon];
        let value = std::str::from_utf8(&text[colon + 1..]).unwrap_or("").trim();
        if name.eq_ignore_ascii_case(b"content-length") {
            head.content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            head.close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case(b"set-cookie") {
            head.set_cookies.push(value.to_owned());
        }
    }
}

/// Reads a response body as its head frames it (length, chunks, or until
/// the connection closes).
async fn read_body<R: tokio::io::AsyncBufRead + Unpin>(
    io: &mut R,
    head: &Head,
    is_head: bool,
) -> io::Result<Vec<u8>> {
    if is_head || head.status == 204 || head.status == 304 || head.status < 200 {
        return Ok(Vec::new());
    }
    if head.chunked {
        let mut body = Vec::new();
        while let Some(chunk) = read_chunk(io).await? {
            body.extend_from_slice(&chunk);
        }
        return Ok(body);
    }
    match head.content_length {
        Some(n) => {
            let mut body = vec![0; n];
            io.read_exact(&mut body).await?;
            Ok(body)
        }
        None => {
            let mut body = Vec::new();
            io.read_to_end(&mut body).await?;
            Ok(body)
        }
    }
}

/// Reads one chunk of a chunked body; `None` at the last (empty) chunk,
/// whose trailer is consumed too.
pub async fn read_chunk<R: tokio::io::AsyncBufRead + Unpin>(
    io: &mut R,
) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::with_capacity(16);
    if io.read_until(b'\n', &mut line).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside a chunked body",
        ));
    }
    let size_text = trim_crlf(&line);
    let size_text = size_text.split(|b| *b == b';').next().unwrap_or(size_text);
    let size = std::str::from_utf8(size_text)
        .ok()
        .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunk size {:?}", String::from_utf8_lossy(&line)),
            )
        })?;
    if size == 0 {
        // Trailer lines until the blank one.
        loop {
            line.clear();
            if io.read_until(b'\n', &mut line).await? == 0 || trim_crlf(&line).is_empty() {
                return Ok(None);
            }
        }
    }
    let mut chunk = vec![0; size + 2];
    io.read_exact(&mut chunk).await?;
    chunk.truncate(size);
    Ok(Some(chunk))
}

/// The line without its line ending.
fn trim_crlf(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\n' || line[end - 1] == b'\r') {
        end -= 1;
    }
    &line[..end]
}
