//! The HTTP server: accepts connections on a listener and serves the
//! routes on each, HTTP/1.1 and HTTP/2 (hyper-util's auto builder, as
//! `warp::serve` does), until told to shut down; then stops accepting and
//! lets the connections in flight finish.
//!
//! hlsd runs this loop itself instead of `warp::serve` for one reason:
//! warp logs every failed connection at ERROR, and a client that closes
//! its connection mid-response (a player seeking, a tab closed, a
//! direct-play range abandoned) is normal. Here a connection the client
//! closed or reset is a DEBUG line; any other connection error a WARN.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long accepting pauses after an error that is not a client's (most
/// often out of file descriptors), as hyper's server did.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `routes` on connections from `listener` until `shutdown`
/// resolves, then waits for the connections in flight (their requests
/// still get their answers; a long download is cut by the caller's own
/// deadline when it stops waiting).
pub async fn serve<F, R>(listener: TcpListener, routes: F, shutdown: impl Future<Output = ()>)
where
    F: warp::Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    F::Future: Send,
    R: warp::Reply,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(warp::service(routes.clone()));
        let builder =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        let io = hyper_util::rt::TokioIo::new(stream);
        let connection = graceful.watch(
            builder
                .serve_connection_with_upgrades(io, service)
                .into_owned(),
        );
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                connection_failed(&*e);
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Logs a connection that ended in error: DEBUG when the client closed or
/// reset it, else WARN.
fn connection_failed(e: &(dyn std::error::Error + 'static)) {
    if closed_by_client(e) {
        tracing::debug!(error = %e, "a client closed its connection mid-response");
    } else {
        tracing::warn!(error = %e, "an HTTP connection failed");
    }
}

/// Whether `e`, or an error under it, says the client went away: a reset,
/// a broken pipe, or a request cut short.
fn closed_by_client(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                ConnectionReset | BrokenPipe | ConnectionAborted | UnexpectedEof
            ) {
                return true;
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// A connection could not be accepted: one the client dropped at once is
/// skipped; anything else (out of file descriptors) is logged and
/// accepting pauses for [`ACCEPT_BACKOFF`].
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; pausing a second");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_under_another_error_is_the_client_s() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("writing the body")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let reset = Wrapper(std::io::ErrorKind::ConnectionReset.into());
        assert!(closed_by_client(&reset));
        let other = Wrapper(std::io::ErrorKind::PermissionDenied.into());
        assert!(!closed_by_client(&other));
    }
}
