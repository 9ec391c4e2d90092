//! Turning rows into domain records, once for both databases: the tables have the same columns
//! and the same value types (integers are 64-bit, JSON lists are text) in SQLite and PostgreSQL.
//! A column of the wrong type is an error naming the column, never a panic.

use std::time::Duration;

use anyhow::Context;

use super::dialect::Driver;
use crate::domain::{
    audit::{AuditEvent, HourlyCount, Outcome, StoredEvent, UsageRow},
    clients::{ClientRow, ClientSource},
    issuer::{ClientRecord, CodeRecord, KeyRecord, RefreshRecord, Stored},
    time::Timestamp,
};

/// The columns of one row, read by name.
pub struct Columns<'r, D: Driver>(pub &'r D::Row);

impl<D: Driver> Columns<'_, D> {
    fn int(&self, column: &str) -> sqlx::Result<i64> {
        D::int(self.0, column)
    }

    fn opt_int(&self, column: &str) -> sqlx::Result<Option<i64>> {
        D::opt_int(self.0, column)
    }

    fn text(&self, column: &str) -> sqlx::Result<String> {
        D::text(self.0, column)
    }

    fn opt_text(&self, column: &str) -> sqlx::Result<Option<String>> {
        D::opt_text(self.0, column)
    }

    fn flag(&self, column: &str) -> sqlx::Result<bool> {
        D::flag(self.0, column)
    }

    fn opt_flag(&self, column: &str) -> sqlx::Result<Option<bool>> {
        D::opt_flag(self.0, column)
    }

    fn opt_real(&self, column: &str) -> sqlx::Result<Option<f64>> {
        D::opt_real(self.0, column)
    }

    /// A JSON list stored as text.
    fn list(&self, column: &str) -> anyhow::Result<Vec<String>> {
        serde_json::from_str(&self.text(column)?)
            .with_context(|| format!("column `{column}` is not a JSON list of strings"))
    }

    /// A count or size that cannot be negative (0 when a row says otherwise).
    fn unsigned(&self, column: &str) -> sqlx::Result<u64> {
        Ok(u64::try_from(self.int(column)?).unwrap_or(0))
    }
}

/// An `audit_events` row.
///
/// # Errors
/// When a column is missing or of another type.
pub fn stored_event<D: Driver>(row: &D::Row) -> anyhow::Result<StoredEvent> {
    let row = Columns::<D>(row);
    let outcome = row.text("outcome")?;
    Ok(StoredEvent {
        id: row.int("id")?,
        event: AuditEvent {
            occurred_at: Timestamp::from_unix_millis(row.int("occurred_at_ms")?),
            request_id: row.text("request_id")?,
            method: row.opt_text("method")?,
            tool: row.opt_text("tool")?,
            // Written from an `Outcome`; a row edited by hand reads as the failure it hides.
            outcome: outcome.parse().unwrap_or(Outcome::Failed),
            http_status: u16::try_from(row.int("http_status")?).unwrap_or(0),
            error_code: row.opt_text("error_code")?,
            latency: Duration::from_micros(row.unsigned("latency_us")?),
            subject: row.opt_text("subject")?,
            client_id: row.opt_text("client_id")?,
            issuer: row.opt_text("issuer")?,
            token_hash_prefix: row.opt_text("token_hash_prefix")?,
            source_addr: row.opt_text("source_addr")?,
            provider: row.opt_text("provider")?,
            cache_hit: row.opt_flag("cache_hit")?,
            upstream_attempts: row
                .opt_int("upstream_attempts")?
                .and_then(|a| u32::try_from(a).ok()),
            upstream_request_id: row.opt_text("upstream_request_id")?,
            fallback_from: row.opt_text("fallback_from")?,
            credits: row.opt_real("credits")?,
            cost_usd: row.opt_real("cost_usd")?,
            trace_id: row.opt_text("trace_id")?,
            peer_addr: row.opt_text("peer_addr")?,
            query_summary: row.opt_text("query_summary")?,
        },
    })
}

/// A row of `sql::hourly_counts`.
///
/// # Errors
/// When a column is missing or of another type.
pub fn hourly_count<D: Driver>(row: &D::Row) -> anyhow::Result<HourlyCount> {
    let row = Columns::<D>(row);
    Ok(HourlyCount {
        hour: Timestamp::from_unix_seconds(row.int("hour")?),
        tool: row.opt_text("tool")?,
        outcome: row.text("outcome")?,
        count: row.unsigned("n")?,
    })
}

