//! Implementations of the `SearchProvider` port and the page capabilities (extract, crawl, map).

mod brave;
mod country;
mod exa;
mod mock;
mod searxng;
mod tavily;
mod upstream;

pub use brave::BraveSearchProvider;
pub use exa::ExaSearchProvider;
pub use mock::MockSearchProvider;
pub use searxng::SearxngSearchProvider;
pub use tavily::TavilySearchProvider;
