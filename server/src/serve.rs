//! Serving connections: HTTP/1.1 with a deadline on every wait a client
//! controls, and a cap on how many connections are open.
//!
//! `axum::serve` waits for a client for as long as it likes: one that sends
//! its headers a line every few seconds, or opens connections and sends
//! nothing, holds a socket and a task each, forever. Here every connection
//! has one deadline at a time, which a watchdog enforces by closing it:
//!
//! - from its opening to the end of its first request's headers,
//!   `header_read` (`HEADER_READ_TIMEOUT_SECS`);
//! - from the end of a response to the first byte of the next request,
//!   `keep_alive` (`KEEP_ALIVE_TIMEOUT_SECS`); from that byte to the end of
//!   the headers, `header_read` again;
//! - none while a request is being answered: the router's own deadline (30 s
//!   for a handler) applies, and a live feed streams as long as it is read.
//!
//! Past `max_connections` (`MAX_CONNECTIONS`) open connections, a new one is
//! closed at once (counted in `stockflow_connections_refused_total`). On
//! shutdown the listener closes, idle connections close, and answers under
//! way finish.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::ConnectionLimits;

/// Serves `router` on `listener` until `shutdown`, then lets the answers
/// under way finish. Each request carries `ConnectInfo<SocketAddr>`.
pub async fn serve(listener: TcpListener, router: Router, limits: ConnectionLimits, shutdown: CancellationToken) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset before it was
                // accepted: wait a moment rather than spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics::counter!("stockflow_connections_refused_total").increment(1);
            tracing::debug!(%peer, "refused a connection: MAX_CONNECTIONS are open");
            drop(stream);
            continue;
        };
        // TCP_NODELAY: a small write that follows another (the next live-feed
        // event, a response after its headers) goes out at once instead of
        // waiting, under Nagle's algorithm, for the client's acknowledgement
        // of the first, which it may delay by up to 40 ms.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on a connection");
        }
        let (router, shutdown) = (router.clone(), shutdown.clone());
        connections.spawn(async move {
            serve_connection(stream, peer, router, limits, shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Serves one connection until it closes, its deadline passes, or shutdown.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let watch = Arc::new(Watch::new(limits));
    let io = TokioIo::new(Watched { inner: stream, watch: watch.clone() });
    let service = {
        let watch = watch.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let (router, watch) = (router.clone(), watch.clone());
            watch.request_started();
            request.extensions_mut().insert(ConnectInfo(peer));
            async move {
                let response =
                    router.oneshot(request.map(Body::new)).await.unwrap_or_else(|never: Infallible| match never {});
                let ended = Ended { watch };
                Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { body, _ended: ended })))
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut shutting_down = false;
    loop {
        let deadline = watch.deadline();
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if watch.expired() {
                    tracing::debug!(%peer, "closed a connection that kept the server waiting");
                    metrics::counter!("stockflow_connections_timed_out_total").increment(1);
                    return;
                }
            }
            () = watch.changed.notified() => {}
            () = shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What a connection is waiting for, and until when.
struct Watch {
    limits: ConnectionLimits,
    state: Mutex<WatchState>,
    /// Wakes the watchdog when the deadline moves earlier, or appears.
    changed: Notify,
}

struct WatchState {
    /// Requests being answered (HTTP/1.1 answers one at a time, but a
    /// response body may still be dropped after the next request began).
    answering: usize,
    /// Whether the connection sits between requests, before any byte of the next.
    idle: bool,
    deadline: Option<Instant>,
    /// The deadline the watchdog sleeps towards (it wakes then and looks again).
    armed: Option<Instant>,
}

impl Watch {
    fn new(limits: ConnectionLimits) -> Watch {
        let deadline = Some(Instant::now() + limits.header_read);
        Watch {
            limits,
            state: Mutex::new(WatchState { answering: 0, idle: false, deadline, armed: None }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The deadline to sleep towards now.
    fn deadline(&self) -> Option<Instant> {
        let mut state = self.lock();
        state.armed = state.deadline;
        state.deadline
    }

    /// Whether the deadline has passed (it may have moved since the watchdog slept).
    fn expired(&self) -> bool {
        self.lock().deadline.is_some_and(|deadline| deadline <= Instant::now())
    }

    /// Sets the deadline, waking the watchdog when it sleeps towards a later one, or none.
    fn set(&self, state: &mut WatchState, deadline: Option<Instant>) {
        state.deadline = deadline;
        if let Some(deadline) = deadline {
            if state.armed.is_none_or(|armed| deadline < armed) {
                self.changed.notify_one();
            }
        }
    }

    fn request_started(&self) {
        let mut state = self.lock();
        state.answering += 1;
        state.idle = false;
        state.deadline = None;
    }

    fn response_ended(&self) {
        let mut state = self.lock();
        state.answering = state.answering.saturating_sub(1);
        if state.answering == 0 {
            state.idle = true;
            let deadline = Instant::now() + self.limits.keep_alive;
            self.set(&mut state, Some(deadline));
        }
    }

    /// Bytes arrived: the first of a request starts its header deadline.
    fn bytes_read(&self) {
        let mut state = self.lock();
        if state.idle {
            state.idle = false;
            let deadline = Instant::now() + self.limits.header_read;
            self.set(&mut state, Some(deadline));
        }
    }
}

/// The connection's socket, telling its [`Watch`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Tells the [`Watch`] that a response is done when its body is dropped
/// (sent whole, or abandoned).
struct Ended {
    watch: Arc<Watch>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.watch.response_ended();
    }
}

/// A response body that ends its request's wait when it is dropped.
struct Tracked {
    body: Body,
    _ended: Ended,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
