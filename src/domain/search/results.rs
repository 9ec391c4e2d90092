//! What a search returns: ranked results with their source and relevance.

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    /// The page title.
    pub title: String,
    /// The page address.
    pub url: String,
    /// A summary or the most relevant excerpt of the page.
    pub content: String,
    /// Relevance from 0 (weak) to 1 (strong), as the backend scored it.
    pub score: f64,
    /// When the page was published, as the backend reports it (news results).
    pub published_date: Option<String>,
}

/// The answer to one search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// The query that was run (trimmed).
    pub query: String,
    /// The hits, best first.
    pub results: Vec<SearchResult>,
}
