//! Static files embedded in the binary, served with explicit cache headers.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

/// The bytes of an embedded static file.
pub fn get(name: &str) -> Option<Vec<u8>> {
    Static::get(name).map(|f| f.data.into_owned())
}

/// `GET /static/{file}`.
pub async fn serve(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let file = Static::get(&path).ok_or(ApiError::NotFound)?;
    let mime = mime_guess::from_path(path.as_str()).first_or_octet_stream();
    Ok(HttpResponse::Ok()
        .content_type(mime.as_ref())
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((
            header::ETAG,
            format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..8])),
        ))
        .body(file.data.into_owned()))
}
