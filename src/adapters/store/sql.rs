//! The statements both databases run the same way, one function each. Times are bound by the
//! caller rather than read from the database clock, so replicas and databases agree. What
//! differs between the databases (transactions, locks, key order) is in their [`Dialect`].
//!
//! [`Dialect`]: super::dialect::Dialect

use serde::{Serialize, Serializer, ser::SerializeTuple};

use super::{
    dialect::Dialect,
    statement::{Statement, Value, stored_text},
};
use crate::domain::{
    audit::{AuditQuery, BoundedEvent, IDENTITY_CHARS, NAME_CHARS, UsageGroup, bound},
    clients::{ClientCursor, ClientSource, RegisteredClient},
    issuer::{ClientRecord, CodeRecord, KeyRecord, RefreshRecord, UnixTime},
    time::Timestamp,
};

/// Spent codes and refresh tokens are kept this long past expiry, so a replay is recognised as
/// one; then they are deleted.
pub const KEEP_EXPIRED_SECS: i64 = 86_400;

/// The audit columns an insert writes, in the order of each event's JSON array (see
/// [`insert_events`]); each dialect's `INSERT_EVENTS` reads them in this order.
pub const EVENT_COLUMNS: &str = "occurred_at_ms, request_id, method, tool, outcome, http_status, \
    error_code, latency_us, subject, client_id, issuer, token_hash_prefix, source_addr, provider, \
    cache_hit, upstream_attempts, upstream_request_id, query_summary, fallback_from, credits, \
    cost_usd, trace_id, peer_addr";

/// One `INSERT` of any number of events (`D::INSERT_EVENTS`), which travel as one JSON array
/// of arrays, one per event, in [`EVENT_COLUMNS`] order: the statement text never changes, so
/// it stays prepared whatever the batch size, and a batch binds one value rather than 22 per
/// event.
pub fn insert_events<D: Dialect>(events: &[BoundedEvent]) -> Statement {
    let mut json = Vec::with_capacity(events.len() * 384);
    // Serializing plain strings and numbers into memory cannot fail.
    let _ = serde_json::to_writer(&mut json, &EventRows(events));
    let json = String::from_utf8(json).unwrap_or_default();
    Statement::new(D::INSERT_EVENTS, [Value::Text(Some(json))])
}

/// Events as the JSON array of arrays [`insert_events`] binds.
struct EventRows<'a>(&'a [BoundedEvent]);

impl Serialize for EventRows<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(EventRow))
    }
}

/// One event: its values in [`EVENT_COLUMNS`] order.
struct EventRow<'a>(&'a BoundedEvent);

impl<'a> Serialize for EventRow<'a> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let opt = |value: &'a Option<String>| value.as_deref().map(stored_text);
        let mut row = serializer.serialize_tuple(23)?;
        row.serialize_element(&e.occurred_at.unix_millis())?;
        row.serialize_element(&stored_text(&e.request_id))?;
        row.serialize_element(&opt(&e.method))?;
        row.serialize_element(&opt(&e.tool))?;
        row.serialize_element(e.outcome.as_str())?;
        row.serialize_element(&e.http_status)?;
        row.serialize_element(&opt(&e.error_code))?;
        row.serialize_element(&i64::try_from(e.latency.as_micros()).unwrap_or(i64::MAX))?;
        row.serialize_element(&opt(&e.subject))?;
        row.serialize_element(&opt(&e.client_id))?;
        row.serialize_element(&opt(&e.issuer))?;
        row.serialize_element(&opt(&e.token_hash_prefix))?;
        row.serialize_element(&opt(&e.source_addr))?;
        row.serialize_element(&opt(&e.provider))?;
        row.serialize_element(&e.cache_hit)?;
        row.serialize_element(&e.upstream_attempts)?;
        row.serialize_element(&opt(&e.upstream_request_id))?;
        row.serialize_element(&opt(&e.query_summary))?;
        row.serialize_element(&opt(&e.fallback_from))?;
        row.serialize_element(&e.credits)?;
        row.serialize_element(&e.cost_usd)?;
        row.serialize_element(&opt(&e.trace_id))?;
        row.serialize_element(&opt(&e.peer_addr))?;
        row.end()
    }
}

