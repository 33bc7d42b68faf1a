//! The body of "post a message" routes, in any of the three forms clients
//! send: JSON (`{"body","private"?}`), a URL-encoded form (pages without
//! files) or `multipart/form-data` with `body`, `private` and up to five
//! `file` parts (pages and apps with attachments).
//!
//! The body is read only when the handler asks ([`MessageUpload::read`]),
//! after it has checked who is asking and their rate limits, so a refused
//! request never gets a byte onto the disk. Files then stream to temporary
//! names ([`Staged`]), each chunk counted against the upload quotas and the
//! free-space reserve before it is written, and are removed unless their
//! message is stored.

use std::net::IpAddr;

use actix_multipart::Multipart;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::Deserialize;

use super::extract::{parse_json, MAX_JSON_BYTES};
use super::AppState;
use crate::domain::ids::ContactId;
use crate::domain::{ContactName, Email, Invalid, MessageBody};
use crate::error::ApiError;
use crate::service::files::{Staged, MAX_FILES};
use crate::service::messages::{io_failure, NewPost};
// Where the messenger and the customer API still prepare messages themselves.
pub use crate::service::messages::{prepare, Prepared};

/// A message as submitted, before validation.
#[derive(Default)]
pub struct MessageInput {
    /// The text (may be empty when files are attached).
    pub body: String,
    /// A team-only note (ignored for contacts).
    pub private: bool,
    /// The files, on disk under temporary names until the message is
    /// stored (removed if it is not).
    pub files: Staged,
    /// A form field some pages send with the CSRF token.
    pub csrf: Option<String>,
    /// A new contact's name (messenger's first message).
    pub name: Option<String>,
    /// A new contact's email (messenger's first message).
    pub email: Option<String>,
    /// Agents: the inbox (channel) to send the reply through instead of
    /// the conversation's own.
    pub via: Option<String>,
}

/// Who is uploading, for the hourly upload quotas: agents are not limited;
/// a contact counts against its own quota and its address's, someone
/// writing a first message against the address's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uploader {
    /// The contact, once known.
    pub contact: Option<ContactId>,
    /// The client address (none for agents).
    pub address: Option<IpAddr>,
}

impl Uploader {
    /// An agent: no quota (agents' calls are not limited by default).
    pub fn agent() -> Self {
        Self::default()
    }
}

/// A message body not read yet: the handler checks credentials and limits
/// first, then calls [`MessageUpload::read`].
pub struct MessageUpload {
    req: HttpRequest,
    payload: Payload,
}

impl FromRequest for MessageUpload {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self {
            req: req.clone(),
            payload: payload.take(),
        }))
    }
}

/// What file parts count against while they are received.
struct Receiving<'a> {
    state: &'a AppState,
    who: Uploader,
}

impl Receiving<'_> {
    /// Counts `n` more bytes of files: the uploader's quotas, then the
    /// free-space reserve; both refuse before the bytes are written.
    fn account(&self, n: usize) -> Result<(), ApiError> {
        self.state
            .svc
            .account_upload(self.who.contact, self.who.address, n as u64)
    }
}

