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
    /// Credits the call cost, when reported (Tavily).
    pub credits: Option<f64>,
    /// What the call cost in US dollars, when the backend reports money rather than credits
    /// (Exa's `costDollars.total`, an estimate rather than an invoice).
    pub cost_dollars: Option<f64>,
    /// The backend's id for the call, for support requests.
    pub request_id: Option<String>,
    /// How long the backend took, in seconds, when reported.
    pub response_time: Option<f64>,
}

/// A result that carries what the backend reported about the call.
pub trait Reported {
    /// Credits, request id and timing.
    fn usage(&self) -> &UpstreamUsage;
}

macro_rules! reported {
    ($($results:ty),+) => {
        $(impl Reported for $results {
            fn usage(&self) -> &UpstreamUsage {
                &self.usage
            }
        })+
    };
}

reported!(SearchResults, ExtractResults, CrawlResults, MapResults);

/// What one call cost the operator's account, as the backend reported it: nothing for an
/// answer from the cache (no backend was paid).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CallCost {
    /// Backend credits (Tavily).
    pub credits: Option<f64>,
    /// US dollars (Exa).
    pub usd: Option<f64>,
}

impl CallCost {
    /// The cost of a call answered with `usage`, `cached` or not.
    pub fn of(usage: &UpstreamUsage, cached: bool) -> Self {
        if cached {
            Self::default()
        } else {
            Self {
                credits: usage.credits,
                usd: usage.cost_dollars,
            }
        }
    }
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

impl SearchResults {
    /// Drops each hit whose page an earlier (better ranked) hit already is: backends, and
    /// several backends' engines, list one page under slightly different addresses.
    pub fn drop_duplicate_pages(&mut self) {
        let mut seen = std::collections::HashSet::with_capacity(self.results.len());
        self.results.retain(|hit| seen.insert(page_key(&hit.url)));
    }
}

/// Query parameters that say how a visitor arrived, not which page they see.
const TRACKING_PARAMETERS: &[&str] = &[
    "gclid", "dclid", "fbclid", "msclkid", "yclid", "mc_cid", "mc_eid", "_ga", "igshid",
];

/// The address two hits are compared by: as the `url` crate normalises it (scheme and host in
/// lower case, a default port dropped, dot segments resolved), without its fragment, tracking
/// parameters (`utm_*` and the click ids above) or a trailing slash. An address that does not
/// parse is compared as written.
pub fn page_key(address: &str) -> String {
    let Ok(mut url) = url::Url::parse(address.trim()) else {
        return address.trim().to_owned();
    };
    url.set_fragment(None);
    if url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| {
                let name = name.to_ascii_lowercase();
                !name.starts_with("utm_") && !TRACKING_PARAMETERS.contains(&name.as_str())
            })
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    let path = url.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/').to_owned();
        url.set_path(&trimmed);
    }
    url.into()
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hit(url: &str) -> SearchResult {
        SearchResult {
            url: url.to_owned(),
            title: url.to_owned(),
            ..SearchResult::default()
        }
    }

    #[test]
    fn one_page_under_several_addresses_is_kept_once_in_rank_order() {
        let mut results = SearchResults {
            results: [
                "https://example.com/docs/",
                "HTTPS://Example.COM:443/docs?utm_source=x&utm_medium=y#intro",
                "https://example.com/docs?fbclid=abc",
                "https://example.com/docs?page=2",
                "http://example.com/docs",
                "https://example.com/other",
                "not a url",
                " not a url ",
            ]
            .into_iter()
            .map(hit)
            .collect(),
            ..SearchResults::default()
        };
        results.drop_duplicate_pages();
        let kept: Vec<&str> = results.results.iter().map(|h| h.url.as_str()).collect();
        assert_eq!(
            kept,
            [
                "https://example.com/docs/",
                "https://example.com/docs?page=2",
                "http://example.com/docs",
                "https://example.com/other",
                "not a url",
            ],
            "the first address of each page stays, as the backend wrote it"
        );
    }

    #[test]
    fn parameters_that_choose_the_page_are_kept() {
        assert_eq!(
            page_key("https://example.com/search?q=rust&utm_campaign=x&page=2"),
            "https://example.com/search?q=rust&page=2"
        );
        assert_ne!(
            page_key("https://example.com/a?id=1"),
            page_key("https://example.com/a?id=2")
        );
        assert_eq!(page_key("https://example.com/"), "https://example.com/");
    }

    proptest! {
        /// Whatever the page, the spellings of its address that mean the same page share a key.
        #[test]
        fn equivalent_spellings_share_a_key(
            host in "[a-z]{1,10}\\.(com|org|dev)",
            path in proptest::collection::vec("[a-z0-9]{1,8}", 0..4),
            query in proptest::collection::vec(("[a-z]{1,6}", "[a-z0-9]{0,6}"), 0..3),
            tracking in "[a-z]{1,8}",
        ) {
            let path = path.join("/");
            let query: Vec<String> = query
                .iter()
                .filter(|(name, _)| !name.starts_with("utm_") && !TRACKING_PARAMETERS.contains(&name.as_str()))
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let plain = if query.is_empty() {
                format!("https://{host}/{path}")
            } else {
                format!("https://{host}/{path}?{}", query.join("&"))
            };
            let mut noisy = format!("HTTPS://{}:443/{path}", host.to_uppercase());
            if !path.is_empty() {
                noisy.push('/');
            }
            noisy.push('?');
            for pair in &query {
                noisy.push_str(pair);
                noisy.push('&');
            }
            noisy.push_str(&format!("utm_source={tracking}#section"));
            prop_assert_eq!(page_key(&plain), page_key(&noisy));
        }
    }
}
