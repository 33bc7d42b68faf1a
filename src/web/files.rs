//! `GET /files/{id}/{name}`: attachment bytes. Images are shown inline;
//! everything else (PDFs, SVG, HTML, unknown) only ever downloads, always
//! with `nosniff`, so an uploaded file can never run as a page of ours.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::AppState;
use crate::error::ApiError;
use crate::service::files::is_inline_image;

/// Serves one attachment by its capability URL.
#[tracing::instrument(skip_all)]
pub async fn serve(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, _) = path.into_inner();
    let (att, bytes) = state.svc.attachment(&id).await?;
    let inline = is_inline_image(&att.content_type);
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        att.name.replace(|c: char| !c.is_ascii() || c == '\\', "_"),
        super::session::url_escape(&att.name)
    );
    Ok(HttpResponse::Ok()
        .content_type(if inline {
            att.content_type.as_str()
        } else {
            "application/octet-stream"
        })
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header((
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        ))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ))
        .body(bytes))
}
