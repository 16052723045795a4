//! The HTTP front: accepts connections (HTTP or HTTPS) and hands each request to the router. It
//! bounds what a client can hold before it has said who it is: a cap on open connections, a
//! TLS handshake timeout, a deadline for request headers (which also ends idle keep-alive
//! connections), and graceful drain on shutdown.

use axum::Router;
use std::sync::atomic::Ordering;

use crate::metrics::CONNECTIONS;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long requests in flight get to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the front allows each client.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once; beyond, new ones are closed at once (and counted).
    pub max_connections: usize,
    /// A request's headers must arrive within this, counted from the connection's start or the
    /// end of its previous response (so it is also the idle keep-alive timeout).
    pub header_timeout: Duration,
}

/// Counts a connection open while it lives; its slot comes back when it is dropped.
struct OpenGuard {
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl OpenGuard {
    fn new(slot: tokio::sync::OwnedSemaphorePermit) -> Self {
        CONNECTIONS.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard { _slot: slot }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        CONNECTIONS.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `router` on `listener` (over TLS with `certs`) until `shutdown`, then lets requests
/// in flight finish (up to [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    certs: Option<Arc<crate::http::tls::Certificates>>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut refusals_logged = false;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, typically: wait for some to close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            CONNECTIONS.refused.fetch_add(1, Ordering::Relaxed);
            if !std::mem::replace(&mut refusals_logged, true) {
                tracing::warn!(max_connections = limits.max_connections, "connection limit reached: closing new connections (logged once; see vakt_http_connections_refused_total)");
            }
            drop(tcp);
            continue;
        };
        let guard = OpenGuard::new(permit);
        let _ = tcp.set_nodelay(true);
        // Handlers that limit the public per address (subscribing) read it from here.
        let client = crate::http::status_public::ClientAddr(peer.ip());
        let service = hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(client);
                req
            },
        ));
        let watcher = graceful.watcher();
        let certs = certs.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let result = match certs {
                None => watcher.watch(http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service)).await,
                Some(certs) => {
                    // A client speaking plain HTTP to the HTTPS port is told so in plain HTTP,
                    // rather than left with a broken handshake.
                    let mut first = [0u8; 1];
                    if let Ok(Ok(1)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await {
                        if first[0].is_ascii_uppercase() {
                            let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, plain_http_refusal(tcp)).await;
                            return;
                        }
                    }
                    let acceptor = tokio_rustls::TlsAcceptor::from(certs.current());
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            // A client without an acceptable certificate, or not speaking TLS.
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    watcher.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after the drain period; closing them");
    }
}

/// Answers a plain-HTTP request on the HTTPS port with 426 and the reason, then closes.
async fn plain_http_refusal(mut tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Read what fits of the request, so that closing does not reset the answer away.
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), tcp.read(&mut buf)).await;
    let body = "{\"error\":\"this port speaks HTTPS, not plain HTTP: use an https:// URL\"}";
    let answer = format!(
        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: TLS/1.2, HTTP/1.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(answer.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// Raises this process's open-file limit to its hard limit, so that many connections do not
/// run it out of descriptors (systemd's `LimitNOFILE` sets the hard limit).
pub fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}
