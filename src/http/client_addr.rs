//! The client's address. It is the TCP peer's, unless the peer is one of the operator's trusted
//! proxies (`server.trusted_proxies`): then it is the address the proxies name in the header
//! they write (`server.forwarded_header`: `X-Forwarded-For`, or RFC 7239's `Forwarded`), walked
//! from the right past trusted hops to the first address that is not one. Everything left of
//! that is the client's to write, so it is never read; the other header, which the proxies pass
//! on as the client wrote it, is never read either; and from anyone but a trusted proxy no
//! header is read at all.
//!
//! A value that does not parse is ignored (the trusted proxy that passed it on is the client
//! then) and counted, never an error: a client must not be able to break its own request, or
//! the audit row, with a header.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use poem::{Endpoint, Middleware, Request, Result, http::HeaderMap};

pub use crate::config::ForwardedHeader;

use super::Layered;
use super::metrics::Metrics;

/// Where a request came from: the client, and the TCP peer that delivered it (the same machine
/// unless a trusted proxy forwarded the request). In every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client, as far as trusted proxies can tell.
    pub client: IpAddr,
    /// The TCP peer.
    pub peer: SocketAddr,
}

impl ClientAddr {
    /// The address of the request `req` came from: resolved by [`ClientAddrLayer`], or the peer
    /// when the layer is not in front (a test mounting one route alone).
    pub fn of(req: &Request) -> Option<Self> {
        req.extensions().get::<Self>().copied().or_else(|| {
            let peer = *req.remote_addr().as_socket_addr()?;
            Some(Self {
                client: peer.ip().to_canonical(),
                peer,
            })
        })
    }
}

/// Addresses and networks from the settings: the proxies whose forwarding headers are
/// believed (`server.trusted_proxies`), the scrapers `/metrics` answers
/// (`telemetry.metrics_allowed_from`).
#[derive(Debug, Clone, Default)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    /// From addresses (`10.0.0.7`, `::1`) and networks (`10.0.0.0/8`, `fd00::/8`). Entries
    /// that do not parse are skipped; configuration validation reports them first.
    pub fn new(entries: &[String]) -> Self {
        Self(entries.iter().filter_map(|e| parse_network(e)).collect())
    }

    /// Whether `ip` is one of them (an IPv4 address also as IPv4-mapped IPv6).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One entry: an address or a network in CIDR notation.
pub fn parse_network(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
        .map(|net| match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                // `::ffff:10.0.0.0/104` is `10.0.0.0/8`.
                Some(v4) if v6.prefix_len() >= 96 => {
                    IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(net)
                }
                _ => net,
            },
            IpNet::V4(_) => net,
        })
}

/// Why forwarding headers from a trusted proxy were not followed to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// A value did not parse: the whole header is ignored.
    Malformed,
    /// A hop named no address (`unknown`, an obfuscated identifier, an element without `for=`):
    /// nothing left of it can be placed.
    Unknown,
}

impl Ignored {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
        }
    }
}

/// The client's address for a request `peer` delivered with `headers`, and why the headers
/// were not followed to the end when they were not. Only `header` is read: the one the
/// operator's proxies write (a client can send the other through them untouched). Its elements
/// are parsed from the right, one at a time, so nothing left of the first untrusted hop (the
/// client's own writing) is ever read.
pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &Networks,
    header: ForwardedHeader,
) -> (IpAddr, Option<Ignored>) {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return (peer, None);
    }
    let (name, parse): (&str, fn(&str) -> Option<Hop>) = match header {
        ForwardedHeader::XForwardedFor => ("x-forwarded-for", |e| node_address(e.trim())),
        ForwardedHeader::Forwarded => ("forwarded", forwarded_element),
    };
    let mut client = peer;
    for line in headers.get_all(name).iter().rev() {
        let elements = match header {
            ForwardedHeader::XForwardedFor => Elements::plain(line.as_bytes()),
            ForwardedHeader::Forwarded => Elements::quoted(line.as_bytes()),
        };
        for element in elements {
            if element.iter().all(u8::is_ascii_whitespace) {
                continue; // an empty list element (RFC 9110 §5.6.1)
            }
            let Some(hop) = std::str::from_utf8(element).ok().and_then(parse) else {
                return (client, Some(Ignored::Malformed));
            };
            let Some(ip) = hop else {
                return (client, Some(Ignored::Unknown));
            };
            client = ip.to_canonical();
            if !trusted.contains(client) {
                return (client, None);
            }
        }
    }
    // Every hop is a trusted proxy (a balancer's own health check): the left-most is the client.
    (client, None)
}

