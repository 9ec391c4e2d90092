//! Storage adapters for the domain's store ports.

mod sqlite;

pub use sqlite::SqliteStore;
