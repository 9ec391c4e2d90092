//! `searchgate healthcheck`: one `GET /healthz` against a running server, for container health
//! checks where the image has no shell and no curl (the distroless image of the `Dockerfile`).
//! Exit 0 on a 2xx answer, 1 otherwise (Docker reads 1 as unhealthy and reserves 2), with one
//! line on stderr saying why.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use url::Url;

use crate::config::Settings;

/// Checks `url`, or the `/healthz` of the listener the settings describe (read as `serve`
/// reads them, from `config` and the environment), within `timeout`.
pub(super) async fn run(
    url: Option<String>,
    config: Option<PathBuf>,
    timeout: Duration,
) -> ExitCode {
    let url = match url {
        Some(url) => url,
        None => match Settings::load(config) {
            Ok(settings) => {
                default_url(settings.server.bind, settings.server.tls.files().is_some()).to_string()
            }
            Err(error) => return unhealthy(&format!("cannot read the settings: {error}")),
        },
    };
    match check(&url, timeout).await {
        Ok(status) => {
            println!("searchgate: {url} answered {status}");
            ExitCode::SUCCESS
        }
        Err(reason) => unhealthy(&reason),
    }
}

fn unhealthy(reason: &str) -> ExitCode {
    eprintln!("searchgate: unhealthy: {reason}");
    ExitCode::FAILURE
}

/// The status of a 2xx answer, or why there was none.
async fn check(url: &str, timeout: Duration) -> Result<reqwest::StatusCode, String> {
    let client = reqwest::Client::builder()
        .user_agent(concat!(
            "searchgate-healthcheck/",
            env!("CARGO_PKG_VERSION")
        ))
        .timeout(timeout)
        .connect_timeout(timeout)
        // /healthz never redirects; a redirect means the URL is not searchgate's probe.
        .redirect(reqwest::redirect::Policy::none())
        // The server is on this machine: an HTTP(S)_PROXY meant for the outbound search calls
        // must not carry the probe (it would mark a live server unhealthy).
        .no_proxy()
        // A liveness probe of the server on this machine, usually by an address its certificate
        // does not name: whether it answers is the question, not who it is. Nothing secret is
        // sent.
        .tls_danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("{url} did not answer within {timeout:?}")
        } else if e.is_builder() {
            format!("{url:?} is not an http(s) URL")
        } else {
            // reqwest's own message is "error sending request"; the cause says what happened.
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                reason = format!("{reason}: {cause}");
                source = cause.source();
            }
            reason
        }
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(status)
    } else {
        Err(format!("{url} answered {status}"))
    }
}

/// `http(s)://<bind>/healthz` (https when `tls`), asked on loopback when the server listens on
/// every interface.
fn default_url(bind: SocketAddr, tls: bool) -> Url {
    let ip = match bind.ip() {
        ip if ip == Ipv4Addr::UNSPECIFIED => Ipv4Addr::LOCALHOST.into(),
        ip if ip == Ipv6Addr::UNSPECIFIED => Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, bind.port());
    let scheme = if tls { "https" } else { "http" };
    Url::parse(&format!("{scheme}://{addr}/healthz")).expect("a socket address forms a valid URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_url_is_the_bound_address_with_wildcards_asked_on_loopback() {
        for (bind, url, why) in [
            (
                "127.0.0.1:10000",
                "http://127.0.0.1:10000/healthz",
                "the default bind as is",
            ),
            (
                "0.0.0.0:8080",
                "http://127.0.0.1:8080/healthz",
                "every IPv4 interface includes loopback",
            ),
            (
                "[::]:443",
                "http://[::1]:443/healthz",
                "every IPv6 interface includes ::1",
            ),
            (
                "192.0.2.5:10000",
                "http://192.0.2.5:10000/healthz",
                "a single interface is the only place it answers",
            ),
        ] {
            assert_eq!(
                default_url(bind.parse().unwrap(), false).as_str(),
                url,
                "{bind}: {why}"
            );
        }
        assert_eq!(
            default_url("0.0.0.0:443".parse().unwrap(), true).as_str(),
            "https://127.0.0.1/healthz",
            "with TLS in the binary"
        );
    }
}
