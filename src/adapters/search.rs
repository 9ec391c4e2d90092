//! Implementations of the `SearchProvider` port and the page capabilities (extract, crawl, map).

mod mock;
mod tavily;
mod upstream;

pub use mock::MockSearchProvider;
pub use tavily::TavilySearchProvider;
