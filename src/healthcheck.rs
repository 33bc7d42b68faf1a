//! `natter healthcheck`: one GET of `/healthz` for Docker's HEALTHCHECK and
//! monitoring scripts, over plain HTTP or, when the server serves HTTPS
//! (`--tls-cert` or `--acme-domain`), over TLS. Blocking and dependency-
//! light: it runs every few seconds in a container.
//!
//! Over TLS the certificate is not verified: the probe asks whether this
//! server answers, on an address it was given (usually loopback, where a
//! certificate for the public name never matches), not who it is.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

/// The outcome: `Ok` with the line to print, or an exit code and a line.
pub type Outcome = Result<String, (u8, String)>;

/// Asks `url` once; healthy when it answers 200 within `timeout`.
pub fn check(url: &str, timeout: Duration) -> Outcome {
    let parsed = url::Url::parse(url).map_err(|e| (2, format!("bad --url {url}: {e}")))?;
    let tls = match parsed.scheme() {
        "http" => false,
        "https" => true,
        s => {
            return Err((
                2,
                format!("{url}: healthcheck speaks http and https, not {s}"),
            ))
        }
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| (2, format!("{url} has no host")))?
        .to_owned();
    let default_port = if tls { 443 } else { 80 };
    let port = parsed.port_or_known_default().unwrap_or(default_port);
    // url resolves a bracketed IPv6 literal ("[::1]") as well.
    let addrs = parsed
        .socket_addrs(|| Some(default_port))
        .map_err(|e| (1, format!("{url}: {e}")))?;
    let mut last = format!("{url}: no address");
    for addr in addrs {
        match ask(&parsed, &host, port, addr, tls, timeout) {
            Ok(status_line) => {
                let status = status_line.split_whitespace().nth(1).unwrap_or("");
                return if status == "200" {
                    Ok(format!("healthy: {url} answered 200"))
                } else {
                    Err((
                        1,
                        format!(
                            "unhealthy: {url} answered {}",
                            status_line.lines().next().unwrap_or("nothing")
                        ),
                    ))
                };
            }
            Err(e) => last = format!("{url}: {e}"),
        }
    }
    Err((1, last))
}

/// One request to one address: the status line.
fn ask(
    url: &url::Url,
    host: &str,
    port: u16,
    addr: std::net::SocketAddr,
    tls: bool,
    timeout: Duration,
) -> std::io::Result<String> {
    let tcp = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nUser-Agent: natter-healthcheck\r\n\r\n"
    );
    let mut answer = Vec::new();
    if tls {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate::new()))
        .with_no_client_auth();
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        stream.write_all(request.as_bytes())?;
        read_status(&mut stream, &mut answer)?;
    } else {
        let mut tcp = tcp;
        tcp.write_all(request.as_bytes())?;
        read_status(&mut tcp, &mut answer)?;
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Reads until the end of the status line (or 256 bytes, or the end).
fn read_status(r: &mut impl Read, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 64];
    while out.len() < 256 && !out.contains(&b'\n') {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// Accepts any server certificate, but still checks the handshake's
/// signatures with the process's crypto provider (see the module docs for
/// why a liveness probe does not verify the name).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl AnyCertificate {
    fn new() -> Self {
        Self(Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