/// One hop of a forwarding chain: its address, or `None` when it named none.
type Hop = Option<IpAddr>;

/// The comma-separated elements of one header line, right to left. With `quoted`, a comma
/// inside a quoted string (RFC 9110 §5.6.4) separates nothing; scanning from the right, a
/// quote left open on the left only spoils the left-most element.
struct Elements<'a> {
    rest: Option<&'a [u8]>,
    quoted: bool,
}

impl<'a> Elements<'a> {
    fn plain(line: &'a [u8]) -> Self {
        Self {
            rest: Some(line),
            quoted: false,
        }
    }

    fn quoted(line: &'a [u8]) -> Self {
        Self {
            rest: Some(line),
            quoted: true,
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let mut in_quotes = false;
        for i in (0..rest.len()).rev() {
            match rest[i] {
                b'"' if self.quoted => {
                    // Inside quotes, a quote after an odd run of backslashes is escaped.
                    let backslashes = rest[..i].iter().rev().take_while(|b| **b == b'\\').count();
                    if !in_quotes || backslashes % 2 == 0 {
                        in_quotes = !in_quotes;
                    }
                }
                b',' if !in_quotes => {
                    self.rest = Some(&rest[..i]);
                    return Some(&rest[i + 1..]);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(rest)
    }
}

/// The `for=` of one `Forwarded` element (RFC 7239 §4): `None` when any part of it does not
/// parse, `Some(None)` when it names no address.
fn forwarded_element(element: &str) -> Option<Hop> {
    let mut hop = None;
    let mut seen_for = false;
    for pair in split_outside_quotes(element, b';')? {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return None;
        }
        let value = unquote(value.trim())?;
        if name.eq_ignore_ascii_case("for") {
            if seen_for {
                return None;
            }
            seen_for = true;
            hop = node_address(&value)?;
        }
    }
    Some(hop)
}

/// A node (RFC 7239 §6): `Some(Some(ip))` for an address with an optional port (`192.0.2.1`,
/// `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, and a bare `2001:db8::1` as
/// `X-Forwarded-For` writes it), `Some(None)` for `unknown` or an obfuscated `_name`, `None`
/// for anything else.
fn node_address(node: &str) -> Option<Hop> {
    if node.eq_ignore_ascii_case("unknown") {
        return Some(None);
    }
    if let Some(name) = node.strip_prefix('_') {
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        return plain.then_some(None);
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(Some(ip));
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, port) = rest.split_once(']')?;
        let ip = ip.parse::<std::net::Ipv6Addr>().ok()?;
        return (port.is_empty() || is_port(port.strip_prefix(':')?)).then_some(Some(ip.into()));
    }
    let (ip, port) = node.split_once(':')?;
    let ip = ip.parse::<std::net::Ipv4Addr>().ok()?;
    is_port(port).then_some(Some(ip.into()))
}

/// A port: digits, or an obfuscated `_name` (RFC 7239 §6.3).
fn is_port(port: &str) -> bool {
    match port.strip_prefix('_') {
        Some(name) => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        }
        None => port.parse::<u16>().is_ok(),
    }
}

/// `value` split at each `separator` outside a quoted string; `None` when a quote is left open.
fn split_outside_quotes(value: &str, separator: u8) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in value.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == separator && !quoted {
            parts.push(&value[start..i]);
            start = i + 1;
        }
    }
    if quoted || escaped {
        return None;
    }
    parts.push(&value[start..]);
    Some(parts)
}

/// A token, or a quoted string with its escapes undone (RFC 9110 §5.6).
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.is_empty() && value.bytes().all(is_tchar)).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Middleware that puts each request's [`ClientAddr`] into its extensions. Outside every layer
/// that logs or audits.
#[derive(Clone)]
pub struct ClientAddrLayer {
    /// The proxies whose headers are believed.
    pub trusted: std::sync::Arc<Networks>,
    /// The header they write.
    pub header: ForwardedHeader,
    /// Counts ignored headers.
    pub metrics: std::sync::Arc<Metrics>,
}

