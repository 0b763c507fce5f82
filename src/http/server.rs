//! The HTTP server: accepts connections on a listener and serves the
//! routes on each, HTTP/1.1 and HTTP/2 (hyper-util's auto builder, as
//! `warp::serve` does), until told to shut down; then stops accepting and
//! lets the connections in flight finish, for at most [`DRAIN_WAIT`].
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

/// How long shutdown waits for the connections in flight before it closes
/// them: a request still being answered (a segment download, a playlist
/// waiting for its segment) gets this long to finish. Without a bound, one
/// connection that never goes idle (a slow client, or hyper's auto
/// connection told to shut down while it waits for its first bytes) holds
/// up the whole shutdown.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// Serves `routes` on connections from `listener` until `shutdown`
/// resolves, then waits for the connections in flight (their requests
/// still get their answers) for at most [`DRAIN_WAIT`], and closes those
/// still open.
pub async fn serve<F, R>(listener: TcpListener, routes: F, shutdown: impl Future<Output = ()>)
where
    F: warp::Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    F::Future: Send,
    R: warp::Reply,
{
    serve_draining(listener, routes, shutdown, DRAIN_WAIT).await;
}

/// [`serve`], waiting at most `drain` for the connections in flight.
async fn serve_draining<F, R>(
    listener: TcpListener,
    routes: F,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    F: warp::Filter<Extract = (R,), Error = Infallible> + Clone + Send + Sync + 'static,
    F::Future: Send,
    R: warp::Reply,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
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
        connections.spawn(async move {
            if let Err(e) = connection.await {
                connection_failed(&*e);
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        while connections.try_join_next().is_some() {}
        tracing::warn!(
            open = connections.len(),
            "connections still busy after {drain:?}; closing them"
        );
    }
    connections.shutdown().await;
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

    /// Shutdown ends although one client sent half a request and another
    /// connected and sent nothing, while a third's finished request gets
    /// its answer; the open connections are closed.
    #[tokio::test]
    async fn shutdown_closes_connections_that_never_finish_a_request() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use warp::Filter;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_draining(
            listener,
            warp::any().map(|| "hello"),
            async move {
                let _ = stopped.await;
            },
            Duration::from_millis(500),
        ));
        let mut answered = tokio::net::TcpStream::connect(addr).await.unwrap();
        answered
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        answered.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .expect("shutdown ends")
            .unwrap();
        for stream in [&mut half, &mut silent] {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
                .await
                .expect("the server closed the connection");
            assert!(read.is_err() || rest.is_empty() || rest.starts_with(b"HTTP/1.1"));
        }
    }
}