/// The events `query` selects, oldest first, one more than its limit (to know if more follow).
pub fn select_events<D: Dialect>(query: &AuditQuery) -> Statement {
    // The page's ids first, then its rows: the ids can come from an index alone (the filtered
    // columns and the id), sorted there, where a plan that reads every candidate row to test
    // it walks a whole day or a client's whole history instead (PostgreSQL chose that for a
    // client's day at 10 million rows: 1.2 s; bench/audit_query.sh).
    let mut statement = Statement::build(format!(
        "SELECT id, {EVENT_COLUMNS} FROM audit_events WHERE id IN \
         (SELECT id FROM audit_events WHERE 1 = 1"
    ));
    if let Some(after) = query.after {
        statement.push(" AND id > ").bind(after);
    }
    if let Some(since) = query.since {
        statement
            .push(" AND occurred_at_ms >= ")
            .bind(since.unix_millis());
    }
    if let Some(until) = query.until {
        statement
            .push(" AND occurred_at_ms < ")
            .bind(until.unix_millis());
    }
    // Subject, client id and tool have indexes that give their rows in id order; without one,
    // a time window is found by walking ids, from the oldest.
    if let Some(since) = query.since
        && query.subject.is_none()
        && query.client_id.is_none()
        && query.tool.is_none()
    {
        window_ids::<D>(&mut statement, since, query.until);
    }
    // Stored values were bounded (see `BoundedEvent`): a filter naming a longer value is
    // bounded the same way, so it finds the rows of that value.
    for (column, value) in [
        (
            "subject",
            query.subject.as_deref().map(|v| bound(v, IDENTITY_CHARS)),
        ),
        (
            "client_id",
            query.client_id.as_deref().map(|v| bound(v, IDENTITY_CHARS)),
        ),
        ("tool", query.tool.as_deref().map(|v| bound(v, NAME_CHARS))),
        ("outcome", query.outcome.map(|o| o.as_str().into())),
    ] {
        if let Some(value) = value {
            statement
                .push(&format!(" AND {column} = "))
                .bind(value.as_ref());
        }
    }
    statement
        .push(" ORDER BY id LIMIT ")
        .bind(i64::from(query.limit.max(1)) + 1)
        .push(") ORDER BY id");
    statement
}

/// Keeps the page's ids within those of the rows in `[since, until)`: at least the smallest,
/// and with `until` at most the largest, each read from the window's entries in the time
/// index (`D::BY_OCCURRED_AT`). Exact, since no row of the window lies outside, and it lets
/// the page walk ids from the window's first rather than from the table's oldest: SQLite,
/// without STAT4 statistics, guesses that `since` keeps a quarter of the rows and walks every
/// id until the window (1.7–2.9 s for the newest hour of 10 million rows; bench/audit_query.sh).
/// The largest id stops a walk that finds too few matches (a rare outcome) at the window's
/// last row instead of the table's end. `id + 0`, not `id`: PostgreSQL would answer
/// `MIN(id)` by walking the primary key until a row falls in the window (its min/max
/// rewrite), the very walk this avoids (134 ms for a week of a million rows, instead of 64).
fn window_ids<D: Dialect>(statement: &mut Statement, since: Timestamp, until: Option<Timestamp>) {
    let bounds: &[_] = if until.is_some() {
        &[(">=", "MIN"), ("<=", "MAX")]
    } else {
        &[(">=", "MIN")]
    };
    for (compare, aggregate) in bounds {
        statement
            .push(&format!(
                " AND id {compare} (SELECT {aggregate}(id + 0) FROM audit_events {} \
                 WHERE occurred_at_ms >= ",
                D::BY_OCCURRED_AT
            ))
            .bind(since.unix_millis());
        if let Some(until) = until {
            statement
                .push(" AND occurred_at_ms < ")
                .bind(until.unix_millis());
        }
        statement.push(")");
    }
}

