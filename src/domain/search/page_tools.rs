//! Validated requests for the page tools: extract (read given pages), crawl (follow links from a
//! page and read what is found) and map (list the URLs of a site). Every bound is checked here,
//! once, so providers and tools can rely on it.

use url::Url;

use super::request::{ContentFormat, InvalidInput, Query, bounded_count, closed_set};

closed_set!(
    /// How thoroughly pages are read.
    ExtractDepth, "extract_depth" {
        /// Main content only; the default and cheaper.
        Basic = "basic",
        /// Also tables and embedded content; slower and dearer.
        Advanced = "advanced",
    }
);

/// Longest accepted URL, in characters.
const MAX_URL_CHARS: usize = 2048;

/// An absolute `http(s)` URL without credentials, as the caller wrote it (trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageUrl(String);

impl PageUrl {
    /// Checks that `raw` is an absolute http(s) URL with a host and no user information.
    ///
    /// # Errors
    /// [`InvalidInput`] on `field` otherwise.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        let trimmed = raw.trim();
        let fail = |why: &str| InvalidInput::new(field, format!("`{trimmed}` {why}"));
        if trimmed.chars().count() > MAX_URL_CHARS {
            return Err(InvalidInput::new(
                field,
                format!("URLs must be at most {MAX_URL_CHARS} characters"),
            ));
        }
        let url = Url::parse(trimmed)
            .map_err(|_| fail("is not an absolute URL; write it like https://example.com/page"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail("is not an http or https URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(fail("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(fail("must not contain a user name or password"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How pages are read, as a caller writes it; extract and crawl share it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageOptions {
    /// How thoroughly pages are read.
    pub depth: Option<ExtractDepth>,
    /// The format of the text returned.
    pub format: Option<ContentFormat>,
    /// Whether to include the images found on each page.
    pub include_images: bool,
    /// Whether to include each page's favicon URL.
    pub include_favicon: bool,
    /// How many relevant chunks per page, 1–5, instead of whole pages (extract: only with a
    /// query; crawl: only with instructions).
    pub chunks_per_source: Option<i64>,
}

/// How pages are read, checked: [`PageOptions`] within their bounds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageReading {
    depth: Option<ExtractDepth>,
    format: Option<ContentFormat>,
    include_images: bool,
    include_favicon: bool,
    chunks_per_source: Option<u16>,
}

/// What the chunks of a page are ranked against: extract ranks by its query, crawl by its
/// instructions. Without it, `chunks_per_source` means nothing.
#[derive(Debug, Clone, Copy)]
enum RankedBy {
    Query,
    Instructions,
}

impl RankedBy {
    fn missing(self) -> InvalidInput {
        let message = match self {
            Self::Query => "only applies with a query; set query or leave chunks_per_source out",
            Self::Instructions => {
                "only applies with instructions; set instructions or leave chunks_per_source out"
            }
        };
        InvalidInput::new("chunks_per_source", message)
    }
}

impl PageReading {
    /// Checks `options`; `has_ranking` says whether the request has what chunks are
    /// `ranked_by`.
    fn new(
        options: PageOptions,
        ranked_by: RankedBy,
        has_ranking: bool,
    ) -> Result<Self, InvalidInput> {
        let chunks_per_source = options
            .chunks_per_source
            .map(|n| bounded_count("chunks_per_source", n, 1, 5))
            .transpose()?;
        if chunks_per_source.is_some() && !has_ranking {
            return Err(ranked_by.missing());
        }
        Ok(Self {
            depth: options.depth,
            format: options.format,
            include_images: options.include_images,
            include_favicon: options.include_favicon,
            chunks_per_source,
        })
    }

    /// The depth asked for.
    pub fn depth(&self) -> Option<ExtractDepth> {
        self.depth
    }

    /// The format asked for.
    pub fn format(&self) -> Option<ContentFormat> {
        self.format
    }

    /// Whether to include images.
    pub fn include_images(&self) -> bool {
        self.include_images
    }

    /// Whether to include favicons.
    pub fn include_favicon(&self) -> bool {
        self.include_favicon
    }

    /// Chunks per page, when set.
    pub fn chunks_per_source(&self) -> Option<u16> {
        self.chunks_per_source
    }
}

/// What a caller asks of an extract, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// The pages to read: 1–20 http(s) URLs (duplicates are read once).
    pub urls: Vec<String>,
    /// Ranks each page's content by relevance to this query and returns the best chunks.
    pub query: Option<String>,
    /// How long the backend may spend reading pages, 1–60 s.
    pub timeout_secs: Option<i64>,
    /// How the pages are read.
    pub page: PageOptions,
}

/// A request to read the content of given pages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtractRequest {
    urls: Vec<PageUrl>,
    query: Option<Query>,
    timeout_secs: Option<u16>,
    page: PageReading,
}

impl ExtractRequest {
    /// Most URLs one request may name (Tavily's limit).
    pub const MAX_URLS: usize = 20;

    /// Checks `options`.
    ///
    /// # Errors
    /// [`InvalidInput`] on `urls` when there are none, more than 20, or one is not a URL; on
    /// `query`, `chunks_per_source` or `timeout` when out of bounds; on `chunks_per_source`
    /// without a query.
    pub fn new(options: ExtractOptions) -> Result<Self, InvalidInput> {
        let urls = &options.urls;
        if urls.is_empty() || urls.len() > Self::MAX_URLS {
            return Err(InvalidInput::new(
                "urls",
                format!("must list 1 to {} URLs; got {}", Self::MAX_URLS, urls.len()),
            ));
        }
        let mut parsed: Vec<PageUrl> = Vec::with_capacity(urls.len());
        for raw in urls {
            let url = PageUrl::parse("urls", raw)?;
            if !parsed.contains(&url) {
                parsed.push(url);
            }
        }
        let query = options.query.as_deref().map(Query::parse).transpose()?;
        let timeout_secs = options
            .timeout_secs
            .map(|n| bounded_count("timeout", n, 1, 60))
            .transpose()?;
        let page = PageReading::new(options.page, RankedBy::Query, query.is_some())?;
        Ok(Self {
            urls: parsed,
            query,
            timeout_secs,
            page,
        })
    }

    /// The URLs to read, duplicates removed, in the caller's order.
    pub fn urls(&self) -> &[PageUrl] {
        &self.urls
    }

    /// The reranking query.
    pub fn query(&self) -> Option<&Query> {
        self.query.as_ref()
    }

    /// The backend's own time budget, when set.
    pub fn timeout_secs(&self) -> Option<u16> {
        self.timeout_secs
    }

    /// How the pages are read.
    pub fn page(&self) -> &PageReading {
        &self.page
    }
}

/// Where a crawl or map starts and how far it may go, as a caller writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeOptions {
    /// The start page: an absolute http(s) URL.
    pub url: String,
    /// How many link levels to follow, 1–5.
    pub max_depth: Option<i64>,
    /// How many links to follow per page, 1–500.
    pub max_breadth: Option<i64>,
    /// How many pages to visit in all, 1–500.
    pub limit: Option<i64>,
    /// Natural-language guidance on which pages to visit, 1–400 characters.
    pub instructions: Option<String>,
    /// Regular expressions a page path must match (`/docs/.*`); each list at most 50.
    pub select_paths: Vec<String>,
    /// Regular expressions a page's domain must match (`^docs\.example\.com$`).
    pub select_domains: Vec<String>,
    /// Regular expressions of paths to skip.
    pub exclude_paths: Vec<String>,
    /// Regular expressions of domains to skip.
    pub exclude_domains: Vec<String>,
    /// Whether links to other domains may be followed (the backend's default is yes).
    pub allow_external: Option<bool>,
    /// How long the backend may spend, 10–150 s.
    pub timeout_secs: Option<i64>,
}

/// Where a crawl or map starts and how far it may go, checked; shared by both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SiteScope {
    url: PageUrl,
    max_depth: Option<u16>,
    max_breadth: Option<u16>,
    limit: Option<u16>,
    instructions: Option<String>,
    select_paths: Vec<String>,
    select_domains: Vec<String>,
    exclude_paths: Vec<String>,
    exclude_domains: Vec<String>,
    allow_external: Option<bool>,
    timeout_secs: Option<u16>,
}

impl SiteScope {
    /// Deepest link level followed from the start page.
    pub const MAX_DEPTH: u16 = 5;
    /// Most links followed per page.
    pub const MAX_BREADTH: u16 = 500;
    /// Most pages visited in all.
    pub const MAX_LIMIT: u16 = 500;
    /// Longest natural-language instruction, in characters.
    pub const MAX_INSTRUCTION_CHARS: usize = 400;
    /// Most patterns in each of the path and domain lists.
    pub const MAX_PATTERNS: usize = 50;
    /// Longest pattern, in characters.
    pub const MAX_PATTERN_CHARS: usize = 200;

