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

/// Validates an optional upstream timeout in seconds within `min..=max`.
fn timeout_secs(value: i64, min: u16, max: u16) -> Result<u16, InvalidInput> {
    bounded_count("timeout", value, min, max)
}

/// A request to read the content of given pages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtractRequest {
    urls: Vec<PageUrl>,
    depth: Option<ExtractDepth>,
    format: Option<ContentFormat>,
    include_images: bool,
    include_favicon: bool,
    query: Option<Query>,
    chunks_per_source: Option<u16>,
    timeout_secs: Option<u16>,
}

impl ExtractRequest {
    /// Most URLs one request may name (Tavily's limit).
    pub const MAX_URLS: usize = 20;

    /// A request for these pages (1–20 http(s) URLs, duplicates removed).
    ///
    /// # Errors
    /// [`InvalidInput`] on `urls` when there are none, more than 20, or one is not a URL.
    pub fn new(urls: &[String]) -> Result<Self, InvalidInput> {
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
        Ok(Self {
            urls: parsed,
            depth: None,
            format: None,
            include_images: false,
            include_favicon: false,
            query: None,
            chunks_per_source: None,
            timeout_secs: None,
        })
    }

    /// Sets how thoroughly pages are read.
    pub fn with_depth(mut self, depth: ExtractDepth) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Sets the format of the text returned.
    pub fn with_format(mut self, format: ContentFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// Asks for the images found on each page.
    pub fn with_images(mut self, images: bool) -> Self {
        self.include_images = images;
        self
    }

    /// Asks for each page's favicon URL.
    pub fn with_favicon(mut self, favicon: bool) -> Self {
        self.include_favicon = favicon;
        self
    }

    /// Ranks each page's content by relevance to `query` and returns the best chunks.
    ///
    /// # Errors
    /// [`InvalidInput`] when the query breaks [`Query::parse`]'s rules.
    pub fn with_query(mut self, query: &str) -> Result<Self, InvalidInput> {
        self.query = Some(Query::parse(query)?);
        Ok(self)
    }

    /// How many chunks per page to return (1–5; only with a query).
    ///
    /// # Errors
    /// [`InvalidInput`] on `chunks_per_source` outside 1–5.
    pub fn with_chunks_per_source(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.chunks_per_source = Some(bounded_count("chunks_per_source", value, 1, 5)?);
        Ok(self)
    }

    /// How long the backend may spend reading pages (1–60 s).
    ///
    /// # Errors
    /// [`InvalidInput`] on `timeout` outside 1–60.
    pub fn with_timeout_secs(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.timeout_secs = Some(timeout_secs(value, 1, 60)?);
        Ok(self)
    }

    /// Checks the rules that involve more than one option.
    ///
    /// # Errors
    /// [`InvalidInput`] naming the option that conflicts with another.
    pub fn checked(self) -> Result<Self, InvalidInput> {
        if self.chunks_per_source.is_some() && self.query.is_none() {
            return Err(InvalidInput::new(
                "chunks_per_source",
                "only applies with a query; set query or leave chunks_per_source out",
            ));
        }
        Ok(self)
    }

    /// The URLs to read, duplicates removed, in the caller's order.
    pub fn urls(&self) -> &[PageUrl] {
        &self.urls
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

    /// The reranking query.
    pub fn query(&self) -> Option<&Query> {
        self.query.as_ref()
    }

    /// Chunks per page, when set.
    pub fn chunks_per_source(&self) -> Option<u16> {
        self.chunks_per_source
    }

    /// The backend's own time budget, when set.
    pub fn timeout_secs(&self) -> Option<u16> {
        self.timeout_secs
    }
}

/// Where a crawl or map starts and how far it may go; shared by both.
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

    /// A scope starting at `url` with the backend's defaults (depth 1, breadth 20, limit 50).
    ///
    /// # Errors
    /// [`InvalidInput`] on `url` when it is not an absolute http(s) URL.
    pub fn new(url: &str) -> Result<Self, InvalidInput> {
        Ok(Self {
            url: PageUrl::parse("url", url)?,
            max_depth: None,
            max_breadth: None,
            limit: None,
            instructions: None,
            select_paths: Vec::new(),
            select_domains: Vec::new(),
            exclude_paths: Vec::new(),
            exclude_domains: Vec::new(),
            allow_external: None,
            timeout_secs: None,
        })
    }

    /// How many link levels to follow (1–5).
    ///
    /// # Errors
    /// [`InvalidInput`] on `max_depth` outside 1–5.
    pub fn with_max_depth(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.max_depth = Some(bounded_count("max_depth", value, 1, Self::MAX_DEPTH)?);
        Ok(self)
    }

    /// How many links to follow per page (1–500).
    ///
    /// # Errors
    /// [`InvalidInput`] on `max_breadth` outside 1–500.
    pub fn with_max_breadth(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.max_breadth = Some(bounded_count("max_breadth", value, 1, Self::MAX_BREADTH)?);
        Ok(self)
    }

    /// How many pages to visit in all (1–500).
    ///
    /// # Errors
    /// [`InvalidInput`] on `limit` outside 1–500.
    pub fn with_limit(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.limit = Some(bounded_count("limit", value, 1, Self::MAX_LIMIT)?);
        Ok(self)
    }

    /// Natural-language guidance on which pages to visit (costs more upstream).
    ///
    /// # Errors
    /// [`InvalidInput`] on `instructions` when empty or longer than 400 characters.
    pub fn with_instructions(mut self, text: &str) -> Result<Self, InvalidInput> {
        let trimmed = text.trim();
        let chars = trimmed.chars().count();
        if chars == 0 || chars > Self::MAX_INSTRUCTION_CHARS {
            return Err(InvalidInput::new(
                "instructions",
                format!(
                    "must be 1 to {} characters; got {chars}",
                    Self::MAX_INSTRUCTION_CHARS
                ),
            ));
        }
        self.instructions = Some(trimmed.to_owned());
        Ok(self)
    }

    /// Regular expressions a page path must match (`/docs/.*`).
    ///
    /// # Errors
    /// [`InvalidInput`] on `select_paths` when the list or a pattern is too long or empty.
    pub fn with_select_paths(mut self, patterns: &[String]) -> Result<Self, InvalidInput> {
        self.select_paths = patterns_list("select_paths", patterns)?;
        Ok(self)
    }

    /// Regular expressions a page's domain must match (`^docs\.example\.com$`).
    ///
    /// # Errors
    /// [`InvalidInput`] on `select_domains` as for [`SiteScope::with_select_paths`].
    pub fn with_select_domains(mut self, patterns: &[String]) -> Result<Self, InvalidInput> {
        self.select_domains = patterns_list("select_domains", patterns)?;
        Ok(self)
    }

    /// Regular expressions of paths to skip.
    ///
    /// # Errors
    /// [`InvalidInput`] on `exclude_paths` as for [`SiteScope::with_select_paths`].
    pub fn with_exclude_paths(mut self, patterns: &[String]) -> Result<Self, InvalidInput> {
        self.exclude_paths = patterns_list("exclude_paths", patterns)?;
        Ok(self)
    }

    /// Regular expressions of domains to skip.
    ///
    /// # Errors
    /// [`InvalidInput`] on `exclude_domains` as for [`SiteScope::with_select_paths`].
    pub fn with_exclude_domains(mut self, patterns: &[String]) -> Result<Self, InvalidInput> {
        self.exclude_domains = patterns_list("exclude_domains", patterns)?;
        Ok(self)
    }

    /// Whether links to other domains may be followed (the backend's default is yes).
    pub fn with_allow_external(mut self, allow: bool) -> Self {
        self.allow_external = Some(allow);
        self
    }

    /// How long the backend may spend (10–150 s).
    ///
    /// # Errors
    /// [`InvalidInput`] on `timeout` outside 10–150.
    pub fn with_timeout_secs(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.timeout_secs = Some(timeout_secs(value, 10, 150)?);
        Ok(self)
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

/// A request to crawl a site: follow links from a page and read the pages found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CrawlRequest {
    scope: SiteScope,
    depth: Option<ExtractDepth>,
    format: Option<ContentFormat>,
    include_images: bool,
    include_favicon: bool,
    chunks_per_source: Option<u16>,
}

impl CrawlRequest {
    /// A crawl of `scope` with the default extraction options.
    pub fn new(scope: SiteScope) -> Self {
        Self {
            scope,
            depth: None,
            format: None,
            include_images: false,
            include_favicon: false,
            chunks_per_source: None,
        }
    }

    /// Sets how thoroughly pages are read.
    pub fn with_extract_depth(mut self, depth: ExtractDepth) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Sets the format of the text returned.
    pub fn with_format(mut self, format: ContentFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// Asks for the images found on each page.
    pub fn with_images(mut self, images: bool) -> Self {
        self.include_images = images;
        self
    }

    /// Asks for each page's favicon URL.
    pub fn with_favicon(mut self, favicon: bool) -> Self {
        self.include_favicon = favicon;
        self
    }

    /// How many relevant chunks per page (1–5; only with instructions).
    ///
    /// # Errors
    /// [`InvalidInput`] on `chunks_per_source` outside 1–5.
    pub fn with_chunks_per_source(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.chunks_per_source = Some(bounded_count("chunks_per_source", value, 1, 5)?);
        Ok(self)
    }

    /// Checks the rules that involve more than one option.
    ///
    /// # Errors
    /// [`InvalidInput`] naming the option that conflicts with another.
    pub fn checked(self) -> Result<Self, InvalidInput> {
        if self.chunks_per_source.is_some() && self.scope.instructions.is_none() {
            return Err(InvalidInput::new(
                "chunks_per_source",
                "only applies with instructions; set instructions or leave chunks_per_source out",
            ));
        }
        Ok(self)
    }

    /// Where and how far to crawl.
    pub fn scope(&self) -> &SiteScope {
        &self.scope
    }

    /// The extraction depth asked for.
    pub fn extract_depth(&self) -> Option<ExtractDepth> {
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

/// A request to list the URLs of a site without reading the pages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapRequest {
    scope: SiteScope,
}

impl MapRequest {
    /// A map of `scope`.
    pub fn new(scope: SiteScope) -> Self {
        Self { scope }
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

    #[test]
    fn extract_takes_one_to_twenty_distinct_urls() {
        assert_eq!(ExtractRequest::new(&[]).unwrap_err().field, "urls");
        let many: Vec<String> = (0..21).map(|i| format!("https://e.com/{i}")).collect();
        assert!(ExtractRequest::new(&many).is_err(), "21 is too many");
        assert!(ExtractRequest::new(&many[..20]).is_ok(), "20 is the limit");
        let dup = ExtractRequest::new(&["https://a.com".into(), "https://a.com".into()]).unwrap();
        assert_eq!(dup.urls().len(), 1, "duplicates are read once");
        let chunks = ExtractRequest::new(&["https://a.com".into()])
            .unwrap()
            .with_chunks_per_source(2)
            .unwrap()
            .checked();
        assert_eq!(
            chunks.unwrap_err().field,
            "chunks_per_source",
            "chunks need a query"
        );
        assert!(
            ExtractRequest::new(&["https://a.com".into()])
                .unwrap()
                .with_timeout_secs(61)
                .is_err(),
            "at most 60 s"
        );
    }

    #[test]
    fn site_scopes_are_bounded() {
        let scope = || SiteScope::new("https://docs.rs").unwrap();
        assert_eq!(scope().with_max_depth(6).unwrap_err().field, "max_depth");
        assert_eq!(scope().with_max_depth(0).unwrap_err().field, "max_depth");
        assert_eq!(scope().with_limit(501).unwrap_err().field, "limit");
        assert_eq!(
            scope().with_max_breadth(-1).unwrap_err().field,
            "max_breadth"
        );
        assert_eq!(
            scope().with_instructions(" ").unwrap_err().field,
            "instructions"
        );
        let too_many = vec!["/a".to_owned(); 51];
        assert_eq!(
            scope().with_select_paths(&too_many).unwrap_err().field,
            "select_paths"
        );
        assert_eq!(scope().with_timeout_secs(5).unwrap_err().field, "timeout");
        assert_eq!(
            CrawlRequest::new(scope())
                .with_chunks_per_source(3)
                .unwrap()
                .checked()
                .unwrap_err()
                .field,
            "chunks_per_source",
            "chunks need instructions"
        );
        assert!(
            CrawlRequest::new(scope().with_instructions("API reference").unwrap())
                .with_chunks_per_source(3)
                .unwrap()
                .checked()
                .is_ok()
        );
    }
}
