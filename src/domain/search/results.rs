//! What the web tools return: ranked search results, extracted and crawled pages, and site
//! maps, each with what the backend reports about the call (credits, request id).

/// An image found for a query or on a page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Image {
    /// The image address.
    pub url: String,
    /// What the image shows, when the backend described it.
    pub description: Option<String>,
}

/// What the backend says about one call, beyond its results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpstreamUsage {
    /// Credits the call cost, when reported.
    pub credits: Option<f64>,
    /// The backend's id for the call, for support requests.
    pub request_id: Option<String>,
    /// How long the backend took, in seconds, when reported.
    pub response_time: Option<f64>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// The page's full text, when asked for.
    pub raw_content: Option<String>,
    /// The page's favicon URL, when asked for.
    pub favicon: Option<String>,
    /// Images on the page, when the backend sent them.
    pub images: Vec<Image>,
}

/// The answer to one search request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchResults {
    /// The query that was run (trimmed).
    pub query: String,
    /// An answer written from the results, when asked for.
    pub answer: Option<String>,
    /// Images related to the query, when asked for.
    pub images: Vec<Image>,
    /// The hits, best first.
    pub results: Vec<SearchResult>,
    /// Credits, request id and timing.
    pub usage: UpstreamUsage,
}

/// One page read by extract or crawl.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The page address.
    pub url: String,
    /// The page title, when known.
    pub title: Option<String>,
    /// The page's text (markdown or plain text).
    pub raw_content: String,
    /// Images on the page, when asked for.
    pub images: Vec<Image>,
    /// The page's favicon URL, when asked for.
    pub favicon: Option<String>,
}

/// A URL that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FailedPage {
    /// The URL as asked for.
    pub url: String,
    /// The backend's explanation.
    pub error: String,
}

/// The answer to one extract request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtractResults {
    /// Pages read.
    pub pages: Vec<Page>,
    /// Pages that could not be read.
    pub failed: Vec<FailedPage>,
    /// Credits, request id and timing.
    pub usage: UpstreamUsage,
}

/// The answer to one crawl request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrawlResults {
    /// Where the crawl started, as the backend normalized it.
    pub base_url: String,
    /// Pages read.
    pub pages: Vec<Page>,
    /// Credits, request id and timing.
    pub usage: UpstreamUsage,
}

/// The answer to one map request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MapResults {
    /// Where the map started, as the backend normalized it.
    pub base_url: String,
    /// The URLs found.
    pub urls: Vec<String>,
    /// Credits, request id and timing.
    pub usage: UpstreamUsage,
}
