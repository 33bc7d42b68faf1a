//! The body of "post a message" routes, in any of the three forms clients
//! send: JSON (`{"body","private"?}`), a URL-encoded form (pages without
//! files) or `multipart/form-data` with `body`, `private` and up to five
//! `file` parts (pages and apps with attachments).

use std::future::Future;
use std::pin::Pin;

use actix_multipart::Multipart;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::Deserialize;

use super::extract::{parse_json, MAX_JSON_BYTES};
use super::AppState;
use crate::domain::Invalid;
use crate::error::ApiError;
use crate::service::files::MAX_FILES;

/// A message as submitted, before validation.
#[derive(Debug, Default)]
pub struct MessageInput {
    /// The text (may be empty when files are attached).
    pub body: String,
    /// A team-only note (ignored for contacts).
    pub private: bool,
    /// (client's file name, bytes).
    pub files: Vec<(String, Vec<u8>)>,
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

impl FromRequest for MessageInput {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mime = req.mime_type().ok().flatten();
        let max_file = req
            .app_data::<web::Data<AppState>>()
            .map_or(10 << 20, |s| s.config.max_upload_bytes);
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let Some(mime) = mime else {
                return Err(ApiError::UnsupportedMediaType(
                    "send JSON, a form or multipart/form-data",
                ));
            };
            match (mime.type_().as_str(), mime.subtype().as_str()) {
                ("multipart", "form-data") => {
                    parse_multipart(Multipart::new(req.headers(), payload), max_file).await
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
                        files: Vec::new(),
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
        })
    }
}

/// Reads a `multipart/form-data` message: `body`, `private`, `name`,
/// `email`, `csrf` and up to five `file` parts of at most `max_file` bytes.
pub async fn parse_multipart(mut mp: Multipart, max_file: usize) -> Result<MessageInput, ApiError> {
    let mut input = MessageInput::default();
    while let Some(field) = mp.next().await {
        let field = field.map_err(|e| ApiError::Malformed(format!("bad multipart body: {e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" | "files" | "files[]" => {
                let file_name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .unwrap_or("file")
                    .to_owned();
                let bytes = read_limited(field, max_file).await?;
                if bytes.is_empty() {
                    continue; // an empty file input
                }
                if input.files.len() == MAX_FILES {
                    return Err(Invalid::new(
                        "files",
                        format!("at most {MAX_FILES} files per message"),
                    )
                    .into());
                }
                input.files.push((file_name, bytes));
            }
            "body" | "private" | "csrf" | "name" | "email" | "via" => {
                let bytes = read_limited(field, MAX_JSON_BYTES).await?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| ApiError::Malformed("fields must be UTF-8".into()))?;
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
    parse_multipart(Multipart::new(&headers, stream), max_file).await
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

/// Checks the text (which may be empty only when files come with it) and
/// saves the files, returning what the store needs.
pub async fn prepare(
    state: &AppState,
    body: String,
    files: Vec<(String, Vec<u8>)>,
) -> Result<(String, Vec<crate::store::AttachmentRecord>), ApiError> {
    let body = if files.is_empty() || !body.trim().is_empty() {
        crate::domain::MessageBody::parse(body)?.into_inner()
    } else {
        String::new()
    };
    if files.is_empty() {
        return Ok((body, Vec::new()));
    }
    let dir = state.store.files_dir();
    let saved = web::block(move || {
        files
            .iter()
            .map(|(name, bytes)| crate::service::files::save(&dir, name, bytes))
            .collect::<std::io::Result<Vec<_>>>()
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(|e| {
        tracing::error!(error = %e, "could not store an attachment");
        ApiError::Unavailable
    })?;
    Ok((body, saved))
}
