//! HTTPS in the binary (`server.tls`): rustls with its safe defaults (TLS 1.2 and 1.3), ALPN
//! `h2` and `http/1.1`, and a certificate that can be replaced while serving. The files are
//! read again when they change and on SIGHUP ([`reload`]); a new pair that does not load
//! leaves the current one in place. Each handshake reads the current certificate, so a renewal
//! reaches new connections at once and open ones keep theirs.
//!
//! The handshake runs in the connection's own task, never in the accept loop: a client that
//! stalls it holds only its own connection, under the header timeout of
//! [`super::connections`] (whose stream sits below TLS and sees the handshake's bytes).

mod certificate;
mod reload;

use std::{
    io,
    pin::Pin,
    sync::{Arc, PoisonError, RwLock},
    task::{Context, Poll},
};

use poem::{
    http::uri::Scheme,
    listener::Acceptor,
    web::{LocalAddr, RemoteAddr},
};
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use self::certificate::{Certificate, CertificateFiles, CertificateInfo, rfc3339};
pub use self::reload::{Reloads, hangups, spawn_reloader};

/// The crypto provider of every TLS config searchgate makes (the tree's, aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificate being served, replaceable while serving.
#[derive(Debug)]
pub struct CurrentCertificate {
    served: RwLock<Certificate>,
}

impl CurrentCertificate {
    /// Serves `first`.
    pub fn new(first: Certificate) -> Arc<Self> {
        Arc::new(Self {
            served: RwLock::new(first),
        })
    }

    /// New handshakes get `next`.
    pub fn replace(&self, next: Certificate) {
        *self.served.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// What the certificate being served says.
    pub fn info(&self) -> CertificateInfo {
        self.served
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .info
            .clone()
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.served
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .key
                .clone(),
        )
    }
}

/// The server's TLS configuration: the library's safe protocol versions and cipher suites, no
/// client certificates, the current certificate, HTTP/2 preferred over HTTP/1.1.
///
/// # Errors
/// When the provider offers none of the safe protocol versions (not with aws-lc-rs).
pub fn server_config(current: Arc<CurrentCertificate>) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(current);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// An acceptor that serves TLS over the connections `inner` accepts.
pub struct TlsAcceptor<A> {
    inner: A,
    tls: tokio_rustls::TlsAcceptor,
}

impl<A> TlsAcceptor<A> {
    /// Wraps `inner` with `config`.
    pub fn new(inner: A, config: ServerConfig) -> Self {
        Self {
            inner,
            tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }
    }
}

impl<A: Acceptor> Acceptor for TlsAcceptor<A>
where
    A::Io: Unpin,
{
    type Io = TlsStream<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, local, remote, _) = self.inner.accept().await?;
        let io = TlsStream::Handshaking(Box::new(self.tls.accept(stream)));
        Ok((io, local, remote, Scheme::HTTPS))
    }
}

/// A TLS connection whose handshake completes on its first read or write.
pub enum TlsStream<S> {
    /// Before the handshake completed.
    Handshaking(Box<tokio_rustls::Accept<S>>),
    /// After it.
    Ready(Box<tokio_rustls::server::TlsStream<S>>),
    /// The handshake failed; every further use fails too.
    Failed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// Drives the handshake; `Ready(Ok(stream))` once it is done.
    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&mut tokio_rustls::server::TlsStream<S>>> {
        if let Self::Handshaking(accept) = self {
            match std::future::Future::poll(Pin::new(accept.as_mut()), cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => *self = Self::Ready(Box::new(stream)),
                Poll::Ready(Err(error)) => {
                    *self = Self::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        match self {
            Self::Ready(stream) => Poll::Ready(Ok(stream)),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the TLS handshake failed",
            ))),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().poll_ready(cx) {
            Poll::Ready(Ok(stream)) => Pin::new(stream).poll_read(cx, buf),
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().poll_ready(cx) {
            Poll::Ready(Ok(stream)) => Pin::new(stream).poll_write(cx, buf),
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Ready(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Ready(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().poll_ready(cx) {
            Poll::Ready(Ok(stream)) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }
}
