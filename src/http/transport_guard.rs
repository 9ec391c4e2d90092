//! DNS-rebinding protection for the MCP endpoint: the `Host` must be one searchgate serves and a
//! browser `Origin`, when present, must be allowed (403 otherwise). These run before
//! authentication, as the MCP spec orders them (checklist §2.9). [`SingleHost`] refuses, on every
//! route, a request that names its host twice.

use std::sync::Arc;

use poem::{Endpoint, Middleware, Request, Response, Result, http::StatusCode};

use super::{Layered, error::ErrorBody, mcp_endpoint::jsonrpc_error};

/// The allow-lists for `Host` and `Origin`.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    hosts: Vec<(String, Option<u16>)>,
    origins: Vec<OriginPattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum OriginPattern {
    Null,
    Tuple {
        scheme: String,
        host: String,
        port: PortPattern,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exact(u16),
}

impl HostPolicy {
    /// Builds the policy from `server.allowed_hosts` (`host` for any port, `host:port` for one)
    /// and `server.allowed_origins` (`scheme://host[:port|:*]` or `null`). Entries that do not
    /// parse are skipped; configuration validation reports them first.
    pub fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let hosts = allowed_hosts
            .iter()
            .filter_map(|h| parse_authority(h))
            .collect();
        let origins = allowed_origins
            .iter()
            .filter_map(|o| parse_origin_pattern(o))
            .collect();
        Self { hosts, origins }
    }

    /// Whether a `Host` header value names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = parse_authority(host) else {
            return false;
        };
        self.hosts.iter().any(|(allowed, allowed_port)| {
            *allowed == name && allowed_port.is_none_or(|p| Some(p) == port)
        })
    }

    /// Whether an `Origin` header value is allowed (RFC 6454 scheme, host and port).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if origin == "null" {
            return self.origins.contains(&OriginPattern::Null);
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            return false;
        };
        let Some((host, port)) = parse_authority(rest) else {
            return false;
        };
        let scheme = scheme.to_ascii_lowercase();
        let Some(port) = port.or_else(|| default_port(&scheme)) else {
            return false;
        };
        self.origins.iter().any(|pattern| match pattern {
            OriginPattern::Null => false,
            OriginPattern::Tuple {
                scheme: s,
                host: h,
                port: p,
            } => {
                *s == scheme
                    && *h == host
                    && (*p == PortPattern::Any || *p == PortPattern::Exact(port))
            }
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `host[:port]` → lowercase host without IPv6 brackets, and the port.
fn parse_authority(value: &str) -> Option<(String, Option<u16>)> {
    if value.contains(['/', '?', '#', '@']) {
        return None;
    }
    // A bare IPv6 literal such as `::1` is a host without a port.
    if let Ok(ip) = value.trim().parse::<std::net::Ipv6Addr>() {
        return Some((ip.to_string(), None));
    }
    let authority = http::uri::Authority::try_from(value.trim()).ok()?;
    let host = authority
        .host()
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    (!host.is_empty()).then_some((host, authority.port_u16()))
}

fn parse_origin_pattern(pattern: &str) -> Option<OriginPattern> {
    if pattern == "null" {
        return Some(OriginPattern::Null);
    }
    let (scheme, rest) = pattern.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let (rest, any_port) = match rest.strip_suffix(":*") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let (host, port) = parse_authority(rest)?;
    let port = if any_port {
        PortPattern::Any
    } else {
        PortPattern::Exact(port.or_else(|| default_port(&scheme))?)
    };
    Some(OriginPattern::Tuple { scheme, host, port })
}

/// Middleware that applies a [`HostPolicy`]: `Host` always, `Origin` unless built with
/// [`TransportGuard::hosts_only`].
#[derive(Clone)]
pub struct TransportGuard {
    policy: Arc<HostPolicy>,
    check_origin: bool,
}

impl TransportGuard {
    /// Checks `Host` and `Origin` (the MCP endpoint).
    pub fn new(policy: Arc<HostPolicy>) -> Self {
        Self {
            policy,
            check_origin: true,
        }
    }

    /// Checks `Host` only: for endpoints browsers on any origin may call (the embedded
    /// authorization server's token and registration endpoints, protected by PKCE and secrets).
    pub fn hosts_only(policy: Arc<HostPolicy>) -> Self {
        Self {
            policy,
            check_origin: false,
        }
    }
}

impl<E: Endpoint> Middleware<E> for TransportGuard {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<TransportGuard, E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok());
        let host = host.or_else(|| req.uri().authority().map(http::uri::Authority::as_str));
        if !host.is_some_and(|h| self.layer.policy.host_allowed(h)) {
            tracing::warn!(host = ?host, "refused a request for a host searchgate does not serve (possible DNS rebinding)");
            return Ok(jsonrpc_error(
                StatusCode::FORBIDDEN,
                -32600,
                "Forbidden: the Host header names a host this server does not serve",
            ));
        }
        if let Some(origin) = req
            .headers()
            .get(http::header::ORIGIN)
            .filter(|_| self.layer.check_origin)
        {
            let allowed = origin
                .to_str()
                .is_ok_and(|o| self.layer.policy.origin_allowed(o));
            if !allowed {
                tracing::warn!(origin = ?origin, "refused a request from an origin that is not allowed");
                return Ok(jsonrpc_error(
                    StatusCode::FORBIDDEN,
                    -32600,
                    "Forbidden: the Origin header is not allowed",
                ));
            }
        }
        self.inner
            .call(req)
            .await
            .map(poem::IntoResponse::into_response)
    }
}

