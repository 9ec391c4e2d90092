//! Audit text bounded before it is queued or stored. Most of an audit row comes from the
//! request (a client id is a URL its author chooses, a subject is whatever the IdP signed), so
//! every text column has a length limit, the same on SQLite and PostgreSQL, and a value over
//! it is cut on a character boundary and marked with a trailing `…`. The limits keep every
//! indexed column far below PostgreSQL's b-tree row limit (about 2,700 bytes).

use std::{borrow::Cow, ops::Deref};

use super::AuditEvent;

/// What marks a cut value.
pub const CUT_MARK: char = '…';

/// Most characters of a name or code: method, tool, reason code, request id, provider, token
/// hash prefix, source address.
pub const NAME_CHARS: usize = 128;

/// Most characters of an identity: subject, client id, issuer, the backend's request id. 512
/// characters are at most 2,048 bytes of UTF-8, which a b-tree index row holds.
pub const IDENTITY_CHARS: usize = 512;

/// Most characters of what a tool was asked for (`query_summary`).
pub const SUMMARY_CHARS: usize = 200;

/// `text` when it has at most `max_chars` characters; else its first `max_chars - 1`
/// characters and [`CUT_MARK`], so the result has `max_chars` characters at most.
pub fn bound(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = max_chars.saturating_sub(1);
            let end = text
                .char_indices()
                .nth(keep)
                .map_or(text.len(), |(at, _)| at);
            Cow::Owned(format!("{}{CUT_MARK}", &text[..end]))
        }
    }
}

/// `text` bounded in place (no copy when it fits).
fn bound_owned(text: String, max_chars: usize) -> String {
    match bound(&text, max_chars) {
        Cow::Borrowed(_) => text,
        Cow::Owned(cut) => cut,
    }
}

/// An audit event whose every text fits its column: the only kind the audit queue carries and
/// an [`AuditLog`](super::AuditLog) is given, so no request can make a row the database
/// refuses for its size. Read its fields through `Deref`.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundedEvent(AuditEvent);

impl BoundedEvent {
    /// The event itself.
    pub fn into_inner(self) -> AuditEvent {
        self.0
    }
}

impl From<AuditEvent> for BoundedEvent {
    fn from(event: AuditEvent) -> Self {
        let name = |v: Option<String>| v.map(|v| bound_owned(v, NAME_CHARS));
        let identity = |v: Option<String>| v.map(|v| bound_owned(v, IDENTITY_CHARS));
        Self(AuditEvent {
            request_id: bound_owned(event.request_id, NAME_CHARS),
            method: name(event.method),
            tool: name(event.tool),
            error_code: name(event.error_code),
            subject: identity(event.subject),
            client_id: identity(event.client_id),
            issuer: identity(event.issuer),
            token_hash_prefix: name(event.token_hash_prefix),
            source_addr: name(event.source_addr),
            peer_addr: name(event.peer_addr),
            provider: name(event.provider),
            upstream_request_id: identity(event.upstream_request_id),
            fallback_from: event.fallback_from.map(|v| bound_owned(v, SUMMARY_CHARS)),
            trace_id: identity(event.trace_id),
            query_summary: event.query_summary.map(|v| bound_owned(v, SUMMARY_CHARS)),
            ..event
        })
    }
}

impl Deref for BoundedEvent {
    type Target = AuditEvent;

    fn deref(&self) -> &AuditEvent {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::Outcome;

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_marked() {
        assert_eq!(bound("short", 8), "short", "fits: unchanged");
        assert_eq!(bound("exactly8", 8), "exactly8", "at the limit: unchanged");
        assert_eq!(
            bound("nine char", 8),
            "nine ch…",
            "over: 7 kept and the mark"
        );
        // Multi-byte characters are never split.
        let accents = "é".repeat(20);
        let cut = bound(&accents, 10);
        assert_eq!(cut, format!("{}…", "é".repeat(9)));
        assert_eq!(cut.chars().count(), 10);
        assert_eq!(bound("", 4), "");
    }

    #[test]
    fn a_bounded_event_fits_every_column_and_keeps_the_rest() {
        let long = "x".repeat(4_000);
        let mut event = AuditEvent::action(long.clone(), &long, Outcome::Rejected, 404);
        event.tool = Some(long.clone());
        event.error_code = Some(long.clone());
        event.subject = Some(long.clone());
        event.client_id = Some(format!("https://client.example/{long}"));
        event.issuer = Some(long.clone());
        event.token_hash_prefix = Some(long.clone());
        event.source_addr = Some(long.clone());
        event.provider = Some(long.clone());
        event.upstream_request_id = Some(long.clone());
        event.query_summary = Some("ü".repeat(300));
        let bounded = BoundedEvent::from(event.clone());
        let chars = |v: &Option<String>| v.as_deref().map_or(0, |v| v.chars().count());
        assert_eq!(bounded.request_id.chars().count(), NAME_CHARS);
        for name in [
            &bounded.method,
            &bounded.tool,
            &bounded.error_code,
            &bounded.token_hash_prefix,
            &bounded.source_addr,
            &bounded.provider,
        ] {
            assert_eq!(chars(name), NAME_CHARS);
        }
        for identity in [
            &bounded.subject,
            &bounded.client_id,
            &bounded.issuer,
            &bounded.upstream_request_id,
        ] {
            assert_eq!(chars(identity), IDENTITY_CHARS);
            assert!(identity.as_deref().unwrap().ends_with(CUT_MARK), "marked");
        }
        assert_eq!(chars(&bounded.query_summary), SUMMARY_CHARS);
        assert!(
            bounded
                .client_id
                .as_deref()
                .unwrap()
                .starts_with("https://client.example/xxx"),
            "the start of a value is kept"
        );
        assert_eq!(bounded.http_status, 404, "numbers are untouched");
        assert!(
            IDENTITY_CHARS * 4 + CUT_MARK.len_utf8() < 2_700,
            "an identity fits a PostgreSQL b-tree row whatever its characters"
        );
        let short = AuditEvent::action("r-1".into(), "tools/list", Outcome::Success, 200);
        assert_eq!(
            BoundedEvent::from(short.clone()).into_inner(),
            short,
            "short values are unchanged"
        );
    }
}
