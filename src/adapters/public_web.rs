//! The guard for fetching URLs a stranger chose (CIMD documents, the page reader): only hosts on
//! the public internet. A fetch could otherwise reach the machine itself, the private network or
//! a cloud metadata endpoint (server-side request forgery). Two checks, because a connection
//! starts either from a name or from an address literal:
//! - names go through [`PublicOnly`], which keeps only the public addresses they resolve to, so
//!   the check is on the addresses actually connected to (DNS rebinding cannot slip past it);
//! - address literals never reach a resolver, so [`check_host`] refuses non-public ones (and
//!   `localhost` names) before any connection.
//!
//! Clients built on the guard must also skip proxies (a proxy resolves the name itself) and
//! re-check every redirect target with [`check_host`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a URL's host may not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostRefused {
    /// The URL has no host.
    #[error("the URL has no host")]
    Missing,
    /// `localhost` or one of its subdomains.
    #[error("{0} is this machine")]
    Localhost(String),
    /// An address literal outside the public internet.
    #[error("{0} is not a public address")]
    NotPublic(IpAddr),
}

/// Refuses a URL whose host is a non-public address literal or a `localhost` name. Other names
/// pass: [`PublicOnly`] checks the addresses they resolve to.
///
/// # Errors
/// [`HostRefused`] saying which rule the host breaks.
pub fn check_host(url: &Url) -> Result<(), HostRefused> {
    // The url crate has already normalised the IPv4 spellings (`0x7f000001`, `2130706433`,
    // `127.1`) into addresses, so they are checked as the addresses they are.
    match url.host() {
        None => Err(HostRefused::Missing),
        Some(Host::Domain(d)) if is_localhost(d) => Err(HostRefused::Localhost(d.to_owned())),
        Some(Host::Domain(_)) => Ok(()),
        Some(Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip)),
    }
}

fn check_ip(ip: IpAddr) -> Result<(), HostRefused> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(HostRefused::NotPublic(ip))
    }
}

/// `localhost` and its subdomains (RFC 6761 §6.3), with or without the root's trailing dot.
pub fn is_localhost(domain: &str) -> bool {
    let domain = domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase();
    domain == "localhost" || domain.ends_with(".localhost")
}

/// Whether `ip` is on the public internet (not loopback, private, link-local, shared, reserved,
/// documentation, benchmarking, multicast, broadcast or unspecified; IPv6 forms that embed an
/// IPv4 address are judged by that address or refused when it could be any).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            let [first, second, .., last2, last] = segments;
            // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks).
            if segments[..6].iter().all(|s| *s == 0) && (last2 != 0 || last > 1) {
                return is_public_v4(Ipv4Addr::from((u32::from(last2) << 16) | u32::from(last)));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || (first & 0xffc0) == 0xfec0 // site local (deprecated)
                || (first == 0x2001 && second == 0x0db8) // documentation
                || (first == 0x3fff && (second & 0xf000) == 0) // documentation (RFC 9637)
                || (first == 0x2001 && second == 0) // Teredo: embeds any IPv4
                || first == 0x2002 // 6to4: embeds any IPv4
                || first == 0x0064 // NAT64 prefixes (RFC 6052, RFC 8215): embed any IPv4
                // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765): never a public destination.
                || segments[..6] == [0, 0, 0, 0, 0xffff, 0]
                // Discard-only 100::/64 (RFC 6666).
                || segments[..4] == [0x0100, 0, 0, 0])
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, CGNAT (RFC 6598)
        || (a == 192 && b == 0)                   // IETF protocol assignments (and more)
        || (a == 192 && b == 88 && c == 99)       // 6to4 relay anycast
        || (a == 198 && (18..20).contains(&b))    // benchmarking
        || a >= 240) // reserved
}

/// A name that resolves, but only to addresses outside the public internet.
#[derive(Debug, thiserror::Error)]
#[error("{0} has no public address")]
pub struct NoPublicAddress(pub String);

/// Whether a fetch failed because the host resolved to no public address.
pub fn has_no_public_address(error: &reqwest::Error) -> bool {
    cause::<NoPublicAddress>(error).is_some()
}

/// The first error of type `E` in `error`'s source chain.
pub fn cause<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        cause = error.source();
    }
    None
}

/// Resolves names and keeps only public addresses, so a hostname that points inside the
/// network cannot be used to reach it (the check is on the addresses actually connected to).
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The port is a placeholder: the connector puts the URL's port on each address.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 443))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(NoPublicAddress(host)) as Box<_>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_are_told_apart() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "100:0:0:1::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "192.1.0.1",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(is_public(ip), "{public} is on the public internet");
        }
        for (private, why) in [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback /8"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("100.64.0.1", "CGNAT"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.1", "documentation"),
            ("203.0.113.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("192.88.99.1", "6to4 relay anycast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fec0::1", "site local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation (RFC 9637)"),
            ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
            ("::ffff:10.0.0.1", "IPv4-mapped private"),
            ("::127.0.0.1", "IPv4-compatible loopback"),
            ("::ffff:0:127.0.0.1", "IPv4-translated"),
            ("::ffff:0:8.8.8.8", "IPv4-translated"),
            ("2002:7f00:1::", "6to4"),
            ("2001:0:4136:e378::1", "Teredo"),
            ("64:ff9b::7f00:1", "NAT64"),
            ("64:ff9b:1::a00:1", "local-use NAT64"),
            ("100::1", "discard-only"),
            ("100::ffff:ffff:ffff:ffff", "discard-only"),
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}: {why}");
        }
    }

    #[test]
    fn literal_hosts_are_checked_in_every_spelling() {
        for (url, ok) in [
            ("http://example.com/", true),
            ("http://8.8.8.8/", true),
            ("http://[2606:4700::1111]/", true),
            ("http://127.0.0.1:8080/", false),
            ("http://0x7f000001/", false),
            ("http://2130706433/", false),
            ("http://017700000001/", false),
            ("http://127.1/", false),
            ("http://0/", false),
            ("http://[::1]/", false),
            ("http://[::ffff:127.0.0.1]/", false),
            ("http://[::ffff:7f00:1]/", false),
            ("http://[fe80::1]/", false),
            ("http://169.254.169.254/latest/meta-data/", false),
            ("http://localhost:3000/", false),
            ("http://LOCALHOST./", false),
            ("http://app.localhost/", false),
        ] {
            let parsed = Url::parse(url).unwrap();
            assert_eq!(
                check_host(&parsed).is_ok(),
                ok,
                "{url} → {:?}",
                parsed.host()
            );
        }
    }

    #[tokio::test]
    async fn names_that_resolve_inside_the_network_are_refused() {
        let refused = PublicOnly.resolve("localhost".parse().unwrap()).await;
        let error = refused.err().expect("localhost has no public address");
        assert!(
            cause::<NoPublicAddress>(error.as_ref()).is_some(),
            "{error}"
        );
    }
}
