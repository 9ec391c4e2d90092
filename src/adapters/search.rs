//! Implementations of the `SearchProvider` port and the page capabilities (extract, crawl, map),
//! and the built-in page reader that extracts when no backend can.

mod brave;
mod country;
mod exa;
mod mock;
mod reader;
mod searxng;
mod tavily;
mod upstream;

pub use brave::BraveSearchProvider;
pub use exa::ExaSearchProvider;
pub use mock::MockSearchProvider;
pub use reader::{PageReader, ReaderSettings};
pub use searxng::SearxngSearchProvider;
pub use tavily::TavilySearchProvider;
