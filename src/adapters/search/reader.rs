//! The built-in page reader: serves `web_extract` when no configured backend can. It fetches each
//! URL itself and returns the page's main content as markdown or plain text.
//!
//! Fetching URLs a caller names is a server-side request forgery risk, so every fetch goes
//! through the guard in [`crate::adapters::public_web`]: http(s) only, public addresses only
//! (address literals refused before connecting, names checked on the addresses they resolve
//! to, every redirect checked again, at most 5), no proxy. Each page is bounded in size (by
//! `Content-Length`, then while streaming), in time, and in output; a few pages are read at a
//! time across all calls.
//!
//! Understood: HTML and XHTML (main content by Readability, then markdown or text), plain text
//! and markdown (as they are). Other types fail per URL. Not supported: `query` and
//! `chunks_per_source` (whole pages are returned), `extract_depth` (one depth), favicons.
//! `include_images` lists the images of the main content.

mod content;
mod fetch;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::future::join_all;
use reqwest::header::{ACCEPT, CONTENT_TYPE, InvalidHeaderValue};
use tokio::sync::Semaphore;
use url::Url;

use self::content::ContentType;
use crate::{
    adapters::{
        http_client::{FetchError, read_limited},
        public_web::check_host,
    },
    domain::search::{
        ContentFormat, ExtractProvider, ExtractRequest, ExtractResults, FailedPage, Page, PageUrl,
        SearchError,
    },
};

/// What the reader asks for: pages first, anything else only if nothing better.
const ACCEPT_PAGES: &str = "text/html, text/markdown, text/plain;q=0.9, */*;q=0.1";

/// How the page reader fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSettings {
    /// Largest page body read, in bytes; larger pages fail.
    pub max_bytes: usize,
    /// The `User-Agent` sent, so site owners can tell who is reading.
    pub user_agent: String,
    /// Whether pages on private, loopback and link-local addresses may be read (tests and
    /// private deployments only: it lets callers reach the server's own network).
    pub allow_private_addresses: bool,
    /// Longest time for one page, from connecting to the last byte.
    pub page_timeout: Duration,
    /// Most pages fetched at once, across all calls; one call takes at most half of them, so
    /// one caller's slow pages cannot hold every turn.
    pub max_concurrent: usize,
    /// Longest time one call may take, all its pages included: pages not read by then are
    /// reported as failed, so the caller gets what was read before the tool's deadline.
    pub call_timeout: Duration,
}

impl Default for ReaderSettings {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024 * 1024,
            user_agent: concat!(
                "searchgate/",
                env!("CARGO_PKG_VERSION"),
                " (page reader for AI agents)"
            )
            .to_owned(),
            allow_private_addresses: false,
            page_timeout: Duration::from_secs(15),
            max_concurrent: 8,
            call_timeout: Duration::from_secs(55),
        }
    }
}

/// Reads pages itself: the `ExtractProvider` used when no search backend extracts. Honours
/// `format` and `include_images`; ignores `query`, `chunks_per_source`, `extract_depth` and
/// `include_favicon` (whole pages, one depth, no favicons). Public addresses only unless
/// [`ReaderSettings::allow_private_addresses`].
pub struct PageReader {
    http: reqwest::Client,
    settings: ReaderSettings,
    /// Pages being read at once, across all calls.
    turns: Arc<Semaphore>,
}

impl PageReader {
    /// The reader's name in logs and audit rows (it is not a `SearchProvider`).
    pub const NAME: &'static str = "reader";

    /// A reader with `settings`.
    ///
    /// # Errors
    /// When the user agent is not a valid header value.
    pub fn new(settings: ReaderSettings) -> Result<Self, InvalidHeaderValue> {
        let http = fetch::client(
            &settings.user_agent,
            settings.page_timeout,
            settings.allow_private_addresses,
        )?;
        Ok(Self {
            http,
            turns: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            settings,
        })
    }

