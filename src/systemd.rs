//! systemd's service protocol (sd_notify(3)), for `Type=notify` units:
//! `READY=1` once the listener is bound and the store open, `WATCHDOG=1`
//! at half the unit's `WatchdogSec` while the runtime runs, `STOPPING=1`
//! when a stop begins. Outside systemd (`NOTIFY_SOCKET` unset) each call
//! does nothing. Twenty lines of datagram socket instead of a crate: the
//! protocol is one message per state change.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (e.g. `READY=1`) to the service manager. Returns whether
/// a manager listens (the variable is set and the datagram went out);
/// failures are logged, never fatal: the server runs without systemd too.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let sent = UnixDatagram::unbound().and_then(|s| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // An abstract socket (Linux): '@' stands for the leading NUL.
            Some(name) => {
                #[cfg(target_os = "linux")]
                {
                    use std::os::linux::net::SocketAddrExt as _;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                    s.send_to_addr(state.as_bytes(), &addr)
                }
                #[cfg(not(target_os = "linux"))]
                {
                    let _ = name;
                    Err(std::io::Error::other("abstract sockets need Linux"))
                }
            }
            None => s.send_to(state.as_bytes(), &path),
        }
    });
    match sent {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not notify systemd");
            false
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC` (systemd's
/// advice), when the watchdog is on and meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    // At least a millisecond: a zero period would make no sense (and
    // tokio's interval refuses it).
    (usec > 0).then(|| Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}
