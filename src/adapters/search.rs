//! Implementations of the `SearchProvider` port.

mod mock;

pub use mock::MockSearchProvider;
