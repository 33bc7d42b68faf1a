//! Backups (`/api/v1/admin/backups`): admins list, create, download and
//! delete them. The rules are in [`crate::service::backups`], the archive
//! in [`crate::store::backup`].

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::contract;
use crate::error::{ApiError, ApiResult};
use crate::web::extract::AgentAuth;
use crate::web::AppState;

/// Every backup in the backup folder, newest first.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn list(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let backups: Vec<_> = state
        .svc
        .backups(&auth.agent)?
        .iter()
        .map(contract::Backup::of)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "backups": backups })))
}

/// Writes a backup now: 201 when it is complete; 409 while another runs.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id))]
pub async fn create(state: web::Data<AppState>, auth: AgentAuth) -> ApiResult<HttpResponse> {
    let b = state.svc.create_backup(&auth.agent).await?;
    Ok(HttpResponse::Created().json(contract::Backup::of(&b)))
}

/// Downloads one backup.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, backup = %path))]
pub async fn download(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (b, file) = state.svc.backup_file(&auth.agent, &path)?;
    download_response(&b, &file).await
}

/// A backup file as a download (also the settings page's link).
pub async fn download_response(
    b: &crate::store::backup::BackupInfo,
    file: &std::path::Path,
) -> ApiResult<HttpResponse> {
    let f = chunks(file).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/gzip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", b.name),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(SizedStream::new(b.bytes, f)))
}

/// The file in 64 KiB chunks: a backup is never held in memory whole.
async fn chunks(
    path: &std::path::Path,
) -> ApiResult<impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>>> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|_| ApiError::NotFound)?;
    Ok(futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(web::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    }))
}

/// Deletes one backup: 204.
#[tracing::instrument(skip_all, fields(agent = %auth.agent.id, backup = %path))]
pub async fn delete(
    state: web::Data<AppState>,
    auth: AgentAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state.svc.delete_backup(&auth.agent, &path)?;
    Ok(HttpResponse::NoContent().finish())
}
