//! A loopback HTTP/1.1 server that answers every connection with the same bytes, with pauses
//! where asked, and counts how many connections it serves at once: for what wiremock cannot do
//! (bodies without a length, bodies that stall).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

/// One step of an answer.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Wait this long.
    Pause(Duration),
}

/// Counts kept by the server.
#[derive(Debug, Default)]
pub(super) struct Counts {
    in_flight: AtomicUsize,
    /// Most connections served at once.
    pub most_at_once: AtomicUsize,
    /// Connections served in all.
    pub served: AtomicUsize,
}

/// A running server; stops when dropped.
pub(super) struct RawServer {
    /// Where it listens.
    pub address: SocketAddr,
    /// What it has seen.
    pub counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl RawServer {
    /// Serves `steps` to every connection on a fresh loopback port.
    pub(super) async fn start(steps: Vec<Step>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let seen = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let steps = steps.clone();
                let counts = seen.clone();
                tokio::spawn(async move {
                    // Read the request head before answering, so the client is not reset.
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let now = counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    counts.most_at_once.fetch_max(now, Ordering::SeqCst);
                    counts.served.fetch_add(1, Ordering::SeqCst);
                    for step in steps {
                        match step {
                            Step::Send(bytes) => {
                                if socket.write_all(&bytes).await.is_err() {
                                    break;
                                }
                            }
                            Step::Pause(time) => tokio::time::sleep(time).await,
                        }
                    }
                    counts.in_flight.fetch_sub(1, Ordering::SeqCst);
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            address,
            counts,
            task,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response head with `Connection: close` and the given extra header lines.
pub(super) fn head(status: &str, headers: &[&str]) -> Step {
    let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    Step::Send(text.into_bytes())
}

/// One chunk of a chunked body.
pub(super) fn chunk(bytes: &[u8]) -> Step {
    let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
    framed.extend_from_slice(bytes);
    framed.extend_from_slice(b"\r\n");
    Step::Send(framed)
}