impl<E: Endpoint> Middleware<E> for ClientAddrLayer {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<ClientAddrLayer, E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if let Some(&peer) = req.remote_addr().as_socket_addr() {
            let client = if self.layer.trusted.is_empty() {
                peer.ip().to_canonical()
            } else {
                let (client, ignored) = resolve(
                    peer.ip(),
                    req.headers(),
                    &self.layer.trusted,
                    self.layer.header,
                );
                if let Some(ignored) = ignored {
                    self.layer.metrics.forwarded_ignored(ignored.as_str());
                }
                client
            };
            req.extensions_mut().insert(ClientAddr { client, peer });
        }
        self.inner.call(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &[&str]) -> Networks {
        Networks::new(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolve_xff(
        peer: IpAddr,
        sent: &HeaderMap,
        proxies: &Networks,
    ) -> (IpAddr, Option<Ignored>) {
        resolve(peer, sent, proxies, ForwardedHeader::XForwardedFor)
    }

    fn resolve_forwarded(
        peer: IpAddr,
        sent: &HeaderMap,
        proxies: &Networks,
    ) -> (IpAddr, Option<Ignored>) {
        resolve(peer, sent, proxies, ForwardedHeader::Forwarded)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let sent = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
            assert_eq!(
                resolve(ip("203.0.113.9"), &sent, &proxies, header),
                (ip("203.0.113.9"), None)
            );
        }
        // And with no proxies configured at all.
        assert_eq!(
            resolve_xff(ip("10.0.0.1"), &sent, &Networks::default()),
            (ip("10.0.0.1"), None)
        );
    }

    #[test]
    fn a_trusted_peer_names_the_client_in_x_forwarded_for() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let sent = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            resolve_xff(ip("10.1.2.3"), &sent, &proxies),
            (ip("198.51.100.7"), None)
        );
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop_from_the_right() {
        let proxies = trusted(&["10.0.0.0/8", "192.168.1.1"]);
        // The client wrote the two left-most entries itself; its own address was appended by
        // the first trusted proxy.
        let sent = headers(&[(
            "x-forwarded-for",
            "127.0.0.1, 10.9.9.9, 198.51.100.7, 192.168.1.1",
        )]);
        assert_eq!(
            resolve_xff(ip("10.0.0.2"), &sent, &proxies),
            (ip("198.51.100.7"), None)
        );
        // Several header lines are one list.
        let sent = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-for", "10.0.0.5"),
        ]);
        assert_eq!(
            resolve_xff(ip("10.0.0.2"), &sent, &proxies),
            (ip("198.51.100.7"), None)
        );
    }

    #[test]
    fn every_hop_trusted_gives_the_left_most() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let sent = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.8")]);
        assert_eq!(
            resolve_xff(ip("10.0.0.2"), &sent, &proxies),
            (ip("10.0.0.9"), None)
        );
    }

    #[test]
    fn only_the_configured_header_is_read_and_forwarded_per_rfc_7239() {
        let proxies = trusted(&["10.0.0.0/8", "fd00::/8"]);
        let sent = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            (
                "forwarded",
                r#"for=6.6.6.6;proto=http, For="[2001:db8:cafe::17]:4711";by=10.0.0.1;host="a,b", for=10.0.0.3"#,
            ),
        ]);
        assert_eq!(
            resolve_forwarded(ip("fd00::1"), &sent, &proxies),
            (ip("2001:db8:cafe::17"), None)
        );
        // A proxy that writes X-Forwarded-For passes a client's own Forwarded on untouched.
        assert_eq!(
            resolve_xff(ip("fd00::1"), &sent, &proxies),
            (ip("198.51.100.7"), None)
        );
        let sent = headers(&[("forwarded", r#"for="192.0.2.43:47011""#)]);
        assert_eq!(
            resolve_forwarded(ip("10.0.0.1"), &sent, &proxies),
            (ip("192.0.2.43"), None)
        );
        assert_eq!(
            resolve_xff(ip("10.0.0.1"), &sent, &proxies),
            (ip("10.0.0.1"), None)
        );
    }

    #[test]
    fn what_the_client_wrote_left_of_its_address_is_never_read() {
        let proxies = trusted(&["10.0.0.0/8"]);
        for value in [
            "garbage, 203.0.113.5",
            "[::1, 203.0.113.5",
            ", , 203.0.113.5",
        ] {
            let sent = headers(&[("x-forwarded-for", value)]);
            assert_eq!(
                resolve_xff(ip("10.0.0.1"), &sent, &proxies),
                (ip("203.0.113.5"), None),
                "{value}"
            );
        }
        // A line of garbage before the proxy's own line.
        let mut sent = HeaderMap::new();
        sent.append(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        sent.append("x-forwarded-for", "203.0.113.5".parse().unwrap());
        assert_eq!(
            resolve_xff(ip("10.0.0.1"), &sent, &proxies),
            (ip("203.0.113.5"), None)
        );
        for value in [
            r#"for="unterminated, for=203.0.113.5"#,
            r#"for=garbage;;=, for=203.0.113.5"#,
            r#"for="a\", b", for=203.0.113.5"#,
            "for=6.6.6.6, , for=203.0.113.5",
        ] {
            let sent = headers(&[("forwarded", value)]);
            assert_eq!(
                resolve_forwarded(ip("10.0.0.1"), &sent, &proxies),
                (ip("203.0.113.5"), None),
                "{value}"
            );
        }
        // A quoted comma from the right: the element is one, and it is the client's.
        let sent = headers(&[(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8::9]";host="x,y""#,
        )]);
        assert_eq!(
            resolve_forwarded(ip("10.0.0.1"), &sent, &proxies),
            (ip("2001:db8::9"), None)
        );
    }

    #[test]
    fn ipv6_and_ipv4_mapped_peers_and_entries() {
        let proxies = trusted(&["::1", "10.0.0.0/8"]);
        let sent = headers(&[("x-forwarded-for", "2001:db8::5, [2001:db8::6]:443")]);
        assert_eq!(
            resolve_xff(ip("::1"), &sent, &proxies),
            (ip("2001:db8::6"), None)
        );
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        let sent = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(
            resolve_xff(ip("::ffff:10.0.0.1"), &sent, &proxies),
            (ip("198.51.100.7"), None)
        );
        assert!(trusted(&["::ffff:10.0.0.0/104"]).contains(ip("10.2.3.4")));
    }

    #[test]
    fn garbage_is_ignored_and_counted_not_an_error() {
        let proxies = trusted(&["10.0.0.0/8"]);
        for value in ["not-an-address", "1.2.3.4:99999", "[::1", "1.2.3.4 5.6.7.8"] {
            let sent = headers(&[("x-forwarded-for", value)]);
            assert_eq!(
                resolve_xff(ip("10.0.0.1"), &sent, &proxies),
                (ip("10.0.0.1"), Some(Ignored::Malformed)),
                "{sent:?}"
            );
        }
        for value in [
            "for=",
            r#"for="1.2.3.4"#,
            "for=[::1]",
            "for=1.2.3.4;for=5.6.7.8",
            "=1.2.3.4",
            r#"for="bad\"#,
        ] {
            let sent = headers(&[("forwarded", value)]);
            assert_eq!(
                resolve_forwarded(ip("10.0.0.1"), &sent, &proxies),
                (ip("10.0.0.1"), Some(Ignored::Malformed)),
                "{value}"
            );
        }
        // Not UTF-8 at all.
        let mut sent = HeaderMap::new();
        sent.insert(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"1.2.3.4\xff").unwrap(),
        );
        assert_eq!(
            resolve_xff(ip("10.0.0.1"), &sent, &proxies),
            (ip("10.0.0.1"), Some(Ignored::Malformed))
        );
    }

    #[test]
    fn an_unknown_hop_stops_the_walk_at_the_proxy_that_passed_it() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let sent = headers(&[("forwarded", "for=198.51.100.7, for=unknown, for=10.0.0.4")]);
        assert_eq!(
            resolve_forwarded(ip("10.0.0.1"), &sent, &proxies),
            (ip("10.0.0.4"), Some(Ignored::Unknown))
        );
        let sent = headers(&[("forwarded", "for=_hidden;proto=https")]);
        assert_eq!(
            resolve_forwarded(ip("10.0.0.1"), &sent, &proxies),
            (ip("10.0.0.1"), Some(Ignored::Unknown))
        );
    }

    #[test]
    fn trusted_proxy_entries() {
        assert!(parse_network("10.0.0.0/8").is_some());
        assert!(parse_network("10.0.0.7").is_some());
        assert!(parse_network(" fd00::/8 ").is_some());
        assert!(parse_network("::1").is_some());
        assert!(parse_network("10.0.0.0/33").is_none());
        assert!(parse_network("proxy.example").is_none());
        assert!(parse_network("").is_none());
    }
}