/// Events per hour (its start, Unix seconds), tool and outcome in `[since, until)`.
pub fn hourly_counts(since: Timestamp, until: Timestamp) -> Statement {
    Statement::new(
        "SELECT (occurred_at_ms / 3600000) * 3600 AS hour, tool, outcome, COUNT(*) AS n \
         FROM audit_events WHERE occurred_at_ms >= $1 AND occurred_at_ms < $2 \
         GROUP BY hour, tool, outcome ORDER BY hour, tool IS NOT NULL, tool, outcome",
        [since.unix_millis().into(), until.unix_millis().into()],
    )
}

/// Tool calls, errors and cost per `group` in `[since, until)`, most calls first.
pub fn usage(since: Timestamp, until: Timestamp, group: UsageGroup) -> Statement {
    // A fixed column per grouping: nothing a caller writes reaches the statement text.
    let column = match group {
        UsageGroup::Subject => "subject",
        UsageGroup::Client => "client_id",
        UsageGroup::Provider => "provider",
        UsageGroup::Tool => "tool",
    };
    let mut statement = Statement::build(format!(
        "SELECT {column} AS grp, COUNT(*) AS calls, \
         SUM(CASE WHEN outcome = 'success' THEN 0 ELSE 1 END) AS errors, \
         COALESCE(SUM(credits), 0.0) AS credits, COALESCE(SUM(cost_usd), 0.0) AS cost_usd \
         FROM audit_events WHERE tool IS NOT NULL AND occurred_at_ms >= "
    ));
    statement
        .bind(since.unix_millis())
        .push(" AND occurred_at_ms < ")
        .bind(until.unix_millis())
        .push(&format!(" GROUP BY {column} ORDER BY calls DESC, grp"));
    statement
}

/// Deletes the events before `before`.
pub fn prune_events(before: Timestamp) -> Statement {
    Statement::new(
        "DELETE FROM audit_events WHERE occurred_at_ms < $1",
        [before.unix_millis().into()],
    )
}

/// Inserts nothing, but is checked like an insert: fails on a read-only server or session, or
/// a role that may not write the audit trail.
pub const PROBE_AUDIT_WRITE: &str = "INSERT INTO audit_events (occurred_at_ms, request_id, \
    outcome, http_status, latency_us) SELECT 0, '', '', 0, 0 WHERE FALSE";

const SELECT_CLIENTS: &str = "SELECT client_id, client_name, redirect_uris, grant_types, \
    token_endpoint_auth_method, source, created_at, last_seen_at, denied_at FROM clients";

/// One client by id.
pub fn select_client(client_id: &str) -> Statement {
    let mut statement = Statement::build(SELECT_CLIENTS);
    statement.push(" WHERE client_id = ").bind(client_id);
    statement
}

/// A page of clients after `cursor`, keyset-ordered on (created_at, client_id) so it stays
/// stable while rows are added; one more than `limit`.
pub fn select_clients(after: Option<&ClientCursor>, limit: u32) -> Statement {
    let mut statement = Statement::build(SELECT_CLIENTS);
    if let Some(after) = after {
        statement
            .push(" WHERE (created_at, client_id) > (")
            .bind(after.created_at)
            .push(", ")
            .bind(&after.client_id)
            .push(")");
    }
    statement
        .push(" ORDER BY created_at, client_id LIMIT ")
        .bind(i64::from(limit) + 1);
    statement
}

/// Sets `last_seen_at` of the named clients (at least one).
pub fn touch_clients(client_ids: &[String], at: UnixTime) -> Statement {
    let mut statement = Statement::build("UPDATE clients SET last_seen_at = ");
    statement.bind(at).push(" WHERE client_id IN (");
    for (n, id) in client_ids.iter().enumerate() {
        statement.push(if n == 0 { "" } else { ", " }).bind(id);
    }
    statement.push(")");
    statement
}