/// Middleware for the whole server: a request with more than one `Host` header is refused
/// with 400 (RFC 9112 §3.2). Otherwise the first one would win here while a proxy in front may
/// have routed or checked by the other, which is how request smuggling and host-check bypasses
/// start.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleHost;

impl<E: Endpoint> Middleware<E> for SingleHost {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(*self, inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<SingleHost, E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        if req
            .headers()
            .get_all(http::header::HOST)
            .iter()
            .nth(1)
            .is_some()
        {
            tracing::warn!("refused a request with more than one Host header");
            // Every route, not only MCP: the JSON API's one error body.
            return Ok(ErrorBody::new(
                "invalid_request",
                "the request has more than one Host header",
            )
            .response(StatusCode::BAD_REQUEST));
        }
        // HTTP/2's `:authority` (and HTTP/1's absolute-form target) names the host too; a
        // `Host` that names another is how a check on one and routing on the other part ways
        // (RFC 9113 §8.3.1 forbids it).
        if let (Some(host), Some(authority)) =
            (req.headers().get(http::header::HOST), req.uri().authority())
            && !host
                .as_bytes()
                .eq_ignore_ascii_case(authority.as_str().as_bytes())
        {
            tracing::warn!("refused a request whose Host header and :authority differ");
            return Ok(ErrorBody::new(
                "invalid_request",
                "the Host header and the request target's authority name different hosts",
            )
            .response(StatusCode::BAD_REQUEST));
        }
        self.inner
            .call(req)
            .await
            .map(poem::IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HostPolicy {
        HostPolicy::new(
            &[
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
                "search.example.com:8443".into(),
            ],
            &[
                "https://app.example.com".into(),
                "http://localhost:*".into(),
                "null".into(),
            ],
        )
    }

    #[test]
    fn hosts_match_by_name_and_optional_port() {
        let p = policy();
        for (host, ok, why) in [
            (
                "localhost:10000",
                true,
                "a name without a port in the list allows any port",
            ),
            ("LOCALHOST", true, "host names are case-insensitive"),
            ("[::1]:10000", true, "IPv6 literals lose their brackets"),
            ("search.example.com:8443", true, "the listed port"),
            ("search.example.com:443", false, "another port"),
            (
                "search.example.com",
                false,
                "no port is not the listed port",
            ),
            ("evil.example.com", false, "a foreign host"),
            ("localhost.evil.com", false, "a suffix trick"),
            ("user@localhost", false, "userinfo is not a host"),
            ("", false, "empty"),
        ] {
            assert_eq!(p.host_allowed(host), ok, "{host}: {why}");
        }
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let p = policy();
        for (origin, ok, why) in [
            ("https://app.example.com", true, "exact, default port"),
            ("https://app.example.com:443", true, "explicit default port"),
            ("https://app.example.com:444", false, "another port"),
            ("http://app.example.com", false, "another scheme"),
            ("http://localhost:6274", true, "any port on loopback"),
            ("http://evil.example.com", false, "foreign"),
            ("null", true, "listed"),
            ("garbage", false, "not an origin"),
        ] {
            assert_eq!(p.origin_allowed(origin), ok, "{origin}: {why}");
        }
        assert!(
            !HostPolicy::new(&[], &[]).origin_allowed("null"),
            "null only when listed"
        );
    }
}
