//! Turning rows into domain records, once for both databases: the tables have the same columns
//! and the same value types (integers are 64-bit, JSON lists are text) in SQLite and PostgreSQL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::domain::{
    audit::{AuditEvent, HourlyCount, Outcome, StoredEvent},
    clients::ClientRow,
    issuer::{ClientRecord, CodeRecord, KeyRecord, RefreshRecord, Stored},
};

/// A row of either database, with the value types searchgate's tables use.
pub(super) trait StoreRow<'r>: Row {
    /// A column's value; a type mismatch is an error, never a panic.
    fn value<T>(&'r self, column: &'static str) -> Result<T, sqlx::Error>
    where
        T: Decode<'r, Self::Database> + Type<Self::Database>;
}

impl<'r, R> StoreRow<'r> for R
where
    R: Row,
    &'static str: ColumnIndex<R>,
{
    fn value<T>(&'r self, column: &'static str) -> Result<T, sqlx::Error>
    where
        T: Decode<'r, Self::Database> + Type<Self::Database>,
    {
        self.try_get(column)
    }
}

/// An `audit_events` row.
pub(super) fn stored_event<'r, DB>(
    row: &'r impl StoreRow<'r, Database = DB>,
) -> Result<StoredEvent, sqlx::Error>
where
    DB: sqlx::Database,
    i64: Decode<'r, DB> + Type<DB>,
    String: Decode<'r, DB> + Type<DB>,
    bool: Decode<'r, DB> + Type<DB>,
{
    let ms = u64::try_from(row.value::<i64>("occurred_at_ms")?).unwrap_or(0);
    let latency = u64::try_from(row.value::<i64>("latency_us")?).unwrap_or(0);
    let outcome: String = row.value("outcome")?;
    Ok(StoredEvent {
        id: row.value("id")?,
        event: AuditEvent {
            occurred_at: UNIX_EPOCH + Duration::from_millis(ms),
            request_id: row.value("request_id")?,
            method: row.value("method")?,
            tool: row.value("tool")?,
            outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
            http_status: u16::try_from(row.value::<i64>("http_status")?).unwrap_or(0),
            error_code: row.value("error_code")?,
            latency: Duration::from_micros(latency),
            subject: row.value("subject")?,
            client_id: row.value("client_id")?,
            issuer: row.value("issuer")?,
            token_hash_prefix: row.value("token_hash_prefix")?,
            source_addr: row.value("source_addr")?,
            provider: row.value("provider")?,
            cache_hit: row.value("cache_hit")?,
            upstream_attempts: row
                .value::<Option<i64>>("upstream_attempts")?
                .and_then(|a| u32::try_from(a).ok()),
            upstream_request_id: row.value("upstream_request_id")?,
            query_summary: row.value("query_summary")?,
        },
    })
}

/// A `clients` row.
pub(super) fn client_row<'r, DB>(
    row: &'r impl StoreRow<'r, Database = DB>,
) -> anyhow::Result<ClientRow>
where
    DB: sqlx::Database,
    i64: Decode<'r, DB> + Type<DB>,
    String: Decode<'r, DB> + Type<DB>,
{
    Ok(ClientRow {
        client_id: row.value("client_id")?,
        client_name: row.value("client_name")?,
        redirect_uris: serde_json::from_str(&row.value::<String>("redirect_uris")?)?,
        grant_types: serde_json::from_str(&row.value::<String>("grant_types")?)?,
        token_endpoint_auth_method: row.value("token_endpoint_auth_method")?,
        source: row.value("source")?,
        created_at: row.value("created_at")?,
        last_seen_at: row.value("last_seen_at")?,
        denied_at: row.value("denied_at")?,
    })
}

/// An `idp_keys` row.
pub(super) fn key_record<'r, DB>(
    row: &'r impl StoreRow<'r, Database = DB>,
) -> Result<KeyRecord, sqlx::Error>
where
    DB: sqlx::Database,
    i64: Decode<'r, DB> + Type<DB>,
    String: Decode<'r, DB> + Type<DB>,
{
    Ok(KeyRecord {
        kid: row.value("kid")?,
        private_pem: row.value("private_pem")?,
        created_at: row.value("created_at")?,
        rotated_at: row.value("rotated_at")?,
        tokens_expire_at: row.value("tokens_expire_at")?,
        retired_at: row.value("retired_at")?,
    })
}

