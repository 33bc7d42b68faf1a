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

/// What `--acme-domain` runs: the TLS settings whose certificate comes
/// from ACME (answering TLS-ALPN-01 challenges on the HTTPS port itself,
/// so nothing else needs to listen), and the task that obtains the
/// certificate, keeps it in `<data>/acme` and renews it when a third of
/// its life is left (30 days of Let's Encrypt's 90), without a restart.
///
/// rustls-acme (Apache-2.0 OR MIT) rather than instant-acme: it is the
/// whole loop (account, order, challenge, cache, renewal) around a rustls
/// certificate resolver, which is what a server that terminates TLS
/// itself needs; instant-acme is the protocol client only.
pub fn acme(
    settings: &crate::config::AcmeSettings,
    data: &Path,
) -> Result<(rustls::ServerConfig, impl std::future::Future<Output = ()>), String> {
    use futures_util::StreamExt;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = &settings.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("cannot read --acme-ca-file {}: {e}", ca.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cannot read --acme-ca-file {}: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--acme-ca-file {} holds no PEM certificate",
                ca.display()
            ));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("--acme-ca-file {}: {e}", ca.display()))?;
        }
    }
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut config = rustls_acme::AcmeConfig::new_with_client_config(
        [settings.domain.as_str()],
        std::sync::Arc::new(client),
    )
    .directory(&settings.directory)
    .cache(rustls_acme::caches::DirCache::new(data.join("acme")));
    if let Some(e) = &settings.email {
        config = config.contact_push(format!("mailto:{e}"));
    }
    let mut state = config.state();
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(state.resolver());
    server
        .alpn_protocols
        .push(rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec());
    let domain = settings.domain.clone();
    let run = async move {
        while let Some(event) = state.next().await {
            match event {
                Ok(rustls_acme::EventOk::DeployedCachedCert) => {
                    tracing::info!(%domain, "certificate deployed from <data>/acme")
                }
                Ok(rustls_acme::EventOk::DeployedNewCert) => {
                    tracing::info!(%domain, "new certificate obtained and deployed")
                }
                Ok(rustls_acme::EventOk::CertCacheStore) => {
                    tracing::info!(%domain, "certificate stored in <data>/acme")
                }
                Ok(rustls_acme::EventOk::AccountCacheStore) => {}
                Err(e) => {
                    tracing::warn!(%domain, error = ?e, "ACME: could not obtain the certificate yet; retrying")
                }
            }
        }
    };
    Ok((server, run))
}
