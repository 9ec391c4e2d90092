//! PostgreSQL, for several replicas sharing one database: migrations embedded in the binary and
//! run at start (replicas starting together take turns on the migrator's advisory lock), and
//! locks that keep concurrent replicas' key and refresh-token changes in order.

use std::str::FromStr;

use sqlx::{
    Postgres,
    error::DatabaseError,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgQueryResult},
};

use super::{SqlStore, dialect::Dialect, sql};

/// searchgate's state in a PostgreSQL database.
pub type PostgresStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    const MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

    /// PostgreSQL has no `rowid`: an identity column records the insertion order.
    const KEY_ORDER: &'static str = "created_at, seq";

    /// `jsonb`, parsed once: each `->>` on a `json` value parses its text again (measured: 20 µs
    /// per event against 7).
    const INSERT_EVENTS: &'static str = "INSERT INTO audit_events (occurred_at_ms, request_id, method, tool, outcome, \
        http_status, error_code, latency_us, subject, client_id, issuer, token_hash_prefix, \
        source_addr, provider, cache_hit, upstream_attempts, upstream_request_id, query_summary, \
        fallback_from, credits, cost_usd, trace_id, peer_addr) \
        SELECT \
        (e ->> 0)::BIGINT, e ->> 1, e ->> 2, e ->> 3, e ->> 4, (e ->> 5)::BIGINT, e ->> 6, \
        (e ->> 7)::BIGINT, e ->> 8, e ->> 9, e ->> 10, e ->> 11, e ->> 12, e ->> 13, \
        (e ->> 14)::BOOLEAN, (e ->> 15)::BIGINT, e ->> 16, e ->> 17, e ->> 18, \
        (e ->> 19)::DOUBLE PRECISION, (e ->> 20)::DOUBLE PRECISION, e ->> 21, e ->> 22 \
        FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS rows (e, n) ORDER BY n";

    /// Its planner picks the index on `occurred_at_ms` for a window by itself.
    const BY_OCCURRED_AT: &'static str = "";

    /// Held until the transaction ends; readers (`keys()`) are not blocked.
    const LOCK_KEYS: &'static str = "LOCK TABLE idp_keys IN SHARE ROW EXCLUSIVE MODE";

    /// One refresh-token family at a time (held until the transaction ends): under READ
    /// COMMITTED a revocation would otherwise miss a successor that commits while it runs.
    const LOCK_FAMILY: &'static str =
        "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS locked";

    /// PostgreSQL knows only `$1`, `$2`, ….
    const ANONYMOUS_PLACEHOLDERS: bool = false;

    /// A plain transaction: the conditional updates of the store ports lock the rows they
    /// change, which is all the ordering they need.
    const BEGIN_WRITE: &'static str = "BEGIN";

    /// A read-only standby or session, or a role that may not write the audit trail, still
    /// fails an insert of no rows.
    const WRITE_PROBE: Option<&'static str> = Some(sql::PROBE_AUDIT_WRITE);

    fn connect_options(url: &str) -> sqlx::Result<PgConnectOptions> {
        Ok(PgConnectOptions::from_str(url)?.application_name("searchgate"))
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    /// Client ids can be longer than a b-tree row holds: they are unique by their SHA-256
    /// (migration 20261203164100).
    const CLIENT_CONFLICT: &'static str = "(searchgate_text_key(client_id))";

    /// Every `SET` expression reads the row as it was, so `granted` and `used` agree; the row
    /// lock of the conflicting insert serializes replicas.
    const TAKE_BUDGET: &'static str = "INSERT INTO budget_counters (scope, day, used, granted) \
        VALUES ($1, $2, LEAST($3, GREATEST($4, 0.0)), LEAST($3, GREATEST($4, 0.0))) \
        ON CONFLICT (scope, day) DO UPDATE SET \
        granted = LEAST($3, GREATEST($4 - budget_counters.used, 0.0)), \
        used = budget_counters.used + LEAST($3, GREATEST($4 - budget_counters.used, 0.0)) \
        RETURNING granted, used";

    /// SQLSTATE classes 22 (data exception: a value too long, bad encoding), 23 (integrity
    /// constraint) and 54 (program limit: "index row size exceeds btree maximum").
    fn refuses_rows(error: &dyn DatabaseError) -> bool {
        error
            .code()
            .is_some_and(|code| ["22", "23", "54"].iter().any(|c| code.starts_with(c)))
    }
}
