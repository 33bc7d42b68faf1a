//! A lean Server-Sent Events client: one raw TCP connection per stream.
//!
//! Ten thousand open streams in one process rule out anything heavy per
//! stream: this holds a socket, a read buffer and a partial frame, and
//! parses frames only as far as the benchmark needs (id, event name, data).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::http::{read_chunk, read_head};

/// One event as sent by the server (comments and the `retry:` preamble
/// are dropped).
#[derive(Debug, Clone)]
pub struct Frame {
    /// `id:`, the event id (durable events have one; typing has none).
    pub id: Option<u64>,
    /// `event:`, e.g. `message.created`.
    pub event: String,
    /// `data:`, one line of JSON.
    pub data: String,
}

/// The fields of a `message.created` payload the benchmark checks.
#[derive(Debug, serde::Deserialize)]
pub struct MessageData {
    /// The message id.
    pub id: String,
    /// Its conversation, to catch an event sent to the wrong stream.
    pub conversation_id: String,
}

/// An open event stream.
pub struct SseStream {
    /// The connection, positioned inside the chunked body.
    io: BufReader<TcpStream>,
    /// Bytes of a frame not yet complete.
    pending: Vec<u8>,
    /// Complete frames not yet returned.
    frames: VecDeque<Frame>,
}

impl SseStream {
    /// Opens `GET path` with a bearer token and, to resume, `Last-Event-ID`.
    /// Returns once the server has answered 200: natter subscribes to the
    /// live feed before it answers, so nothing published after this returns
    /// can be missed.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        bearer: &str,
        last_event_id: Option<u64>,
    ) -> Result<Self, String> {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect for {path}: {e}"))?;
        s.set_nodelay(true)
            .map_err(|e| format!("nodelay for {path}: {e}"))?;
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer {bearer}\r\n"
        );
        if let Some(id) = last_event_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        // A small buffer: most streams see one or two events in a run.
        let mut io = BufReader::with_capacity(4096, s);
        io.get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send {path}: {e}"))?;
        let head = read_head(&mut io)
            .await
            .map_err(|e| format!("open {path}: {e}"))?;
        if head.status != 200 || !head.chunked {
            return Err(format!(
                "open {path}: expected a chunked 200, got {} (chunked: {})",
                head.status, head.chunked
            ));
        }
        Ok(Self {
            io,
            pending: Vec::new(),
            frames: VecDeque::new(),
        })
    }

    /// The next event, or `None` when the server ended the stream.
    pub async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Ok(Some(f));
            }
            let Some(chunk) = read_chunk(&mut self.io).await? else {
                return Ok(None);
            };
            self.pending.extend_from_slice(&chunk);
            self.split_frames();
        }
    }

    /// Moves every complete frame (ended by a blank line) to `frames`.
    fn split_frames(&mut self) {
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let raw: Vec<u8> = self.pending.drain(..end + 2).collect();
            if let Some(f) = parse_frame(&raw[..end]) {
                self.frames.push_back(f);
            }
        }
    }
}

/// Parses one frame; comments and the `retry:` preamble give `None`.
fn parse_frame(raw: &[u8]) -> Option<Frame> {
    let text = String::from_utf8_lossy(raw);
    let mut frame = Frame {
        id: None,
        event: String::new(),
        data: String::new(),
    };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            frame.id = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("event:") {
            frame.event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            if !frame.data.is_empty() {
                frame.data.push('\n');
            }
            frame.data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    if frame.event.is_empty() && frame.data.is_empty() {
        None
    } else {
        Some(frame)
    }
}
