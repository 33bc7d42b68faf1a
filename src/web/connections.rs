//! Open connections per client address: counted when a connection is
//! accepted and released when it closes, so one address cannot hold all of
//! the server's sockets. Requests on connections beyond the limit get 429
//! and the connection is closed. Connections from a trusted reverse proxy
//! are not counted (every visitor arrives from it).

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::Extensions;

/// The shared table of open connections per address.
#[derive(Default)]
pub struct ConnectionTable {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Lives in a connection's extensions; gives its slot back when dropped.
pub struct ConnectionSlot {
    table: Arc<ConnectionTable>,
    ip: IpAddr,
    /// Whether this connection is over the address's allowance.
    pub over_limit: bool,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock() {
            if let Some(n) = open.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.ip);
                }
            }
        }
    }
}

/// The `on_connect` hook: registers the connection's slot.
pub fn on_connect(
    table: Arc<ConnectionTable>,
    limit: usize,
    trusted: Vec<IpAddr>,
) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    move |conn, ext| {
        if limit == 0 {
            return;
        }
        // Plain or TLS (whose stream wraps the TCP one).
        let tcp = conn
            .downcast_ref::<actix_web::rt::net::TcpStream>()
            .or_else(|| {
                conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>>()
                    .map(|t| t.get_ref().0)
            });
        let Some(stream) = tcp else {
            return;
        };
        let Ok(peer) = stream.peer_addr() else { return };
        let ip = peer.ip();
        if trusted.contains(&ip) {
            return;
        }
        let count = match table.open.lock() {
            Ok(mut open) => {
                let n = open.entry(ip).or_default();
                *n += 1;
                *n
            }
            Err(_) => return,
        };
        ext.insert(ConnectionSlot {
            table: table.clone(),
            ip,
            over_limit: count > limit,
        });
    }
}