    /// One page, or why it could not be read. `budget` is the caller's time for the whole call.
    async fn read(
        &self,
        url: &PageUrl,
        request: &ExtractRequest,
        budget: Option<Duration>,
    ) -> Result<Page, String> {
        let parsed = Url::parse(url.as_str()).map_err(|_| "not a URL".to_owned())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("only http and https URLs are read".to_owned());
        }
        if !self.settings.allow_private_addresses {
            // Address literals never reach the resolver: refuse them before connecting.
            check_host(&parsed).map_err(|refused| format!("refused: {refused}"))?;
        }
        let timeout = budget.map_or(self.settings.page_timeout, |budget| {
            budget.min(self.settings.page_timeout)
        });
        let turn = Arc::clone(&self.turns)
            .acquire_owned()
            .await
            .map_err(|_| "the reader is shutting down".to_owned())?;
        let (final_url, content_type, body) =
            tokio::time::timeout(timeout, self.fetch(parsed, timeout))
                .await
                .map_err(|_| fetch::timed_out(timeout))??;
        let format = request.page().format().unwrap_or(ContentFormat::Markdown);
        let include_images = request.page().include_images();
        // Parsing a few megabytes of HTML is CPU work: keep it off the async workers. The turn
        // moves into the task, so it is held until the parse ends even if the caller stops
        // waiting: the turns bound the CPU the reader takes, abandoned parses included.
        let rendered = tokio::task::spawn_blocking(move || {
            let rendered =
                content::render(&body, &content_type, &final_url, format, include_images);
            drop(turn);
            rendered
        })
        .await
        .map_err(|_| "the page could not be rendered".to_owned())??;
        Ok(Page {
            url: url.as_str().to_owned(),
            title: rendered.title,
            raw_content: rendered.text,
            images: rendered.images,
            favicon: None,
        })
    }

    /// The page's final URL (after redirects), content type and body.
    async fn fetch(
        &self,
        url: Url,
        timeout: Duration,
    ) -> Result<(Url, ContentType, Vec<u8>), String> {
        let response = self
            .http
            .get(url)
            .header(ACCEPT, ACCEPT_PAGES)
            .send()
            .await
            .map_err(|e| fetch::failure_reason(&e, timeout))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        // Refused types are refused before their body is read.
        let header = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let content_type = ContentType::parse(header.as_deref())?;
        let final_url = response.url().clone();
        let limit = self.settings.max_bytes;
        let body = read_limited(response, final_url.as_str(), limit)
            .await
            .map_err(|e| match e {
                FetchError::TooLarge { .. } => format!("larger than {limit} bytes"),
                FetchError::Unreachable { reason, .. } => format!("the body broke off: {reason}"),
                other => other.to_string(),
            })?;
        Ok((final_url, content_type, body))
    }
}

#[async_trait]
impl ExtractProvider for PageReader {
    /// Reads every page, a few at a time; a page that cannot be read is listed in `failed`
    /// with a short reason, and the call still succeeds.
    #[tracing::instrument(skip_all, fields(provider = Self::NAME, urls = request.urls().len()))]
    async fn extract(&self, request: &ExtractRequest) -> Result<ExtractResults, SearchError> {
        let budget = request
            .timeout_secs()
            .map_or(self.settings.call_timeout, |secs| {
                Duration::from_secs(u64::from(secs)).min(self.settings.call_timeout)
            });
        // This call's share of the turns.
        let mine = Semaphore::new((self.settings.max_concurrent / 2).max(1));
        let reads = request.urls().iter().map(|url| {
            let mine = &mine;
            async move {
                let read = async {
                    let _mine = mine.acquire().await.map_err(|_| fetch::timed_out(budget))?;
                    self.read(url, request, Some(budget)).await
                };
                // Waiting for a turn counts against the budget too.
                let outcome = tokio::time::timeout(budget, read)
                    .await
                    .unwrap_or_else(|_| Err(fetch::timed_out(budget)));
                (url, outcome)
            }
        });
        let mut results = ExtractResults::default();
        for (url, outcome) in join_all(reads).await {
            match outcome {
                Ok(page) => results.pages.push(page),
                Err(error) => {
                    tracing::debug!(reason = %error, "a page could not be read");
                    results.failed.push(FailedPage {
                        url: url.as_str().to_owned(),
                        error,
                    });
                }
            }
        }
        Ok(results)
    }
}
