//! PostgreSQL storage, for several replicas sharing one database: a connection pool, migrations
//! embedded in the binary and run at start (replicas starting together take turns on an
//! advisory lock).

use std::str::FromStr;

use sqlx::{PgPool, postgres::PgConnectOptions};

use super::{
    OpenError, PoolSettings,
    impls::{impl_audit_log, impl_client_store, impl_issuer_store},
    redact,
};

impl_audit_log!(PostgresStore, sqlx::Postgres);
impl_client_store!(PostgresStore, sqlx::Postgres);
impl_issuer_store!(PostgresStore, sqlx::Postgres);

/// A PostgreSQL database holding searchgate's state.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` and brings its schema up to date.
    ///
    /// # Errors
    /// When the URL is malformed, the server cannot be reached within the acquire timeout, a
    /// migration fails, or a newer searchgate migrated the database.
    pub async fn connect(url: &str, pool: &PoolSettings) -> Result<Self, OpenError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| OpenError::BadUrl {
                url: redact(url),
                reason: e.to_string(),
            })?
            .application_name("searchgate");
        let pool = pool
            .options::<sqlx::Postgres>()
            .connect_with(options)
            .await
            .map_err(|e| OpenError::unreachable(url, &e))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| OpenError::migration(url, e))?;
        Ok(Self { pool })
    }

    /// The connection pool, for tests and tools that read the tables directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    const SELECT_KEYS: &str = "SELECT kid, private_pem, created_at, rotated_at, \
        tokens_expire_at, retired_at FROM idp_keys ORDER BY created_at, seq";

    /// Held until the transaction ends; readers (`keys()`) are not blocked.
    const LOCK_KEYS: &str = "LOCK TABLE idp_keys IN SHARE ROW EXCLUSIVE MODE";

    /// One refresh-token family at a time (held until the transaction ends): under READ
    /// COMMITTED a revocation would otherwise miss a successor that commits while it runs.
    const LOCK_FAMILY: &str =
        "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS locked";

    /// A plain transaction: the conditional updates of the store ports lock the rows they
    /// change, which is all the ordering they need.
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await
    }

    /// Fails when the server is a read-only standby, the session is read-only, or the role
    /// may not write the audit trail: an insert of no rows is still checked for all three.
    async fn check_writable(&self) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO audit_events (occurred_at_ms, request_id, outcome, http_status, \
             latency_us) SELECT 0, '', '', 0, 0 WHERE FALSE",
        )
        .execute(&mut *tx)
        .await?;
        tx.rollback().await
    }
}
