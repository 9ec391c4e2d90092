//! A connection as hyper reads and writes it: reads report to its [`Watch`], and once it
//! expired reads end and writes fail; dropping it closes gracefully.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
    sync::OwnedSemaphorePermit,
};

use super::{Connections, watch::Watch};

/// How long a closed connection is still read (and what arrives thrown away) so that the
/// client reads the answer: closing a socket with unread data resets it, and the client loses
/// an answer it has not read yet (a 413 sent while it still uploads).
const LINGER: Duration = Duration::from_secs(5);

/// At most this much is read and thrown away while lingering.
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// See the module documentation.
pub struct GuardedStream {
    inner: Option<TcpStream>,
    watch: Arc<Watch>,
    /// Whether the client closed its side.
    read_closed: bool,
    /// Whether the last write waited for room: the client is not reading what was sent.
    write_blocked: bool,
    /// This connection's place under `server.max_connections`, held until it is closed.
    slot: Option<OwnedSemaphorePermit>,
    connections: Arc<Connections>,
    client: SocketAddr,
}

impl GuardedStream {
    pub(super) fn new(
        inner: TcpStream,
        watch: Arc<Watch>,
        slot: OwnedSemaphorePermit,
        connections: Arc<Connections>,
        client: SocketAddr,
    ) -> Self {
        Self {
            inner: Some(inner),
            watch,
            read_closed: false,
            write_blocked: false,
            slot: Some(slot),
            connections,
            client,
        }
    }

    /// Notes a write's outcome: whether it waits for room, or went out after waiting.
    fn wrote(&mut self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        let waited = std::mem::replace(&mut self.write_blocked, polled.is_pending());
        if waited && matches!(polled, Poll::Ready(Ok(1..))) {
            self.watch.drained();
        }
        polled
    }

    fn inner(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(
            self.inner
                .as_mut()
                .expect("the stream is present until dropped"),
        )
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // An expired connection reads as closed by the client: hyper ends it.
        if this.watch.expired() {
            return Poll::Ready(Ok(()));
        }
        this.watch.register_reader(cx.waker());
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let polled = this.inner().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if buf.filled().len() > before {
                this.watch.bytes_read();
            } else if room {
                this.read_closed = true;
            }
        }
        polled
    }
}

/// Writes to an expired connection fail: a client that stopped reading is not waited for.
fn expired() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the connection timed out")
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.watch.expired() {
            return Poll::Ready(Err(expired()));
        }
        let polled = this.inner().poll_write(cx, buf);
        this.wrote(polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.watch.expired() {
            return Poll::Ready(Err(expired()));
        }
        let polled = this.inner().poll_write_vectored(cx, bufs);
        this.wrote(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.watch.expired() {
            return Poll::Ready(Err(expired()));
        }
        this.inner().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner().poll_shutdown(cx)
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        self.watch.close();
        self.connections.remove(self.client, &self.watch);
        let (Some(stream), Some(slot)) = (self.inner.take(), self.slot.take()) else {
            return;
        };
        // A timed-out client gets no more time; one that closed has nothing left to send.
        if self.watch.expired() || self.read_closed {
            // A client that did not take its answer (or what was written of it) will not take
            // the rest the kernel holds either: reset, so that those buffers are freed now
            // rather than after retries.
            if self.watch.expired() && (self.write_blocked || self.watch.expired_untaken()) {
                let _ = stream.set_zero_linger();
            }
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, slot));
        }
    }
}

/// Sends the end of the answer, then reads what the client still sends until it closes, for
/// at most [`LINGER`] and [`LINGER_BYTES`]; the connection keeps its slot meanwhile.
async fn linger(mut stream: TcpStream, _slot: OwnedSemaphorePermit) {
    let _ = stream.shutdown().await;
    let mut buf = vec![0; 16 * 1024];
    let drain = async {
        let mut total = 0;
        while total < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
