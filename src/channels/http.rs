//! The one HTTP client for calls out of natter (providers, callbacks,
//! outbound webhooks), with the SSRF guard: loopback, private, link-local
//! and other internal addresses are refused unless the admin allowed them
//! (`NATTER_WEBHOOKS_ALLOW_PRIVATE=1`). The guard sits in the DNS resolver,
//! so a name that resolves (or re-resolves) to an internal address is
//! refused at connection time too, not only when a URL is saved.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a URL may not be called.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute http(s) URL.
    #[error("{0}")]
    Malformed(String),
    /// It names or resolves to an internal address.
    #[error(
        "{0} is a loopback or private address; set NATTER_WEBHOOKS_ALLOW_PRIVATE=1 to allow it"
    )]
    Private(String),
}

/// Whether an address is internal (not reachable from the internet).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10, carrier NAT
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15, benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

/// Parses a URL someone gave us and checks what can be checked without
/// the network: scheme, host, and IP literals or `localhost`.
pub fn check_url(raw: &str, allow_private: bool) -> Result<reqwest::Url, UrlError> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| UrlError::Malformed(format!("not a URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(UrlError::Malformed(
            "the URL must start with http:// or https://".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Malformed(
            "the URL must not contain a user name or password".into(),
        ));
    }
    let host = match url.host() {
        Some(h) => h,
        None => return Err(UrlError::Malformed("the URL has no host".into())),
    };
    if !allow_private {
        let internal = match host {
            url::Host::Ipv4(ip) => is_private(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => is_private(IpAddr::V6(ip)),
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal")
            }
        };
        if internal {
            return Err(UrlError::Private(host.to_string()));
        }
    }
    Ok(url)
}

/// Checks a URL and also resolves its name now (for a clear 422 when it is
/// saved rather than a failure at the first delivery).
pub async fn check_url_resolving(raw: &str, allow_private: bool) -> Result<reqwest::Url, UrlError> {
    let url = check_url(raw, allow_private)?;
    if allow_private {
        return Ok(url);
    }
    if let Some(url::Host::Domain(d)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        // A name that does not resolve now may later: only internal
        // answers are refused here.
        if let Ok(addrs) = tokio::net::lookup_host((d, port)).await {
            for a in addrs {
                if is_private(a.ip()) {
                    return Err(UrlError::Private(format!("{d} ({})", a.ip())));
                }
            }
        }
    }
    Ok(url)
}

/// Resolves names with the system resolver and drops internal answers.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    Box::new(UrlError::Private(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The shared client and the rule it enforces.
#[derive(Clone)]
pub struct Http {
    /// No redirects: a redirect could lead anywhere (and providers don't
    /// redirect API calls).
    pub client: reqwest::Client,
    /// Follows a few redirects (provider media lives behind CDN redirects),
    /// each target checked like any URL.
    pub media_client: reqwest::Client,
    /// Internal addresses allowed (tests, private deployments).
    pub allow_private: bool,
}

/// Installs ring as the process's TLS crypto provider (once; later calls
/// do nothing). reqwest and every other TLS user in the tree share it.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl Http {
    /// Builds both clients (installing the crypto provider first).
    pub fn new(allow_private: bool) -> Result<Self, String> {
        install_crypto_provider();
        let base = || {
            let b = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(20))
                .user_agent(concat!("natter/", env!("CARGO_PKG_VERSION")));
            if allow_private {
                b
            } else {
                b.dns_resolver(Arc::new(GuardedResolver))
            }
        };
        let client = base()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let media_client = base()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if check_url(attempt.url().as_str(), allow_private).is_err() {
                    attempt.error("redirect to an internal address")
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            media_client,
            allow_private,
        })
    }

    /// `check_url` under this client's rule.
    pub fn check(&self, raw: &str) -> Result<reqwest::Url, UrlError> {
        check_url(raw, self.allow_private)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused() {
        for u in [
            "http://127.0.0.1/x",
            "http://localhost:8080/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.20.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.1.1/",
        ] {
            assert!(
                matches!(check_url(u, false), Err(UrlError::Private(_))),
                "{u}"
            );
            assert!(check_url(u, true).is_ok(), "{u}");
        }
        assert!(check_url("https://api.twilio.com/2010-04-01", false).is_ok());
        assert!(check_url("https://93.184.216.34/", false).is_ok());
        assert!(matches!(
            check_url("ftp://example.com/", false),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            check_url("https://u:p@example.com/", false),
            Err(UrlError::Malformed(_))
        ));
        assert!(matches!(
            check_url("not a url", false),
            Err(UrlError::Malformed(_))
        ));
    }
}
