//! The limit of bench/ratio.sh: a bare hyper HTTP/1.1 server that drains each request's body and
//! answers a fixed body, read once from a file, with no parsing, no auth and no logging. It is
//! what the machine can do for a request of this size; searchgate is measured as a fraction of it.
//!
//! `limit ADDRESS RESPONSE_FILE` serves the bytes of RESPONSE_FILE (searchgate's own answer to
//! the workload, so both send the same number of bytes) as `application/json` on ADDRESS.

use std::{convert::Infallible, net::SocketAddr};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, header, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The response to every request: the body drained, then the fixed bytes.
async fn answer(
    request: Request<Incoming>,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // A body cut short by the client ends the connection anyway: there is nothing to answer.
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(file), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: limit ADDRESS RESPONSE_FILE".into());
    };
    let address: SocketAddr = address.parse()?;
    let body = Bytes::from(std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?);
    let listener = TcpListener::bind(address).await?;
    println!("limit listening on {}", listener.local_addr()?);
    loop {
        // Like a real server, a failed accept (say, too many open files) is not the end.
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, body.clone()));
            // A connection the client drops is over; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
