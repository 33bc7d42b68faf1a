//! HTTPS without a reverse proxy: the rustls configuration from a PEM
//! certificate and key (`--tls-cert`, `--tls-key`), served by actix over
//! HTTP/1.1 and HTTP/2 (ALPN, so a browser's event streams share one
//! connection instead of using up its six per host), and the plain-HTTP
//! listener of `--redirect-bind` that sends every request to the HTTPS
//! address.

use std::path::Path;

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The server's TLS settings from a PEM certificate chain and its key.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read --tls-cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read --tls-cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {} holds no PEM certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read --tls-key {}: {e}", key.display()))?;
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert and --tls-key do not make a certificate: {e}"))
}

/// Where a plain-HTTP request is sent: the same path and query under the
/// HTTPS base URL.
fn redirect_target(base_url: &str, req: &HttpRequest) -> String {
    let rest = req.uri().path_and_query().map_or("/", |p| p.as_str());
    format!("{}{rest}", base_url.trim_end_matches('/'))
}

/// The `--redirect-bind` server: 308 to HTTPS for everything (308 keeps
/// the method and body of a POST).
pub fn redirect_server(
    listener: std::net::TcpListener,
    base_url: String,
) -> std::io::Result<actix_web::dev::Server> {
    let base = web::Data::new(base_url);
    Ok(HttpServer::new(move || {
        App::new().app_data(base.clone()).default_service(web::to(
            |req: HttpRequest, base: web::Data<String>| async move {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, redirect_target(&base, &req)))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish()
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}