    /// Checks `options`, in the order they are declared. Bounds left out are the backend's
    /// (depth 1, breadth 20, limit 50).
    ///
    /// # Errors
    /// [`InvalidInput`] naming the first option that breaks a rule.
    pub fn new(options: ScopeOptions) -> Result<Self, InvalidInput> {
        let count = |field, value: Option<i64>, max| {
            value.map(|n| bounded_count(field, n, 1, max)).transpose()
        };
        Ok(Self {
            url: PageUrl::parse("url", &options.url)?,
            max_depth: count("max_depth", options.max_depth, Self::MAX_DEPTH)?,
            max_breadth: count("max_breadth", options.max_breadth, Self::MAX_BREADTH)?,
            limit: count("limit", options.limit, Self::MAX_LIMIT)?,
            instructions: options
                .instructions
                .as_deref()
                .map(instructions)
                .transpose()?,
            select_paths: patterns_list("select_paths", &options.select_paths)?,
            select_domains: patterns_list("select_domains", &options.select_domains)?,
            exclude_paths: patterns_list("exclude_paths", &options.exclude_paths)?,
            exclude_domains: patterns_list("exclude_domains", &options.exclude_domains)?,
            allow_external: options.allow_external,
            timeout_secs: options
                .timeout_secs
                .map(|n| bounded_count("timeout", n, 10, 150))
                .transpose()?,
        })
    }