/// Remembers a registered client. A static client is registered again by every user: the
/// first row's times are kept. `conflict` is the dialect's unique index on the client id.
///
/// # Errors
/// When its lists cannot be written as JSON.
pub fn record_client(
    client: &RegisteredClient,
    source: ClientSource,
    conflict: &str,
) -> serde_json::Result<Statement> {
    let metadata = &client.metadata;
    let mut statement = Statement::insert(
        "clients",
        "client_id, client_name, redirect_uris, grant_types, token_endpoint_auth_method, \
         source, created_at",
        [[
            (&client.client_id).into(),
            (&metadata.client_name).into(),
            json(&metadata.redirect_uris)?,
            json(&metadata.grant_types)?,
            (&metadata.token_endpoint_auth_method).into(),
            source.as_str().into(),
            client.created_at.unix_seconds().into(),
        ]],
    );
    statement.push(&format!(
        " ON CONFLICT {conflict} DO UPDATE SET client_name = excluded.client_name, \
         redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, \
         token_endpoint_auth_method = excluded.token_endpoint_auth_method"
    ));
    Ok(statement)
}

/// Denies a client at `at`, keeping an earlier denial's time.
pub fn deny_client(client_id: &str, at: UnixTime) -> Statement {
    Statement::new(
        "UPDATE clients SET denied_at = COALESCE(denied_at, $1) WHERE client_id = $2",
        [at.into(), client_id.into()],
    )
}

/// Every denied client id.
pub fn denied_clients() -> Statement {
    Statement::new(
        "SELECT client_id FROM clients WHERE denied_at IS NOT NULL",
        [],
    )
}

/// Every signing key, ordered by `order` (the dialect's order in which they were made).
pub fn select_keys(order: &str) -> Statement {
    Statement::build(format!(
        "SELECT kid, private_pem, created_at, rotated_at, tokens_expire_at, retired_at \
         FROM idp_keys ORDER BY {order}"
    ))
}

/// Rotates every signing key out at `at`.
pub fn rotate_out_keys(at: UnixTime) -> Statement {
    Statement::new(
        "UPDATE idp_keys SET rotated_at = $1 WHERE rotated_at IS NULL",
        [at.into()],
    )
}

/// How many keys sign (neither rotated out nor retired), as `n`.
pub fn count_signing_keys() -> Statement {
    Statement::new(
        "SELECT COUNT(*) AS n FROM idp_keys WHERE rotated_at IS NULL AND retired_at IS NULL",
        [],
    )
}

/// Stores a signing key.
pub fn insert_key(key: &KeyRecord) -> Statement {
    Statement::insert(
        "idp_keys",
        "kid, private_pem, created_at, rotated_at, tokens_expire_at, retired_at",
        [[
            (&key.kid).into(),
            (&key.private_pem).into(),
            key.created_at.into(),
            key.rotated_at.into(),
            key.tokens_expire_at.into(),
            key.retired_at.into(),
        ]],
    )
}

/// Keeps `kid` published until at least `exp`, unless it is retired.
pub fn extend_key(kid: &str, exp: UnixTime) -> Statement {
    Statement::new(
        "UPDATE idp_keys SET tokens_expire_at = \
         CASE WHEN tokens_expire_at < $1 THEN $1 ELSE tokens_expire_at END \
         WHERE kid = $2 AND retired_at IS NULL",
        [exp.into(), kid.into()],
    )
}

/// Withdraws `kid` at `at`.
pub fn retire_key(kid: &str, at: UnixTime) -> Statement {
    Statement::new(
        "UPDATE idp_keys SET retired_at = $1, rotated_at = COALESCE(rotated_at, $1) \
         WHERE kid = $2 AND retired_at IS NULL",
        [at.into(), kid.into()],
    )
}

/// Stores an embedded-server client.
///
/// # Errors
/// When its lists cannot be written as JSON.
pub fn insert_idp_client(client: &ClientRecord) -> serde_json::Result<Statement> {
    Ok(Statement::insert(
        "idp_clients",
        "client_id, client_name, redirect_uris, grant_types, token_endpoint_auth_method, \
         secret_hash, created_at",
        [[
            (&client.client_id).into(),
            (&client.client_name).into(),
            json(&client.redirect_uris)?,
            json(&client.grant_types)?,
            (&client.token_endpoint_auth_method).into(),
            (&client.secret_hash).into(),
            client.created_at.into(),
        ]],
    ))
}

/// One embedded-server client by id.
pub fn select_idp_client(client_id: &str) -> Statement {
    Statement::new(
        "SELECT client_id, client_name, redirect_uris, grant_types, \
         token_endpoint_auth_method, secret_hash, created_at FROM idp_clients \
         WHERE client_id = $1",
        [client_id.into()],
    )
}