/// A row of `sql::usage`.
///
/// # Errors
/// When a column is missing or of another type.
pub fn usage_row<D: Driver>(row: &D::Row) -> anyhow::Result<UsageRow> {
    let row = Columns::<D>(row);
    Ok(UsageRow {
        group: row.opt_text("grp")?,
        calls: row.unsigned("calls")?,
        errors: row.unsigned("errors")?,
        credits: row.opt_real("credits")?.unwrap_or(0.0),
        cost_usd: row.opt_real("cost_usd")?.unwrap_or(0.0),
    })
}

/// A `clients` row.
///
/// # Errors
/// When a column is missing or of another type, or the source is not one searchgate writes.
pub fn client_row<D: Driver>(row: &D::Row) -> anyhow::Result<ClientRow> {
    let row = Columns::<D>(row);
    Ok(ClientRow {
        client_id: row.text("client_id")?,
        client_name: row.opt_text("client_name")?,
        redirect_uris: row.list("redirect_uris")?,
        grant_types: row.list("grant_types")?,
        token_endpoint_auth_method: row.text("token_endpoint_auth_method")?,
        source: row.text("source")?.parse::<ClientSource>()?,
        created_at: row.int("created_at")?,
        last_seen_at: row.opt_int("last_seen_at")?,
        denied_at: row.opt_int("denied_at")?,
    })
}

/// A client id (of `sql::denied_clients`).
///
/// # Errors
/// When the column is missing or of another type.
pub fn client_id<D: Driver>(row: &D::Row) -> anyhow::Result<String> {
    Ok(Columns::<D>(row).text("client_id")?)
}

/// The count `n` (of `sql::count_signing_keys`).
///
/// # Errors
/// When the column is missing or of another type.
pub fn count<D: Driver>(row: &D::Row) -> anyhow::Result<u64> {
    Ok(Columns::<D>(row).unsigned("n")?)
}

/// An `idp_keys` row.
///
/// # Errors
/// When a column is missing or of another type.
pub fn key_record<D: Driver>(row: &D::Row) -> anyhow::Result<KeyRecord> {
    let row = Columns::<D>(row);
    Ok(KeyRecord {
        kid: row.text("kid")?,
        private_pem: row.text("private_pem")?,
        created_at: row.int("created_at")?,
        rotated_at: row.opt_int("rotated_at")?,
        tokens_expire_at: row.int("tokens_expire_at")?,
        retired_at: row.opt_int("retired_at")?,
    })
}

/// An `idp_clients` row.
///
/// # Errors
/// When a column is missing or of another type.
pub fn client_record<D: Driver>(row: &D::Row) -> anyhow::Result<ClientRecord> {
    let row = Columns::<D>(row);
    Ok(ClientRecord {
        client_id: row.text("client_id")?,
        client_name: row.opt_text("client_name")?,
        redirect_uris: row.list("redirect_uris")?,
        grant_types: row.list("grant_types")?,
        token_endpoint_auth_method: row.text("token_endpoint_auth_method")?,
        secret_hash: row.opt_text("secret_hash")?,
        created_at: row.int("created_at")?,
    })
}

/// An `idp_codes` row with its `spent` flag.
///
/// # Errors
/// When a column is missing or of another type.
pub fn code_record<D: Driver>(row: &D::Row) -> anyhow::Result<Stored<CodeRecord>> {
    let row = Columns::<D>(row);
    Ok(Stored {
        spent: row.flag("spent")?,
        record: CodeRecord {
            code_hash: row.text("code_hash")?,
            client_id: row.text("client_id")?,
            redirect_uri: row.text("redirect_uri")?,
            code_challenge: row.text("code_challenge")?,
            scope: row.text("scope")?,
            resource: row.text("resource")?,
            subject: row.text("subject")?,
            expires_at: row.int("expires_at")?,
        },
    })
}

/// An `idp_refresh_tokens` row with its `spent` flag.
///
/// # Errors
/// When a column is missing or of another type.
pub fn refresh_record<D: Driver>(row: &D::Row) -> anyhow::Result<Stored<RefreshRecord>> {
    let row = Columns::<D>(row);
    Ok(Stored {
        spent: row.flag("spent")?,
        record: RefreshRecord {
            token_hash: row.text("token_hash")?,
            family: row.text("family")?,
            client_id: row.text("client_id")?,
            subject: row.text("subject")?,
            scope: row.text("scope")?,
            resource: row.text("resource")?,
            expires_at: row.int("expires_at")?,
        },
    })
}

/// The next keyset cursor of a page fetched with `limit + 1` rows, trimming the extra row.
pub fn split_page<T, C>(rows: &mut Vec<T>, limit: u32, cursor: impl Fn(&T) -> C) -> Option<C> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    more.then(|| rows.last().map(cursor)).flatten()
}
