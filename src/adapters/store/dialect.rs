//! What the store code requires of a database, checked by the compiler: a [`Dialect`] says
//! what differs (locks, how a write transaction begins, key order), and [`Driver`] runs a
//! [`Statement`] and reads rows on any database whose driver handles searchgate's three value
//! types. The bounds sqlx needs for that are written once, on the one blanket `impl Driver`;
//! the store ports are then written once, for `SqlStore<D: Dialect>`.

use std::future::Future;

use sqlx::{
    ColumnIndex, Connection, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction,
    Type,
    error::DatabaseError,
    migrate::{Migrate, Migrator},
};

use super::statement::{Statement, Value};

/// One database's differences. Implemented by `sqlx::Sqlite` and `sqlx::Postgres`.
pub trait Dialect: Database<Connection: Migrate> {
    /// Its migrations, embedded in the binary.
    const MIGRATOR: Migrator;
    /// The `ORDER BY` that lists signing keys in the order they were made.
    const KEY_ORDER: &'static str;
    /// Inserts the audit events of the JSON array bound to `$1` (see `sql::insert_events`),
    /// in array order.
    const INSERT_EVENTS: &'static str;
    /// Follows `FROM audit_events` where the smallest or largest id of a time window is
    /// sought: makes the database read it from the window's entries in the index on
    /// `occurred_at_ms`, never by walking ids until one falls in the window.
    const BY_OCCURRED_AT: &'static str;
    /// Run first in a transaction that adds signing keys: makes key makers take turns.
    const LOCK_KEYS: &'static str;
    /// Run first, with the family as `$1`, in a transaction that rotates or revokes refresh
    /// tokens: makes rotations and revocations of one family take turns.
    const LOCK_FAMILY: &'static str;
    /// Whether statements built value by value (a batch insert, a filtered select) should
    /// use anonymous `?` placeholders rather than `$1`, `$2`, …: SQLite finds a numbered
    /// placeholder's name by a linear scan on every bind, which makes binding a 256-event
    /// insert (4,608 values) quadratic, ten times slower than the insert itself.
    const ANONYMOUS_PLACEHOLDERS: bool;
    /// How a transaction that may write begins.
    const BEGIN_WRITE: &'static str;
    /// Run in a write transaction that is then rolled back, to learn whether writes are
    /// possible now; `None` when beginning one already tells.
    const WRITE_PROBE: Option<&'static str>;

    /// The connection options `url` names, with searchgate's settings for this database.
    ///
    /// # Errors
    /// When the URL is malformed.
    fn connect_options(url: &str) -> sqlx::Result<<Self::Connection as Connection>::Options>;

    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// What `INSERT INTO clients … ON CONFLICT` names: the unique index on the client id.
    const CLIENT_CONFLICT: &'static str;
    /// Takes `min($3, $4 - used)` (never negative) from the budget counter `($1, $2)`,
    /// creating it, in one statement (atomic across replicas); returns `granted` and `used`.
    const TAKE_BUDGET: &'static str;

    /// Whether `error` refuses the rows written (a constraint, a value the database cannot
    /// hold), so that writing the same rows again fails again; a lost connection, a timeout or
    /// a read-only server is not.
    fn refuses_rows(error: &dyn DatabaseError) -> bool;
}

/// Where a statement runs: on any pooled connection, or inside a transaction.
pub enum On<'a, D: Database> {
    /// A connection from the pool, for one statement.
    Pool(&'a Pool<D>),
    /// The transaction's connection.
    Tx(&'a mut Transaction<'static, D>),
}

/// Runs statements and reads columns; every [`Dialect`] whose driver binds and decodes
/// searchgate's value types has it.
pub trait Driver: Dialect {
    /// Runs `statement`; how many rows it changed.
    fn execute(
        on: On<'_, Self>,
        statement: Statement,
    ) -> impl Future<Output = sqlx::Result<u64>> + Send;

