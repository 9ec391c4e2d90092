//! The store ports, implemented once for both databases. The SQL is the same in SQLite and
//! PostgreSQL (`sql.rs`), so each port is a macro expanded for `SqliteStore` and
//! `PostgresStore`; what differs between them is what each store type provides itself:
//! - `pool()`: its connection pool;
//! - `begin_write()`: a transaction that may write (SQLite takes the write lock at once);
//! - `check_writable()`: whether writes are possible now;
//! - `SELECT_KEYS`: the signing keys in the order they were made;
//! - `LOCK_KEYS`: a statement that makes key makers take turns;
//! - `LOCK_FAMILY`: one that makes rotations and revocations of a refresh-token family take
//!   turns.

mod audit;
mod clients;
mod issuer;

pub(super) use audit::impl_audit_log;
pub(super) use clients::impl_client_store;
pub(super) use issuer::impl_issuer_store;
