//! SQLite storage (the embedded default): one file, WAL mode, migrations embedded in the binary
//! and run at start.

mod audit;
mod clients;
mod issuer;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

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
