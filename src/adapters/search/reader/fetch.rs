//! The reader's HTTP side: a client that only reaches public addresses (unless told otherwise),
//! re-checks every redirect, skips proxies, and says in a few words why a page could not be
//! fetched.

use std::time::Duration;

use reqwest::{
    Client,
    header::{HeaderValue, InvalidHeaderValue},
    redirect::{Attempt, Policy},
};
use url::Url;

use crate::adapters::public_web::{NoPublicAddress, PublicOnly, cause, check_host};

/// Most redirects followed for one page.
pub(super) const MAX_REDIRECTS: usize = 5;

/// Why a redirect was not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum RedirectRefused {
    /// The chain is longer than [`MAX_REDIRECTS`].
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooMany,
    /// The target is not an http(s) URL.
    #[error("redirect to a {0} URL refused")]
    Scheme(String),
    /// The target carries a user name or password.
    #[error("redirect to a URL with credentials refused")]
    Credentials,
    /// The target's host is not on the public internet.
    #[error("redirect refused: {0}")]
    Host(String),
}

/// The client: identifying user agent, no proxy (a proxy would resolve names itself, past the
/// guard), redirects re-checked by [`check_redirect`], and, unless `allow_private`, names
/// resolved to public addresses only.
///
/// # Errors
/// When `user_agent` is not a valid header value.
pub(super) fn client(
    user_agent: &str,
    connect_timeout: Duration,
    allow_private: bool,
) -> Result<Client, InvalidHeaderValue> {
    let user_agent = HeaderValue::from_str(user_agent)?;
    let policy = Policy::custom(move |attempt: Attempt| {
        // `previous` holds the first URL and every redirect followed so far.
        match check_redirect(attempt.url(), attempt.previous().len(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    });
    let mut builder = Client::builder()
        .user_agent(user_agent)
        .no_proxy()
        .redirect(policy)
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(30));
    if !allow_private {
        builder = builder.dns_resolver(PublicOnly);
    }
    Ok(builder
        .build()
        .expect("a client without custom TLS or proxy settings builds"))
}

/// Whether a redirect to `next` may be followed after `followed` URLs (the first one and the
/// redirects before this one). Names are checked again by the resolver when connecting; address
/// literals and `localhost` names never reach it, so they are checked here.
pub(super) fn check_redirect(
    next: &Url,
    followed: usize,
    allow_private: bool,
) -> Result<(), RedirectRefused> {
    if followed > MAX_REDIRECTS {
        return Err(RedirectRefused::TooMany);
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Err(RedirectRefused::Scheme(
            next.scheme().chars().take(20).collect(),
        ));
    }
    if !next.username().is_empty() || next.password().is_some() {
        return Err(RedirectRefused::Credentials);
    }
    if !allow_private {
        check_host(next).map_err(|refused| RedirectRefused::Host(refused.to_string()))?;
    }
    Ok(())
}

/// A few words on why a request got no response.
pub(super) fn failure_reason(error: &reqwest::Error, timeout: Duration) -> String {
    if let Some(refused) = cause::<RedirectRefused>(error) {
        return refused.to_string();
    }
    if let Some(refused) = cause::<NoPublicAddress>(error) {
        return format!("refused: {refused}");
    }
    if error.is_timeout() {
        return timed_out(timeout);
    }
    let what = if error.is_connect() {
        "cannot connect"
    } else if error.is_redirect() {
        "bad redirect"
    } else {
        "cannot fetch"
    };
    // The innermost cause says what happened (refused, reset, bad certificate, …).
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    let detail: String = source.to_string().chars().take(200).collect();
    format!("{what}: {detail}")
}

/// The reason for a page that took longer than `timeout`.
pub(super) fn timed_out(timeout: Duration) -> String {
    format!("timed out after {:.1} s", timeout.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(next: &str, followed: usize, allow_private: bool) -> Result<(), RedirectRefused> {
        check_redirect(&Url::parse(next).unwrap(), followed, allow_private)
    }

    #[test]
    fn redirects_are_checked_like_first_requests() {
        assert_eq!(verdict("https://example.com/b", 1, false), Ok(()));
        assert_eq!(verdict("http://8.8.8.8/", MAX_REDIRECTS, false), Ok(()));
        assert_eq!(
            verdict("https://example.com/", MAX_REDIRECTS + 1, false),
            Err(RedirectRefused::TooMany),
            "a sixth redirect is one too many"
        );
        for private in [
            "http://10.0.0.1/",
            "http://127.0.0.1:8080/admin",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fe80::1]/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://localhost/",
        ] {
            assert!(
                matches!(verdict(private, 1, false), Err(RedirectRefused::Host(_))),
                "a public page must not send the reader to {private}"
            );
            assert_eq!(
                verdict(private, 1, true),
                Ok(()),
                "private addresses allowed: {private}"
            );
        }
        for (other, why) in [
            ("file:///etc/passwd", "a local file"),
            ("ftp://example.com/x", "not http"),
            ("gopher://127.0.0.1:6379/", "smuggling into other protocols"),
        ] {
            for allow_private in [false, true] {
                assert!(
                    matches!(
                        verdict(other, 1, allow_private),
                        Err(RedirectRefused::Scheme(_))
                    ),
                    "{why}: {other}"
                );
            }
        }
        assert_eq!(
            verdict("https://u:p@example.com/", 1, true),
            Err(RedirectRefused::Credentials)
        );
    }
}
