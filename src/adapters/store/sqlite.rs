//! SQLite storage (the embedded default): one file, WAL mode, migrations embedded in the binary
//! and run at start.

mod clients;
mod issuer;

use std::{
    str::FromStr,
    time::{Duration, UNIX_EPOCH},
};

use anyhow::Context;
use async_trait::async_trait;
use sqlx::{
    QueryBuilder, Sqlite, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::domain::audit::{AuditError, AuditEvent, AuditLog};

/// A SQLite database holding searchgate's state.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url` and brings its schema up to date.
    ///
    /// # Errors
    /// When the URL is malformed, the file cannot be opened or created, or a migration fails.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("`{url}` is not a SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives process crashes; only an OS crash can lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the database `{url}`"))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .with_context(|| format!("cannot migrate the database `{url}`"))?;
        Ok(Self { pool })
    }

    /// The connection pool, for tests and tools that read the tables directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn append(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut builder: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO audit_events (occurred_at_ms, request_id, method, tool, outcome, \
             http_status, error_code, latency_us, subject, client_id, issuer, token_hash_prefix, \
             source_addr, provider, cache_hit, upstream_attempts, upstream_request_id) ",
        );
        builder.push_values(events, |mut row, e| {
            row.push_bind(millis_since_epoch(e))
                .push_bind(&e.request_id)
                .push_bind(&e.method)
                .push_bind(&e.tool)
                .push_bind(e.outcome.as_str())
                .push_bind(i64::from(e.http_status))
                .push_bind(&e.error_code)
                .push_bind(i64::try_from(e.latency.as_micros()).unwrap_or(i64::MAX))
                .push_bind(&e.subject)
                .push_bind(&e.client_id)
                .push_bind(&e.issuer)
                .push_bind(&e.token_hash_prefix)
                .push_bind(&e.source_addr)
                .push_bind(&e.provider)
                .push_bind(e.cache_hit)
                .push_bind(e.upstream_attempts.map(i64::from))
                .push_bind(&e.upstream_request_id);
        });
        // One statement is one implicit transaction: all rows or none.
        builder
            .build()
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| AuditError::Unavailable(e.to_string()))
    }

    async fn check(&self) -> Result<(), AuditError> {
        // BEGIN IMMEDIATE takes the write lock, so it fails on a read-only or locked-out file;
        // dropping the transaction rolls it back.
        let transaction = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| AuditError::Unavailable(e.to_string()))?;
        drop(transaction);
        Ok(())
    }
}

fn millis_since_epoch(event: &AuditEvent) -> i64 {
    event
        .occurred_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