/// An `idp_clients` row.
pub(super) fn client_record<'r, DB>(
    row: &'r impl StoreRow<'r, Database = DB>,
) -> anyhow::Result<ClientRecord>
where
    DB: sqlx::Database,
    i64: Decode<'r, DB> + Type<DB>,
    String: Decode<'r, DB> + Type<DB>,
{
    Ok(ClientRecord {
        client_id: row.value("client_id")?,
        client_name: row.value("client_name")?,
        redirect_uris: serde_json::from_str(&row.value::<String>("redirect_uris")?)?,
        grant_types: serde_json::from_str(&row.value::<String>("grant_types")?)?,
        token_endpoint_auth_method: row.value("token_endpoint_auth_method")?,
        secret_hash: row.value("secret_hash")?,
        created_at: row.value("created_at")?,
    })
}

/// An `idp_codes` row with its `spent` flag.
pub(super) fn code_record<'r, DB>(
    row: &'r impl StoreRow<'r, Database = DB>,
) -> Result<Stored<CodeRecord>, sqlx::Error>
where
    DB: sqlx::Database,
    i64: Decode<'r, DB> + Type<DB>,
    String: Decode<'r, DB> + Type<DB>,
    bool: Decode<'r, DB> + Type<DB>,
{
    Ok(Stored {
        spent: row.value("spent")?,
        record: CodeRecord {
            code_hash: row.value("code_hash")?,
            client_id: row.value("client_id")?,
            redirect_uri: row.value("redirect_uri")?,
            code_challenge: row.value("code_challenge")?,
            scope: row.value("scope")?,
            resource: row.value("resource")?,
            subject: row.value("subject")?,
            expires_at: row.value("expires_at")?,
        },
    })
}

/// An `idp_refresh_tokens` row with its `spent` flag.
pub(super) fn refresh_record<'r, DB>(
    row: &'r impl StoreRow<'r, Database = DB>,
) -> Result<Stored<RefreshRecord>, sqlx::Error>
where
    DB: sqlx::Database,
    i64: Decode<'r, DB> + Type<DB>,
    String: Decode<'r, DB> + Type<DB>,
    bool: Decode<'r, DB> + Type<DB>,
{
    Ok(Stored {
        spent: row.value("spent")?,
        record: RefreshRecord {
            token_hash: row.value("token_hash")?,
            family: row.value("family")?,
            client_id: row.value("client_id")?,
            subject: row.value("subject")?,
            scope: row.value("scope")?,
            resource: row.value("resource")?,
            expires_at: row.value("expires_at")?,
        },
    })
}

/// The next keyset cursor of a page fetched with `limit + 1` rows, trimming the extra row.
pub(super) fn split_page<T, C>(
    rows: &mut Vec<T>,
    limit: u32,
    cursor: impl Fn(&T) -> C,
) -> Option<C> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    more.then(|| rows.last().map(cursor)).flatten()
}

/// Milliseconds since the Unix epoch (0 before it, saturating far after).
pub(super) fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A row of `sql::HOURLY_COUNTS`.
pub(super) fn hourly_count<'r, DB>(
    row: &'r impl StoreRow<'r, Database = DB>,
) -> Result<HourlyCount, sqlx::Error>
where
    DB: sqlx::Database,
    i64: Decode<'r, DB> + Type<DB>,
    String: Decode<'r, DB> + Type<DB>,
{
    let outcome: String = row.value("outcome")?;
    Ok(HourlyCount {
        hour: UNIX_EPOCH
            + Duration::from_secs(u64::try_from(row.value::<i64>("hour")?).unwrap_or(0)),
        tool: row.value("tool")?,
        outcome,
        count: u64::try_from(row.value::<i64>("n")?).unwrap_or(0),
    })
}

/// Seconds since the Unix epoch, from this process's clock (not the database's), so both
/// databases and every replica stamp rows the same way.
pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
