//! Limits below the HTTP layer, per connection: how long a client may take to send a request's
//! headers, how long a keep-alive connection may wait for its next request, how many
//! connections are open at once, and a lingering close, so that a client still sending a body
//! that was refused reads the answer instead of a reset.
//!
//! hyper's own header timer also runs while a keep-alive connection waits, so one timer cannot
//! give both limits; each connection has a [`watch::Watch`] instead, which [`Tracker`] (around
//! every route) tells when a request is being served. A request being served is never cut,
//! however long its tool call takes; its body has its own limit (`http::body_guard`).

mod stream;
mod watch;

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::uri::Scheme,
    listener::{Acceptor, TcpAcceptor},
    web::{LocalAddr, RemoteAddr},
};
use tokio::sync::Semaphore;

pub use self::stream::GuardedStream;
use self::watch::Watch;
use super::Layered;
use crate::config::ServerSettings;

/// The connection limits in effect.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From a request's first byte (or from connecting) to the end of its headers.
    pub header_timeout: Duration,
    /// Between the end of one request's answer and the first byte of the next.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits `server` sets.
    pub fn new(server: &ServerSettings) -> Self {
        Self {
            header_timeout: Duration::from_secs(server.header_timeout_secs),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs),
            max_connections: server.max_connections,
        }
    }
}

/// The open connections, shared by the acceptor (which opens them) and [`Tracker`] (which
/// marks their requests).
#[derive(Debug)]
pub struct Connections {
    limits: ConnectionLimits,
    /// Each open connection's watch, by the client's address (unique per connection).
    open: Mutex<HashMap<SocketAddr, Arc<Watch>>>,
    slots: Arc<Semaphore>,
    waited: AtomicU64,
}

impl Connections {
    /// No connection open yet.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            waited: AtomicU64::new(0),
        })
    }

    /// Connections that had to wait for a free slot since start.
    pub fn waited(&self) -> u64 {
        self.waited.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn watch_of(&self, client: SocketAddr) -> Option<Arc<Watch>> {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&client)
            .cloned()
    }

    fn insert(&self, client: SocketAddr, watch: Arc<Watch>) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(client, watch);
    }

    fn remove(&self, client: SocketAddr, watch: &Arc<Watch>) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.get(&client).is_some_and(|w| Arc::ptr_eq(w, watch)) {
            open.remove(&client);
        }
    }
}

/// The TCP acceptor with the limits of [`Connections`] on every connection it hands out.
pub struct GuardedAcceptor {
    inner: TcpAcceptor,
    connections: Arc<Connections>,
}

impl GuardedAcceptor {
    /// Wraps `inner`.
    pub fn new(inner: TcpAcceptor, connections: Arc<Connections>) -> Self {
        Self { inner, connections }
    }
}

impl Acceptor for GuardedAcceptor {
    type Io = GuardedStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, local, remote, scheme) = self.inner.accept().await?;
        let connections = &self.connections;
        // At the limit, this one connection waits here and the next ones in the kernel's
        // backlog: no further file descriptor is taken until a connection closes.
        let slot = match connections.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Counted, not logged: a flood of connections must not flood the log too.
                connections.waited.fetch_add(1, Ordering::Relaxed);
                connections
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(io::Error::other)?
            }
        };
        let client = remote
            .as_socket_addr()
            .copied()
            .ok_or_else(|| io::Error::other("a TCP connection without a socket address"))?;
        let watch = Watch::start(connections.limits);
        connections.insert(client, watch.clone());
        let io = GuardedStream::new(stream, watch, slot, connections.clone(), client);
        Ok((io, local, remote, scheme))
    }
}

/// Tells each connection's watch while one of its requests is being served, from its headers
/// to the last byte of its answer. Outermost around every route.
#[derive(Clone)]
pub struct Tracker(pub Arc<Connections>);

impl<E: Endpoint> Middleware<E> for Tracker {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<Tracker, E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let busy = req
            .remote_addr()
            .as_socket_addr()
            .and_then(|client| self.layer.0.watch_of(*client))
            .map(|watch| watch.request_started(req.version() == poem::http::Version::HTTP_2));
        let response = match self.inner.call(req).await {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        };
        let Some(mut busy) = busy else {
            return Ok(response);
        };
        busy.answer_ready();
        // The request is over when its answer's body is: a streamed answer holds it open.
        let (parts, body) = response.into_parts();
        let body = HeldBody {
            inner: body.into(),
            busy,
        };
        Ok(Response::from_parts(
            parts,
            poem::Body::from(http_body_util::BodyExt::boxed(body)),
        ))
    }
}

/// An answer's body that keeps its connection marked busy until it is dropped. Unlike a
/// mapped body it passes on its size, so a complete answer keeps its `Content-Length`.
struct HeldBody {
    inner: http_body_util::combinators::BoxBody<bytes::Bytes, io::Error>,
    busy: watch::Busy,
}

impl http_body::Body for HeldBody {
    type Data = bytes::Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<Self::Data>, Self::Error>>>
    {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        // A frame handed over waits for the client until hyper asks for the next one.
        match &polled {
            std::task::Poll::Ready(Some(Ok(_))) => self.busy.answer_ready(),
            _ => self.busy.answer_pending(),
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