impl MessageUpload {
    /// Reads the message. Multipart files go to temporary files under the
    /// store's files folder, within `NATTER_MAX_UPLOAD_MB` each, the
    /// uploader's quotas and the free-space reserve.
    pub async fn read(self, state: &AppState, who: Uploader) -> Result<MessageInput, ApiError> {
        let MessageUpload { req, mut payload } = self;
        let Some(mime) = req.mime_type().ok().flatten() else {
            return Err(ApiError::UnsupportedMediaType(
                "send JSON, a form or multipart/form-data",
            ));
        };
        match (mime.type_().as_str(), mime.subtype().as_str()) {
            ("multipart", "form-data") => {
                let max_file = state.config.max_upload_bytes;
                let declared = req
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if let Some(len) = declared {
                    // Five whole files and the text fields, at most.
                    let most = (MAX_FILES * max_file + 8 * MAX_JSON_BYTES) as u64;
                    if len > most {
                        return Err(ApiError::TooLarge(most as usize));
                    }
                    state.svc.check_room(len)?;
                }
                let rx = Receiving { state, who };
                parse_multipart(
                    Multipart::new(req.headers(), payload),
                    max_file,
                    Some((rx, state.svc.staging())),
                )
                .await
            }
            ("application", "x-www-form-urlencoded") => {
                let bytes = read_body(&mut payload).await?;
                if std::str::from_utf8(&bytes).is_err() {
                    return Err(ApiError::Malformed("the form is not valid UTF-8".into()));
                }
                let f: FormBody = serde_urlencoded::from_bytes(&bytes)
                    .map_err(|e| ApiError::Malformed(format!("bad form: {e}")))?;
                Ok(MessageInput {
                    body: f.body,
                    private: f.private.as_deref().is_some_and(truthy),
                    files: Staged::default(),
                    csrf: f.csrf,
                    name: f.name,
                    email: f.email,
                    via: f.via,
                })
            }
            (_, sub) if sub == "json" || mime.suffix().is_some_and(|s| s == "json") => {
                let bytes = read_body(&mut payload).await?;
                let b: JsonBody = parse_json(&bytes)?;
                Ok(MessageInput {
                    body: b.body,
                    private: b.private,
                    via: b.via,
                    ..MessageInput::default()
                })
            }
            _ => Err(ApiError::UnsupportedMediaType(
                "send JSON, a form or multipart/form-data",
            )),
        }
    }
}

#[derive(Deserialize)]
struct JsonBody {
    body: String,
    #[serde(default)]
    private: bool,
    via: Option<String>,
}

#[derive(Deserialize)]
struct FormBody {
    #[serde(default)]
    body: String,
    private: Option<String>,
    csrf: Option<String>,
    name: Option<String>,
    email: Option<String>,
    via: Option<String>,
}

fn truthy(v: &str) -> bool {
    matches!(v, "true" | "on" | "1")
}