/// Stores an authorization code.
pub fn insert_code(code: &CodeRecord) -> Statement {
    Statement::insert(
        "idp_codes",
        "code_hash, client_id, redirect_uri, code_challenge, scope, resource, subject, expires_at",
        [[
            (&code.code_hash).into(),
            (&code.client_id).into(),
            (&code.redirect_uri).into(),
            (&code.code_challenge).into(),
            (&code.scope).into(),
            (&code.resource).into(),
            (&code.subject).into(),
            code.expires_at.into(),
        ]],
    )
}

/// Deletes codes that expired before `before`.
pub fn prune_codes(before: UnixTime) -> Statement {
    Statement::new(
        "DELETE FROM idp_codes WHERE expires_at < $1",
        [before.into()],
    )
}

/// One code with its `spent` flag.
pub fn select_code(code_hash: &str) -> Statement {
    Statement::new(
        "SELECT code_hash, client_id, redirect_uri, code_challenge, scope, resource, subject, \
         expires_at, used_at IS NOT NULL AS spent FROM idp_codes WHERE code_hash = $1",
        [code_hash.into()],
    )
}

/// Spends a code; the `used_at IS NULL` condition decides which of two racing callers wins.
pub fn spend_code(code_hash: &str, at: UnixTime) -> Statement {
    Statement::new(
        "UPDATE idp_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
        [at.into(), code_hash.into()],
    )
}

/// Stores a refresh token.
pub fn insert_refresh(token: &RefreshRecord) -> Statement {
    Statement::insert(
        "idp_refresh_tokens",
        "token_hash, family, client_id, subject, scope, resource, expires_at",
        [[
            (&token.token_hash).into(),
            (&token.family).into(),
            (&token.client_id).into(),
            (&token.subject).into(),
            (&token.scope).into(),
            (&token.resource).into(),
            token.expires_at.into(),
        ]],
    )
}

/// One refresh token with its `spent` flag (used or revoked).
pub fn select_refresh(token_hash: &str) -> Statement {
    Statement::new(
        "SELECT token_hash, family, client_id, subject, scope, resource, expires_at, \
         (used_at IS NOT NULL OR revoked_at IS NOT NULL) AS spent \
         FROM idp_refresh_tokens WHERE token_hash = $1",
        [token_hash.into()],
    )
}

/// Spends a refresh token; as with codes, the condition picks the one winner.
pub fn spend_refresh(token_hash: &str, at: UnixTime) -> Statement {
    Statement::new(
        "UPDATE idp_refresh_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL",
        [at.into(), token_hash.into()],
    )
}

/// Deletes refresh tokens that expired before `before`.
pub fn prune_refresh(before: UnixTime) -> Statement {
    Statement::new(
        "DELETE FROM idp_refresh_tokens WHERE expires_at < $1",
        [before.into()],
    )
}

/// Revokes every live refresh token of `family` at `at`.
pub fn revoke_family(family: &str, at: UnixTime) -> Statement {
    Statement::new(
        "UPDATE idp_refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
        [at.into(), family.into()],
    )
}

/// Records a used consent ticket; changes no row when it was recorded already.
pub fn spend_ticket(ticket_id: &str, expires_at: UnixTime) -> Statement {
    let mut statement = Statement::insert(
        "idp_consent_tickets",
        "ticket_id, expires_at",
        [[ticket_id.into(), expires_at.into()]],
    );
    statement.push(" ON CONFLICT (ticket_id) DO NOTHING");
    statement
}

/// Deletes used consent tickets that expired before `before`.
pub fn prune_tickets(before: UnixTime) -> Statement {
    Statement::new(
        "DELETE FROM idp_consent_tickets WHERE expires_at < $1",
        [before.into()],
    )
}

/// Takes `lock` (the dialect's family lock) for `family`.
pub fn lock_family(lock: &'static str, family: &str) -> Statement {
    Statement::new(lock, [family.into()])
}

/// A list stored as JSON text.
fn json(list: &[String]) -> serde_json::Result<Value> {
    Ok(Value::Text(Some(serde_json::to_string(list)?)))
}