    /// Every row `statement` returns.
    fn fetch_all(
        on: On<'_, Self>,
        statement: Statement,
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Row>>> + Send;

    /// The first row `statement` returns, if any.
    fn fetch_optional(
        on: On<'_, Self>,
        statement: Statement,
    ) -> impl Future<Output = sqlx::Result<Option<Self::Row>>> + Send;

    /// An integer column.
    fn int(row: &Self::Row, column: &str) -> sqlx::Result<i64>;
    /// A nullable integer column.
    fn opt_int(row: &Self::Row, column: &str) -> sqlx::Result<Option<i64>>;
    /// A text column.
    fn text(row: &Self::Row, column: &str) -> sqlx::Result<String>;
    /// A nullable text column.
    fn opt_text(row: &Self::Row, column: &str) -> sqlx::Result<Option<String>>;
    /// A boolean column (an integer 0 or 1 in SQLite).
    fn flag(row: &Self::Row, column: &str) -> sqlx::Result<bool>;
    /// A nullable boolean column.
    fn opt_flag(row: &Self::Row, column: &str) -> sqlx::Result<Option<bool>>;
    /// A nullable floating-point column.
    fn opt_real(row: &Self::Row, column: &str) -> sqlx::Result<Option<f64>>;
}

impl<D> Driver for D
where
    D: Dialect,
    D::Arguments: IntoArguments<D>,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'r> &'r str: ColumnIndex<D::Row>,
    for<'q> Option<i64>: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> Option<String>: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> Option<bool>: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> Option<f64>: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> i64: Decode<'q, D> + Type<D>,
    for<'q> String: Decode<'q, D> + Type<D>,
    for<'q> bool: Decode<'q, D> + Type<D>,
{
    async fn execute(on: On<'_, Self>, statement: Statement) -> sqlx::Result<u64> {
        let query = bind::<D>(statement);
        let done = match on {
            On::Pool(pool) => query.execute(pool).await?,
            On::Tx(tx) => query.execute(&mut **tx).await?,
        };
        Ok(D::rows_affected(&done))
    }

    async fn fetch_all(on: On<'_, Self>, statement: Statement) -> sqlx::Result<Vec<D::Row>> {
        let query = bind::<D>(statement);
        match on {
            On::Pool(pool) => query.fetch_all(pool).await,
            On::Tx(tx) => query.fetch_all(&mut **tx).await,
        }
    }

    async fn fetch_optional(
        on: On<'_, Self>,
        statement: Statement,
    ) -> sqlx::Result<Option<D::Row>> {
        let query = bind::<D>(statement);
        match on {
            On::Pool(pool) => query.fetch_optional(pool).await,
            On::Tx(tx) => query.fetch_optional(&mut **tx).await,
        }
    }

    fn int(row: &D::Row, column: &str) -> sqlx::Result<i64> {
        sqlx::Row::try_get(row, column)
    }

    fn opt_int(row: &D::Row, column: &str) -> sqlx::Result<Option<i64>> {
        sqlx::Row::try_get(row, column)
    }

    fn text(row: &D::Row, column: &str) -> sqlx::Result<String> {
        sqlx::Row::try_get(row, column)
    }

    fn opt_text(row: &D::Row, column: &str) -> sqlx::Result<Option<String>> {
        sqlx::Row::try_get(row, column)
    }

    fn flag(row: &D::Row, column: &str) -> sqlx::Result<bool> {
        sqlx::Row::try_get(row, column)
    }

    fn opt_flag(row: &D::Row, column: &str) -> sqlx::Result<Option<bool>> {
        sqlx::Row::try_get(row, column)
    }

    fn opt_real(row: &D::Row, column: &str) -> sqlx::Result<Option<f64>> {
        sqlx::Row::try_get(row, column)
    }
}

/// The statement as an sqlx query with its values bound in order.
fn bind<D>(statement: Statement) -> sqlx::query::Query<'static, D, D::Arguments>
where
    D: Dialect,
    D::Arguments: IntoArguments<D>,
    for<'q> Option<i64>: Encode<'q, D> + Type<D>,
    for<'q> Option<String>: Encode<'q, D> + Type<D>,
    for<'q> Option<bool>: Encode<'q, D> + Type<D>,
    for<'q> Option<f64>: Encode<'q, D> + Type<D>,
{
    let (sql, values) = statement.into_parts(D::ANONYMOUS_PLACEHOLDERS);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in values {
        query = match value {
            Value::Int(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Flag(v) => query.bind(v),
            Value::Real(v) => query.bind(v),
        };
    }
    query
}