async fn read_limited(
    mut field: actix_multipart::Field,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::Malformed(format!("could not read the upload: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Bytes gathered before one blocking write of a file.
const WRITE_BATCH: usize = 256 * 1024;

/// Receives one file part into `staged`: every chunk is checked (size,
/// quotas, reserve) before it is written.
async fn receive_file(
    mut field: actix_multipart::Field,
    name: &str,
    max_file: usize,
    rx: &Receiving<'_>,
    staged: &mut Staged,
) -> Result<(), ApiError> {
    let mut w = staged.begin(name).map_err(io_failure)?;
    let mut buf = Vec::with_capacity(WRITE_BATCH);
    while let Some(chunk) = field.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::Malformed(format!("could not read the upload: {e}")))?;
        if w.size() as usize + buf.len() + chunk.len() > max_file {
            return Err(ApiError::TooLarge(max_file));
        }
        rx.account(chunk.len())?;
        buf.extend_from_slice(&chunk);
        if buf.len() >= WRITE_BATCH {
            let (back, res) = web::block(move || {
                let (mut w, mut buf) = (w, buf);
                let r = w.write(&buf);
                buf.clear();
                ((w, buf), r)
            })
            .await
            .map_err(|_| ApiError::Internal)?;
            (w, buf) = back;
            res.map_err(io_failure)?;
        }
    }
    let (w, res) = web::block(move || {
        let mut w = w;
        let r = w.write(&buf).and_then(|()| w.sync());
        (w, r)
    })
    .await
    .map_err(|_| ApiError::Internal)?;
    res.map_err(io_failure)?;
    staged.finish(w);
    Ok(())
}

/// Checks a text field as soon as it arrives, so a bad name, email or
/// over-long text refuses the message before any file after it is read.
fn check_field(name: &str, text: &str) -> Result<(), ApiError> {
    match name {
        "body" if !text.trim().is_empty() => {
            MessageBody::parse(text.to_owned())?;
        }
        "name" => {
            ContactName::parse(Some(text))?;
        }
        "email" if !text.trim().is_empty() => {
            Email::parse(text.trim())?;
        }
        _ => {}
    }
    Ok(())
}

/// Reads a `multipart/form-data` message: `body`, `private`, `name`,
/// `email`, `csrf` and up to five `file` parts of at most `max_file` bytes.
/// With `into`, files are received there (see [`MessageUpload::read`]);
/// without (the fuzzers), their bytes are read and dropped.
async fn parse_multipart(
    mut mp: Multipart,
    max_file: usize,
    into: Option<(Receiving<'_>, Staged)>,
) -> Result<MessageInput, ApiError> {
    let mut input = MessageInput::default();
    let (rx, mut staged) = match into {
        Some((rx, staged)) => (Some(rx), staged),
        None => (None, Staged::default()),
    };
    let mut dropped_files = 0;
    while let Some(field) = mp.next().await {
        let field = field.map_err(|e| ApiError::Malformed(format!("bad multipart body: {e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" | "files" | "files[]" => {
                if staged.len() + dropped_files == MAX_FILES {
                    // A sixth part is refused at its first bytes, unless it
                    // is an empty file input.
                    let mut field = field;
                    let mut empty = true;
                    while let Some(chunk) = field.next().await {
                        let chunk = chunk.map_err(|e| {
                            ApiError::Malformed(format!("could not read the upload: {e}"))
                        })?;
                        if !chunk.is_empty() {
                            empty = false;
                            break;
                        }
                    }
                    if empty {
                        continue;
                    }
                    return Err(Invalid::new(
                        "files",
                        format!("at most {MAX_FILES} files per message"),
                    )
                    .into());
                }
                let file_name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .unwrap_or("file")
                    .to_owned();
                match &rx {
                    Some(rx) => receive_file(field, &file_name, max_file, rx, &mut staged).await?,
                    None => {
                        if !read_limited(field, max_file).await?.is_empty() {
                            dropped_files += 1;
                        }
                    }
                }
            }
            "body" | "private" | "csrf" | "name" | "email" | "via" => {
                let bytes = read_limited(field, MAX_JSON_BYTES).await?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| ApiError::Malformed("fields must be UTF-8".into()))?;
                check_field(&name, &text)?;
                match name.as_str() {
                    "body" => input.body = text,
                    "private" => input.private = truthy(&text),
                    "name" => input.name = Some(text),
                    "email" => input.email = Some(text),
                    "via" => input.via = Some(text),
                    _ => input.csrf = Some(text),
                }
            }
            _ => {
                read_limited(field, MAX_JSON_BYTES).await?;
            }
        }
    }
    input.files = staged;
    Ok(input)
}

/// The same from raw bytes and a `Content-Type` value (for the fuzzers).
pub async fn parse_multipart_bytes(
    content_type: &str,
    body: Vec<u8>,
    max_file: usize,
) -> Result<MessageInput, ApiError> {
    let mut headers = actix_web::http::header::HeaderMap::new();
    let value = actix_web::http::header::HeaderValue::from_str(content_type)
        .map_err(|_| ApiError::Malformed("bad content type".into()))?;
    headers.insert(actix_web::http::header::CONTENT_TYPE, value);
    let stream = futures_util::stream::once(async move {
        Ok::<_, actix_web::error::PayloadError>(web::Bytes::from(body))
    });
    parse_multipart(Multipart::new(&headers, stream), max_file, None).await
}

async fn read_body(payload: &mut Payload) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::Malformed(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(ApiError::TooLarge(MAX_JSON_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl From<MessageInput> for NewPost {
    /// What the service stores of a submitted message (the form's token
    /// and a new contact's details are the surface's business).
    fn from(m: MessageInput) -> Self {
        NewPost {
            body: m.body,
            private: m.private,
            files: m.files,
            via: m.via,
        }
    }
}
