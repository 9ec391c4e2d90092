//! SQLite (the embedded default): one file, WAL mode, migrations embedded in the binary and run
//! at start. Writers take turns on the whole file, so its locks are simple.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Sqlite,
    error::DatabaseError,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteQueryResult, SqliteSynchronous},
};

use super::{SqlStore, dialect::Dialect};

/// searchgate's state in a SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;

impl Dialect for Sqlite {
    const MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

    /// Keys made in the same second keep their insertion order.
    const KEY_ORDER: &'static str = "created_at, rowid";

    /// `jsonb_each` hands each row to `->>` already parsed (`json_each` would hand it over as
    /// text, parsed again by every `->>`); `->>` gives JSON numbers as integers, `true`/`false`
    /// as 1/0, strings as text.
    const INSERT_EVENTS: &'static str = "INSERT INTO audit_events (occurred_at_ms, request_id, method, tool, outcome, \
        http_status, error_code, latency_us, subject, client_id, issuer, token_hash_prefix, \
        source_addr, provider, cache_hit, upstream_attempts, upstream_request_id, query_summary, \
        fallback_from, credits, cost_usd, trace_id, peer_addr) \
        SELECT \
        value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
        value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, \
        value ->> 12, value ->> 13, value ->> 14, value ->> 15, value ->> 16, value ->> 17, \
        value ->> 18, value ->> 19, value ->> 20, value ->> 21, value ->> 22 \
        FROM jsonb_each($1) ORDER BY key";

    /// The planner, without statistics, may prefer a walk in id order through every older row
    /// (it does for `MIN(id)`); named, the index is used whatever it guesses, and a missing
    /// one is an error rather than a slow walk.
    const BY_OCCURRED_AT: &'static str = "INDEXED BY audit_events_occurred_at";

    /// `BEGIN IMMEDIATE` already makes writers take turns.
    const LOCK_KEYS: &'static str = "SELECT 1";

    /// The same: writers take turns on the whole file (the family is bound, and unused).
    const LOCK_FAMILY: &'static str = "SELECT $1";

    /// Numbered placeholders are looked up by name on every bind, in linear time.
    const ANONYMOUS_PLACEHOLDERS: bool = true;

    /// Holds the write lock from the start, so concurrent writers queue rather than fail with
    /// "database is locked" halfway.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";

    /// Taking the write lock is the test: it fails on a read-only or locked-out file.
    const WRITE_PROBE: Option<&'static str> = None;

    fn connect_options(url: &str) -> sqlx::Result<SqliteConnectOptions> {
        Ok(SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives process crashes; only an OS crash can lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5)))
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// SQLite's b-trees hold keys of any length.
    const CLIENT_CONFLICT: &'static str = "(client_id)";

    /// `MIN`/`MAX` of several arguments are SQLite's scalar functions; every `SET` expression
    /// reads the row as it was, so `granted` and `used` agree.
    const TAKE_BUDGET: &'static str = "INSERT INTO budget_counters (scope, day, used, granted) \
        VALUES ($1, $2, MIN($3, MAX($4, 0.0)), MIN($3, MAX($4, 0.0))) \
        ON CONFLICT (scope, day) DO UPDATE SET \
        granted = MIN($3, MAX($4 - budget_counters.used, 0.0)), \
        used = budget_counters.used + MIN($3, MAX($4 - budget_counters.used, 0.0)) \
        RETURNING granted, used";

    /// Primary result codes SQLITE_TOOBIG (18), SQLITE_CONSTRAINT (19), SQLITE_MISMATCH (20)
    /// and SQLITE_RANGE (25); `code()` is the extended code, whose low byte is the primary.
    fn refuses_rows(error: &dyn DatabaseError) -> bool {
        error
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 18 | 19 | 20 | 25))
    }
}
