//! Storage adapters for the domain's store ports: SQLite (one file, the default) and PostgreSQL
//! (shared by several replicas), chosen by the database URL's scheme.

mod audit;
mod budget;
mod clients;
mod dialect;
mod issuer;
mod postgres;
mod redact;
mod rows;
mod sql;
mod sqlite;
mod statement;

use std::{sync::Arc, time::Duration};

use sqlx::{Pool, Transaction};

pub use postgres::PostgresStore;
pub use redact::redact_url;
pub use sqlite::SqliteStore;

use self::{
    dialect::{Driver, On},
    statement::Statement,
};
use crate::domain::{
    audit::AuditLog, budget::BudgetStore, clients::ClientStore, issuer::IssuerStore,
};

/// How many connections a pool keeps and how long it waits for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_connections: u32,
    /// Connections kept open even when idle.
    pub min_connections: u32,
    /// How long a query waits for a free connection (and start-up for the first one).
    pub acquire_timeout: Duration,
    /// Idle connections above `min_connections` are closed after this long.
    pub idle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 4,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

impl PoolSettings {
    /// The pool options these settings describe, for either database.
    fn options<DB: sqlx::Database>(&self) -> sqlx::pool::PoolOptions<DB> {
        sqlx::pool::PoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
    }
}

/// Why a database could not be opened; every message names the URL without its password.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The scheme is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error(
        "`{0}` is not a database URL searchgate supports: use sqlite://PATH or postgres://USER@HOST/DB"
    )]
    UnsupportedScheme(String),
    /// The URL does not parse.
    #[error("`{url}` is not a valid database URL: {reason}")]
    BadUrl {
        /// The URL, password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error("cannot reach the database `{url}`: {reason}")]
    Unreachable {
        /// The URL, password removed.
        url: String,
        /// The driver's reason.
        reason: String,
    },
    /// A newer searchgate migrated the database.
    #[error(
        "the database `{url}` has schema version {version}, which this searchgate binary does not \
         know: a newer searchgate has migrated it. Run that version (or a newer one) here too, or \
         point database.url at another database"
    )]
    SchemaTooNew {
        /// The URL, password removed.
        url: String,
        /// The unknown migration version found in the database.
        version: i64,
    },
    /// A migration failed.
    #[error("cannot bring the database `{url}` up to date: {reason}")]
    Migration {
        /// The URL, password removed.
        url: String,
        /// The driver's reason.
        reason: String,
    },
}

impl OpenError {
    /// Sorts a migration failure: an applied migration the binary does not know means a newer
    /// binary migrated the database.
    fn migration(url: &str, error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::VersionMissing(version) => Self::SchemaTooNew {
                url: redact_url(url),
                version,
            },
            other => Self::Migration {
                url: redact_url(url),
                reason: other.to_string(),
            },
        }
    }

    fn unreachable(url: &str, error: &sqlx::Error) -> Self {
        Self::Unreachable {
            url: redact_url(url),
            reason: error.to_string(),
        }
    }
}

/// searchgate's state in one SQL database: every store port, written once for both
/// databases; what differs between them is their [`Dialect`](dialect::Dialect).
#[derive(Debug, Clone)]
pub struct SqlStore<D: sqlx::Database> {
    pool: Pool<D>,
}

impl<D: Driver> SqlStore<D> {
    /// Opens the database at `url` (creating a missing SQLite file) and brings its schema up to
    /// date; replicas starting together take turns (the migrator locks the database).
    ///
    /// # Errors
    /// When the URL is malformed, the database cannot be reached within the acquire timeout, a
    /// migration fails, or a newer searchgate migrated the database.
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Self, OpenError> {
        let options = D::connect_options(url).map_err(|e| OpenError::BadUrl {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
        let pool = settings
            .options::<D>()
            .connect_with(options)
            .await
            .map_err(|e| OpenError::unreachable(url, &e))?;
        D::MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| OpenError::migration(url, e))?;
        Ok(Self { pool })
    }

    /// The connection pool, for tests and tools that read the tables directly.
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }

    /// A transaction that may write, begun the dialect's way (SQLite takes the write lock at
    /// once, so concurrent writers queue rather than fail with "database is locked" halfway).
    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, D>> {
        self.pool.begin_with(D::BEGIN_WRITE).await
    }

    /// Begins a write and rolls it back: fails when writes are impossible now (a read-only or
    /// locked-out file, a standby server, a role that may not write).
    async fn check_writable(&self) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        if let Some(probe) = D::WRITE_PROBE {
            D::execute(On::Tx(&mut tx), Statement::new(probe, [])).await?;
        }
        tx.rollback().await
    }
}

/// The store ports on one database.
#[derive(Clone)]
pub struct Database {
    /// The audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// The registered-client cache.
    pub clients: Arc<dyn ClientStore>,
    /// The embedded authorization server's state.
    pub issuer: Arc<dyn IssuerStore>,
    /// The daily budgets' counters.
    pub budgets: Arc<dyn BudgetStore>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

impl Database {
    /// Opens the database `url` names (`sqlite:` or `postgres:`/`postgresql:`) and brings its
    /// schema up to date.
    ///
    /// # Errors
    /// When the scheme is unsupported, the URL is malformed, the database cannot be reached, or
    /// its schema is newer than this binary.
    pub async fn connect(url: &str, pool: &PoolSettings) -> Result<Self, OpenError> {
        match scheme(url) {
            Some("sqlite") => Ok(Self::of(Arc::new(SqliteStore::connect(url, pool).await?))),
            Some("postgres" | "postgresql") => {
                Ok(Self::of(Arc::new(PostgresStore::connect(url, pool).await?)))
            }
            _ => Err(OpenError::UnsupportedScheme(redact_url(url))),
        }
    }

    fn of<D: Driver>(store: Arc<SqlStore<D>>) -> Self {
        Self {
            audit: store.clone(),
            clients: store.clone(),
            budgets: store.clone(),
            issuer: store,
        }
    }
}

/// The scheme of a database URL, lower-cased.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    ["sqlite", "postgres", "postgresql"]
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_database() {
        assert_eq!(scheme("sqlite://a.db"), Some("sqlite"));
        assert_eq!(scheme("sqlite::memory:"), Some("sqlite"));
        assert_eq!(scheme("POSTGRES://h/db"), Some("postgres"));
        assert_eq!(scheme("postgresql://h/db"), Some("postgresql"));
        assert_eq!(scheme("mysql://h/db"), None);
        assert_eq!(scheme("searchgate.db"), None);
    }
}
