//! Implementations of the `SearchProvider` port and the page capabilities (extract, crawl, map).

mod brave;
mod country;
mod mock;
mod searxng;
mod tavily;
mod upstream;

pub use brave::BraveSearchProvider;
pub use mock::MockSearchProvider;
pub use searxng::SearxngSearchProvider;
pub use tavily::TavilySearchProvider;
