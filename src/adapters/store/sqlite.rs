//! SQLite storage (the embedded default): one file, WAL mode, migrations embedded in the binary
//! and run at start.

use std::{str::FromStr, time::Duration};

use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

use super::{
    OpenError, PoolSettings,
    impls::{impl_audit_log, impl_client_store, impl_issuer_store},
    redact,
};

impl_audit_log!(SqliteStore, sqlx::Sqlite);
impl_client_store!(SqliteStore, sqlx::Sqlite);
impl_issuer_store!(SqliteStore, sqlx::Sqlite);

/// A SQLite database holding searchgate's state.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url` and brings its schema up to date.
    ///
    /// # Errors
    /// When the URL is malformed, the file cannot be opened or created, a migration fails, or
    /// a newer searchgate migrated the file.
    pub async fn connect(url: &str, pool: &PoolSettings) -> Result<Self, OpenError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| OpenError::BadUrl {
                url: redact(url),
                reason: e.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives process crashes; only an OS crash can lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = pool
            .options::<sqlx::Sqlite>()
            .connect_with(options)
            .await
            .map_err(|e| OpenError::unreachable(url, &e))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| OpenError::migration(url, e))?;
        Ok(Self { pool })
    }

    /// The connection pool, for tests and tools that read the tables directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    const SELECT_KEYS: &str = "SELECT kid, private_pem, created_at, rotated_at, \
        tokens_expire_at, retired_at FROM idp_keys ORDER BY created_at, rowid";

    /// `BEGIN IMMEDIATE` already makes writers take turns.
    const LOCK_KEYS: &str = "SELECT 1";

    /// The same: writers take turns on the whole file (the family is bound, and unused).
    const LOCK_FAMILY: &str = "SELECT $1";

    /// A transaction holding the write lock from its start, so concurrent writers queue
    /// rather than fail with "database is locked" halfway.
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Takes the write lock and lets it go: fails on a read-only or locked-out file.
    async fn check_writable(&self) -> sqlx::Result<()> {
        drop(self.begin_write().await?);
        Ok(())
    }
}
