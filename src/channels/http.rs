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

/// Whether an address is internal or otherwise not a public unicast host:
/// every range of the IANA special-purpose registries that is not globally
/// reachable, and every IPv6 form that embeds an IPv4 address (mapped,
/// compatible, translated, NAT64, 6to4, Teredo) judged by the IPv4 address
/// inside it, since a gateway would deliver it there.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(v4: std::net::Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || o[0] == 0 // 0/8, "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10, carrier NAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24, IETF protocol assignments
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 192.88.99/24, 6to4 relay anycast
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15, benchmarking
        || o[0] >= 240 // 240/4, reserved
}

fn is_private_v6(v6: std::net::Ipv6Addr) -> bool {
    let s = v6.segments();
    let v4_at = |hi: u16, lo: u16| std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // The IPv4-embedding forms, judged by what they embed.
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0 || s[5] == 0xffff) {
        // ::a.b.c.d (compatible; :: and ::1 land in 0/8) and ::ffff:a.b.c.d (mapped).
        return is_private_v4(v4_at(s[6], s[7]));
    }
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        // ::ffff:0:a.b.c.d (SIIT translated).
        return is_private_v4(v4_at(s[6], s[7]));
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // 64:ff9b::/96, the NAT64 well-known prefix.
        return is_private_v4(v4_at(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 2002::/16, 6to4: the relay's IPv4 address follows the prefix.
        return is_private_v4(v4_at(s[1], s[2]));
    }
    v6.is_multicast()
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // 64:ff9b:1::/48, local NAT64
        || (s[0] == 0x0100 && s[1..3] == [0, 0] && (s[3] == 0 || s[3] == 1)) // 100::/64 discard, 100:0:0:1::/64 dummy
        || (s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23, IETF protocol assignments (Teredo, ORCHID, benchmarking)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32, documentation
        || (s[0] & 0xfff0) == 0x3ff0 // 3fff::/20, documentation
        || s[0] == 0x5f00 // 5f00::/16, segment routing SIDs
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10, link local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10, site local (deprecated, still routed inside sites)
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
            url::Host::Domain(d) => is_internal_name(d),
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

/// Checks a bare host name or IP literal that natter will dial over raw
/// TCP (the IMAP and SMTP servers of an email inbox), under the same rule
/// as URLs: IP literals and `localhost` names are judged here, other names
/// again by [`resolve_guarded`] when they are dialled.
pub fn check_host(raw: &str, allow_private: bool) -> Result<(), UrlError> {
    let host = raw.trim();
    if host.is_empty()
        || host.len() > 253
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/@?#".contains(c))
    {
        return Err(UrlError::Malformed(format!("{host:?} is not a host name")));
    }
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let parsed: url::Host<String> = match literal.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => url::Host::Ipv4(v4),
        Ok(IpAddr::V6(v6)) => url::Host::Ipv6(v6),
        Err(_) => url::Host::parse(host)
            .map_err(|e| UrlError::Malformed(format!("{host:?} is not a host name: {e}")))?,
    };
    if allow_private {
        return Ok(());
    }
    let internal = match &parsed {
        url::Host::Ipv4(ip) => is_private(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => is_private(IpAddr::V6(*ip)),
        url::Host::Domain(d) => is_internal_name(d),
    };
    if internal {
        return Err(UrlError::Private(host.to_owned()));
    }
    Ok(())
}

/// Names that always mean this machine or its private network.
fn is_internal_name(d: &str) -> bool {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal")
}

/// Resolves `host:port` for a raw TCP connection and keeps only the
/// addresses the rule allows, so a name that resolves (or re-resolves) to
/// an internal address is refused when it is dialled, not only when it is
/// saved. The caller connects to exactly these addresses.
pub async fn resolve_guarded(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, std::io::Error> {
    let host = host.trim();
    check_host(host, allow_private)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()))?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let found: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port)).await?.collect(),
    };
    let allowed: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| allow_private || !is_private(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            UrlError::Private(host.to_owned()).to_string(),
        ));
    }
    Ok(allowed)
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
        assert!(check_url("https://[2606:4700::1111]/", false).is_ok());
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

    /// Every IPv4-embedding IPv6 form is judged by the IPv4 address inside
    /// it, and the special-purpose ranges are refused (the forms an
    /// attacker used to reach 127.0.0.1 past the first guard).
    #[test]
    fn embedded_and_special_purpose_addresses_are_refused() {
        for ip in [
            "::7f00:1",         // IPv4-compatible 127.0.0.1
            "::a9fe:a9fe",      // IPv4-compatible 169.254.169.254
            "64:ff9b::7f00:1",  // NAT64 of 127.0.0.1
            "64:ff9b::a00:1",   // NAT64 of 10.0.0.1
            "64:ff9b:1::1",     // local-use NAT64
            "2002:7f00:1::",    // 6to4 of 127.0.0.1
            "2002:c0a8:101::1", // 6to4 of 192.168.1.1
            "::ffff:0:7f00:1",  // SIIT translated 127.0.0.1
            "::ffff:7f00:1",    // mapped 127.0.0.1
            "fec0::1",          // site local
            "feff::1",          // site local, top of the range
            "2001::1",          // Teredo
            "2001:2::1",        // benchmarking
            "3fff::1",          // documentation
            "100::1",           // discard only
            "5f00::1",          // SRv6 SIDs
            "ff02::1",          // multicast
            "192.0.0.8",        // IETF protocol assignments
            "192.0.0.170",
            "192.88.99.1",  // 6to4 relay anycast
            "198.51.100.7", // documentation
            "203.0.113.9",
            "255.255.255.255",
        ] {
            let addr: IpAddr = ip.parse().expect("test vector");
            assert!(is_private(addr), "{ip} must be refused");
            let url = match addr {
                IpAddr::V4(_) => format!("http://{ip}/"),
                IpAddr::V6(_) => format!("http://[{ip}]/"),
            };
            assert!(
                matches!(check_url(&url, false), Err(UrlError::Private(_))),
                "{url}"
            );
        }
        for ip in [
            "8.8.8.8",
            "192.0.1.1",
            "::808:808",         // IPv4-compatible 8.8.8.8
            "64:ff9b::808:808",  // NAT64 of a public address
            "2002:808:808::1",   // 6to4 of a public address
            "2a00:1450:4001::1", // ordinary global unicast
            "2001:4860::8888",   // outside 2001::/23
        ] {
            let addr: IpAddr = ip.parse().expect("test vector");
            assert!(!is_private(addr), "{ip} is public");
        }
    }
}
