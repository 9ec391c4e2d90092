//! searchgate as a framework: serve your own search backend with everything else unchanged
//! (configuration, MCP transport, guards, audit trail, health and OpenAPI).
//!
//! Run it with `cargo run --example custom_provider`; it reads the usual configuration
//! (`SEARCHGATE_SERVER__BIND`, …) and prints the MCP endpoint it serves.

use async_trait::async_trait;
use searchgate::{
    config::Settings,
    domain::search::{SearchError, SearchProvider, SearchRequest, SearchResult, SearchResults},
    startup::Searchgate,
};

/// Searches a small, fixed shelf of books: a stand-in for an internal search service.
struct Bookshelf {
    books: Vec<(&'static str, &'static str)>,
}

#[async_trait]
impl SearchProvider for Bookshelf {
    fn name(&self) -> &'static str {
        "bookshelf"
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let wanted = request.query().as_str().to_lowercase();
        let mut results: Vec<SearchResult> = self
            .books
            .iter()
            .enumerate()
            .map(|(rank, (title, url))| SearchResult {
                title: (*title).to_owned(),
                url: (*url).to_owned(),
                content: format!("A book on the shelf, ranked for \"{wanted}\"."),
                score: 1.0 / (rank as f64 + 1.0),
                published_date: None,
                ..SearchResult::default()
            })
            .collect();
        results.truncate(request.max_results().get());
        Ok(SearchResults {
            query: request.query().as_str().to_owned(),
            results,
            ..SearchResults::default()
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load(None)?;
    let shelf = Bookshelf {
        books: vec![
            (
                "The Rust Programming Language",
                "https://doc.rust-lang.org/book/",
            ),
            ("Rust for Rustaceans", "https://rust-for-rustaceans.com/"),
            ("Zero To Production In Rust", "https://www.zero2prod.com/"),
        ],
    };
    let server = Searchgate::new(settings)
        .with_search_provider(shelf)
        .bind()
        .await?;
    println!("MCP endpoint: {}", server.resource_url());
    server.run().await?;
    Ok(())
}