    /// The start page.
    pub fn url(&self) -> &PageUrl {
        &self.url
    }

    /// Link levels to follow, when set.
    pub fn max_depth(&self) -> Option<u16> {
        self.max_depth
    }

    /// Links per page, when set.
    pub fn max_breadth(&self) -> Option<u16> {
        self.max_breadth
    }

    /// Pages in all, when set.
    pub fn limit(&self) -> Option<u16> {
        self.limit
    }

    /// The guidance, when set.
    pub fn instructions(&self) -> Option<&str> {
        self.instructions.as_deref()
    }

    /// Path patterns to keep.
    pub fn select_paths(&self) -> &[String] {
        &self.select_paths
    }

    /// Domain patterns to keep.
    pub fn select_domains(&self) -> &[String] {
        &self.select_domains
    }

    /// Path patterns to skip.
    pub fn exclude_paths(&self) -> &[String] {
        &self.exclude_paths
    }

    /// Domain patterns to skip.
    pub fn exclude_domains(&self) -> &[String] {
        &self.exclude_domains
    }

    /// Whether other domains may be followed, when set.
    pub fn allow_external(&self) -> Option<bool> {
        self.allow_external
    }

    /// The backend's own time budget, when set.
    pub fn timeout_secs(&self) -> Option<u16> {
        self.timeout_secs
    }
}

/// Guidance text, trimmed, 1–400 characters.
fn instructions(text: &str) -> Result<String, InvalidInput> {
    let trimmed = text.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > SiteScope::MAX_INSTRUCTION_CHARS {
        return Err(InvalidInput::new(
            "instructions",
            format!(
                "must be 1 to {} characters; got {chars}",
                SiteScope::MAX_INSTRUCTION_CHARS
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

fn patterns_list(field: &'static str, patterns: &[String]) -> Result<Vec<String>, InvalidInput> {
    if patterns.len() > SiteScope::MAX_PATTERNS {
        return Err(InvalidInput::new(
            field,
            format!(
                "may list at most {} patterns; got {}",
                SiteScope::MAX_PATTERNS,
                patterns.len()
            ),
        ));
    }
    patterns
        .iter()
        .map(|raw| {
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.chars().count() > SiteScope::MAX_PATTERN_CHARS {
                Err(InvalidInput::new(
                    field,
                    format!(
                        "patterns must be 1 to {} characters",
                        SiteScope::MAX_PATTERN_CHARS
                    ),
                ))
            } else {
                Ok(trimmed.to_owned())
            }
        })
        .collect()
}

/// What a caller asks of a crawl, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrawlOptions {
    /// Where to start and how far to go.
    pub scope: ScopeOptions,
    /// How the pages found are read.
    pub page: PageOptions,
}

/// A request to crawl a site: follow links from a page and read the pages found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CrawlRequest {
    scope: SiteScope,
    page: PageReading,
}

impl CrawlRequest {
    /// Checks `options`.
    ///
    /// # Errors
    /// [`InvalidInput`] naming the first option that breaks a rule; on `chunks_per_source`
    /// without instructions.
    pub fn new(options: CrawlOptions) -> Result<Self, InvalidInput> {
        let scope = SiteScope::new(options.scope)?;
        let guided = scope.instructions.is_some();
        let page = PageReading::new(options.page, RankedBy::Instructions, guided)?;
        Ok(Self { scope, page })
    }

    /// Where and how far to crawl.
    pub fn scope(&self) -> &SiteScope {
        &self.scope
    }

    /// How the pages found are read.
    pub fn page(&self) -> &PageReading {
        &self.page
    }
}

/// A request to list the URLs of a site without reading the pages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapRequest {
    scope: SiteScope,
}

impl MapRequest {
    /// Checks `options`.
    ///
    /// # Errors
    /// [`InvalidInput`] naming the first option that breaks a rule.
    pub fn new(options: ScopeOptions) -> Result<Self, InvalidInput> {
        Ok(Self {
            scope: SiteScope::new(options)?,
        })
    }

    /// Where and how far to map.
    pub fn scope(&self) -> &SiteScope {
        &self.scope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        for (raw, ok, reason) in [
            ("https://docs.rs/tokio", true, "a plain https URL"),
            ("  http://example.com  ", true, "trimmed"),
            ("example.com", false, "no scheme"),
            ("ftp://example.com/x", false, "not http"),
            ("https://user:pw@example.com", false, "credentials"),
            ("file:///etc/passwd", false, "a local file"),
        ] {
            assert_eq!(PageUrl::parse("url", raw).is_ok(), ok, "{reason}: {raw}");
        }
    }

    fn extract(urls: &[&str], page: PageOptions) -> Result<ExtractRequest, InvalidInput> {
        ExtractRequest::new(ExtractOptions {
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            page,
            ..ExtractOptions::default()
        })
    }

    #[test]
    fn extract_takes_one_to_twenty_distinct_urls() {
        assert_eq!(
            extract(&[], PageOptions::default()).unwrap_err().field,
            "urls"
        );
        let many: Vec<String> = (0..21).map(|i| format!("https://e.com/{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(
            extract(&many, PageOptions::default()).is_err(),
            "21 is too many"
        );
        assert!(
            extract(&many[..20], PageOptions::default()).is_ok(),
            "20 is the limit"
        );
        let dup = extract(&["https://a.com", "https://a.com"], PageOptions::default()).unwrap();
        assert_eq!(dup.urls().len(), 1, "duplicates are read once");
        let chunks = PageOptions {
            chunks_per_source: Some(2),
            ..PageOptions::default()
        };
        assert_eq!(
            extract(&["https://a.com"], chunks).unwrap_err().field,
            "chunks_per_source",
            "chunks need a query"
        );
        let slow = ExtractOptions {
            urls: vec!["https://a.com".into()],
            timeout_secs: Some(61),
            ..ExtractOptions::default()
        };
        assert!(ExtractRequest::new(slow).is_err(), "at most 60 s");
    }

    #[test]
    fn site_scopes_are_bounded() {
        let docs = || ScopeOptions {
            url: "https://docs.rs".into(),
            ..ScopeOptions::default()
        };
        let field = |options: ScopeOptions| SiteScope::new(options).unwrap_err().field;
        let depth = |n| ScopeOptions {
            max_depth: Some(n),
            ..docs()
        };
        assert_eq!(field(depth(6)), "max_depth");
        assert_eq!(field(depth(0)), "max_depth");
        let limit = ScopeOptions {
            limit: Some(501),
            ..docs()
        };
        assert_eq!(field(limit), "limit");
        let breadth = ScopeOptions {
            max_breadth: Some(-1),
            ..docs()
        };
        assert_eq!(field(breadth), "max_breadth");
        let blank = ScopeOptions {
            instructions: Some(" ".into()),
            ..docs()
        };
        assert_eq!(field(blank), "instructions");
        let too_many = ScopeOptions {
            select_paths: vec!["/a".to_owned(); 51],
            ..docs()
        };
        assert_eq!(field(too_many), "select_paths");
        let quick = ScopeOptions {
            timeout_secs: Some(5),
            ..docs()
        };
        assert_eq!(field(quick), "timeout");
        let chunks = || PageOptions {
            chunks_per_source: Some(3),
            ..PageOptions::default()
        };
        let unguided = CrawlOptions {
            scope: docs(),
            page: chunks(),
        };
        assert_eq!(
            CrawlRequest::new(unguided).unwrap_err().field,
            "chunks_per_source",
            "chunks need instructions"
        );
        let guided = CrawlOptions {
            scope: ScopeOptions {
                instructions: Some("API reference".into()),
                ..docs()
            },
            page: chunks(),
        };
        assert!(CrawlRequest::new(guided).is_ok());
    }
}
