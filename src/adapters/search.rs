//! Implementations of the `SearchProvider` port and the page capabilities (extract, crawl, map),
//! and the built-in page reader that extracts when no backend can.

mod mock;
mod reader;
mod tavily;
mod upstream;

pub use mock::MockSearchProvider;
pub use reader::{PageReader, ReaderSettings};
pub use tavily::TavilySearchProvider;
