//! The RPC port's accept loop: caps TCP connections in total and per client IP address before
//! jsonrpsee sees them, and tells every request which address it came from ([`ClientIp`]).
//!
//! jsonrpsee's own server counts connections only while a request runs (an idle HTTP
//! keep-alive connection holds no permit), and has no per-address cap; this loop counts every
//! open TCP connection from accept to close. A connection over a cap gets a one-line HTTP
//! answer (`429 Too Many Requests` per address, `503 Service Unavailable` in total) and is
//! closed. Everything after the accept is jsonrpsee's (`serve_with_graceful_shutdown`).

use jsonrpsee::server::{serve_with_graceful_shutdown, stop_channel, HttpResponse, ServerHandle, StopHandle};
use parking_lot::Mutex;
use std::{collections::HashMap, net::IpAddr, sync::Arc};
use tokio::net::{TcpListener, TcpStream};

/// The address a request came from, in the request's extensions (a method declared
/// `with_extensions` reads it to keep per-client quotas such as filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// Connection caps of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open TCP connections (HTTP and WebSocket) in total.
    pub total: usize,
    /// Open TCP connections from one IP address.
    pub per_ip: usize,
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The listener holds `ConnectionLimits::total` connections.
    Total,
    /// The address holds `ConnectionLimits::per_ip` connections.
    PerIp,
}

/// Open connections, in total and per address; a [`Slot`] is one of them.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections against [`ConnectionLimits`].
#[derive(Debug, Clone)]
pub(crate) struct ConnectionCounter {
    limits: ConnectionLimits,
    counts: Arc<Mutex<Counts>>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct Slot {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
    /// `fogchain_rpc_connections`.
    _open: fogchain_metrics::Open,
}

impl ConnectionCounter {
    /// A counter with no open connection.
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Self { limits, counts: Arc::default() }
    }

    /// Admits a connection from `ip`, or says which cap it is over.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let mut counts = self.counts.lock();
        if counts.total >= self.limits.total {
            return Err(Refused::Total);
        }
        let from_ip = counts.per_ip.entry(ip).or_default();
        if *from_ip >= self.limits.per_ip {
            if *from_ip == 0 {
                counts.per_ip.remove(&ip);
            }
            return Err(Refused::PerIp);
        }
        *from_ip += 1;
        counts.total += 1;
        let open = fogchain_metrics::Open::new(metrics::gauge!("fogchain_rpc_connections"));
        Ok(Slot { ip, counts: self.counts.clone(), _open: open })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Answers a refused connection with a short HTTP response and closes it. The socket is new, so
/// its send buffer is empty and a non-blocking write never waits on the client.
fn refuse(socket: TcpStream, why: Refused) {
    let (status, text, reason) = match why {
        Refused::PerIp => ("429 Too Many Requests", "too many connections from this address", "per_ip"),
        Refused::Total => ("503 Service Unavailable", "too many connections", "total"),
    };
    metrics::counter!("fogchain_rpc_connections_refused_total", "reason" => reason).increment(1);
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}\n",
        text.len() + 1
    );
    let _ = socket.try_write(response.as_bytes());
    tracing::debug!(?why, "rpc connection refused");
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the accept loop on `listener` until the returned handle is stopped. `make` builds the
/// service of one admitted connection from the client's address.
pub(crate) fn serve<F, S>(listener: TcpListener, limits: ConnectionLimits, make: F) -> ServerHandle
where
    F: Fn(ClientIp, StopHandle) -> S + Send + 'static,
    S: tower::Service<hyper::Request<hyper::body::Incoming>, Response = HttpResponse, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let (stop, handle) = stop_channel();
    let counter = ConnectionCounter::new(limits);
    tokio::spawn(async move {
        let stopped = stop.clone().shutdown();
        tokio::pin!(stopped);
        loop {
            let (socket, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning on the error.
                        tracing::warn!(%error, "rpc accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut stopped => break,
            };
            let slot = match counter.admit(remote.ip()) {
                Ok(slot) => slot,
                Err(why) => {
                    refuse(socket, why);
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let service = make(ClientIp(remote.ip()), stop.clone());
            let shutdown = stop.clone().shutdown();
            tokio::spawn(async move {
                if let Err(error) = serve_with_graceful_shutdown(socket, service, shutdown).await {
                    tracing::trace!(%error, "rpc connection ended");
                }
                drop(slot);
            });
        }
    });
    handle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_address_and_in_total_and_freed_on_close() {
        let counter = ConnectionCounter::new(ConnectionLimits { total: 3, per_ip: 2 });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let c: IpAddr = [10, 0, 0, 3].into();
        let a1 = counter.admit(a).unwrap();
        let _a2 = counter.admit(a).unwrap();
        assert_eq!(counter.admit(a).unwrap_err(), Refused::PerIp);
        let _b1 = counter.admit(b).unwrap();
        assert_eq!(counter.admit(c).unwrap_err(), Refused::Total);
        drop(a1);
        assert_eq!(counter.counts.lock().per_ip[&a], 1);
        let _c1 = counter.admit(c).unwrap();
        assert_eq!(counter.counts.lock().total, 3);
    }

    #[test]
    fn a_refused_address_leaves_no_entry_behind() {
        let counter = ConnectionCounter::new(ConnectionLimits { total: 10, per_ip: 0 });
        let a: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(counter.admit(a).unwrap_err(), Refused::PerIp);
        assert!(counter.counts.lock().per_ip.is_empty());
    }
}
