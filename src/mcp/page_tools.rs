//! What the page tools share: the scope arguments of `web_crawl` and `web_map` (where to start,
//! how far to go, which paths and domains), the page arguments of `web_extract` and
//! `web_crawl` (how pages are read), the pages they return, and progress notifications while a
//! long call runs.

use std::{fmt::Write as _, future::Future, time::Duration};

use rmcp::{
    Peer, RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tool::{self, ImageOut};
use crate::domain::search::{
    ContentFormat, ExtractDepth, InvalidInput, Page, PageOptions, ScopeOptions, Served,
};

/// How often progress is reported while waiting on the backend.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The scope arguments, flattened into both tools' arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ScopeArgs {
    /// The page to start from, an absolute http(s) URL such as "https://docs.rs/tokio".
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// How many links deep to go from the start page, from 1 (the default; only pages linked
    /// from it) to 5. Each level multiplies the time taken.
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 5))]
    pub max_depth: Option<i64>,
    /// How many links to follow from each page, from 1 to 500 (default 20).
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 500))]
    pub max_breadth: Option<i64>,
    /// The most pages to visit in all, from 1 to 500 (default 50).
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 500))]
    pub limit: Option<i64>,
    /// Which pages you want, in plain words, such as "pages about authentication" (the backend
    /// then picks links accordingly; this costs more).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 400))]
    pub instructions: Option<String>,
    /// Only visit paths matching these regular expressions, such as ["/docs/.*"].
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 50))]
    pub select_paths: Option<Vec<String>>,
    /// Only visit domains matching these regular expressions, such as ["^docs\\.example\\.com$"].
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 50))]
    pub select_domains: Option<Vec<String>>,
    /// Skip paths matching these regular expressions, such as ["/blog/.*"].
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 50))]
    pub exclude_paths: Option<Vec<String>>,
    /// Skip domains matching these regular expressions.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 50))]
    pub exclude_domains: Option<Vec<String>>,
    /// Whether to follow links to other domains (the default is true).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub allow_external: Option<bool>,
    /// Seconds the backend may spend, from 10 to 150. Leave it out normally.
    #[serde(default)]
    #[schemars(with = "i64", range(min = 10, max = 150))]
    pub timeout: Option<i64>,
}

impl ScopeArgs {
    /// The scope as the domain takes it; [`crate::domain::search::SiteScope::new`] checks it.
    pub fn into_options(self) -> ScopeOptions {
        ScopeOptions {
            url: self.url,
            max_depth: self.max_depth,
            max_breadth: self.max_breadth,
            limit: self.limit,
            instructions: self.instructions,
            select_paths: self.select_paths.unwrap_or_default(),
            select_domains: self.select_domains.unwrap_or_default(),
            exclude_paths: self.exclude_paths.unwrap_or_default(),
            exclude_domains: self.exclude_domains.unwrap_or_default(),
            allow_external: self.allow_external,
            timeout_secs: self.timeout,
        }
    }
}

/// How pages are read, flattened into `web_extract`'s and `web_crawl`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PageArgs {
    /// How thoroughly to read: "basic" (the default; main text) or "advanced" (also tables
    /// and embedded content; slower and costs more).
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ExtractDepth::VALUES))]
    pub extract_depth: Option<String>,
    /// The format of the returned text: "markdown" (the default) or "text".
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ContentFormat::VALUES))]
    pub format: Option<String>,
    /// Also return the image URLs found on each page. Off by default.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub include_images: Option<bool>,
    /// Also return each page's favicon URL. Off by default.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub include_favicon: Option<bool>,
    /// With query, how many relevant chunks to return per page, from 1 to 5 (default 3).
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 5))]
    pub chunks_per_source: Option<i64>,
}

/// The scope arguments' names, for the tools' schema tests.
#[cfg(test)]
pub const SCOPE_ARGUMENTS: [&str; 11] = [
    "url",
    "max_depth",
    "max_breadth",
    "limit",
    "instructions",
    "select_paths",
    "select_domains",
    "exclude_paths",
    "exclude_domains",
    "allow_external",
    "timeout",
];

/// The page arguments' names, for the tools' schema tests.
#[cfg(test)]
pub const PAGE_ARGUMENTS: [&str; 5] = [
    "extract_depth",
    "format",
    "include_images",
    "include_favicon",
    "chunks_per_source",
];

/// The defaults of the scope arguments (the backend's), stated in the schema.
pub fn scope_defaults() -> [(&'static str, serde_json::Value); 4] {
    [
        ("max_depth", serde_json::json!(1)),
        ("max_breadth", serde_json::json!(20)),
        ("limit", serde_json::json!(50)),
        ("allow_external", serde_json::json!(true)),
    ]
}

/// The defaults of the page arguments, stated in the schema.
pub fn page_defaults() -> [(&'static str, serde_json::Value); 4] {
    [
        ("extract_depth", serde_json::json!("basic")),
        ("format", serde_json::json!("markdown")),
        ("include_images", serde_json::json!(false)),
        ("include_favicon", serde_json::json!(false)),
    ]
}

impl PageArgs {
    /// The page options as the domain takes them.
    ///
    /// # Errors
    /// [`InvalidInput`] on `extract_depth` or `format` when not one of their values.
    pub fn into_options(self) -> Result<PageOptions, InvalidInput> {
        Ok(PageOptions {
            depth: tool::parse_opt(self.extract_depth)?,
            format: tool::parse_opt(self.format)?,
            include_images: self.include_images.unwrap_or(false),
            include_favicon: self.include_favicon.unwrap_or(false),
            chunks_per_source: self.chunks_per_source,
        })
    }
}

/// One page read by extract or crawl.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct PageOut {
    /// The page URL; cite it when you use the content.
    pub url: String,
    /// The page title, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The page's text (markdown unless format "text" was asked for).
    pub content: String,
    /// Image URLs on the page, when include_images was set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageOut>,
    /// The page's favicon URL, when include_favicon was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub favicon: Option<String>,
}

impl From<&Page> for PageOut {
    fn from(page: &Page) -> Self {
        Self {
            url: page.url.clone(),
            title: page.title.clone(),
            content: page.raw_content.clone(),
            images: tool::images(&page.images),
            favicon: page.favicon.clone(),
        }
    }
}

/// A plain-text rendering of pages, for clients that show text only.
pub fn pages_text(provider: &str, pages: &[PageOut]) -> String {
    let mut text = String::new();
    if provider == "mock" {
        text.push_str(
            "Note: this is placeholder content from searchgate's mock provider, not real web \
             pages.\n\n",
        );
    }
    let _ = writeln!(text, "{} pages:", pages.len());
    for page in pages {
        let _ = write!(
            text,
            "\n## {}\n{}\n\n{}\n",
            page.title.as_deref().unwrap_or(&page.url),
            page.url,
            page.content
        );
    }
    text
}

/// Where to send `notifications/progress` for one request: present only when the client sent
/// a progress token (MCP: progress is opt-in per request).
pub struct Progress {
    peer: Peer<RoleServer>,
    token: ProgressToken,
    sent: u32,
}

impl Progress {
    /// Progress for a request whose `_meta` carried `token`.
    pub fn new(peer: Peer<RoleServer>, token: ProgressToken) -> Self {
        Self {
            peer,
            token,
            sent: 0,
        }
    }

    async fn notify(&mut self, message: String) {
        // MCP: `progress` must increase with every notification.
        self.sent += 1;
        let param = ProgressNotificationParam::new(self.token.clone(), f64::from(self.sent))
            .with_message(message);
        if let Err(error) = self.peer.notify_progress(param).await {
            tracing::debug!(error = %error, "cannot send a progress notification");
        }
    }
}

/// Awaits `work`, reporting start, a heartbeat every few seconds, and the end (what was
/// `found`, or the error code) when `progress` is present.
pub async fn with_progress<T>(
    progress: Option<Progress>,
    what: &str,
    work: impl Future<Output = Option<Served<T>>>,
    found: impl FnOnce(&T) -> String,
) -> Option<Served<T>> {
    let Some(mut progress) = progress else {
        return work.await;
    };
    progress.notify(format!("{what} started")).await;
    let mut heartbeat = tokio::time::interval(PROGRESS_EVERY);
    heartbeat.tick().await;
    let started = tokio::time::Instant::now();
    tokio::pin!(work);
    let output = loop {
        tokio::select! {
            output = &mut work => break output,
            _ = heartbeat.tick() => {
                let secs = started.elapsed().as_secs();
                progress.notify(format!("{what} running for {secs} s")).await;
            }
        }
    };
    let end = match output.as_ref().map(|served| &served.result) {
        Some(Ok(results)) => format!("{what} finished: {}", found(results)),
        Some(Err(error)) => format!("{what} failed: {}", error.code()),
        None => format!("{what} not supported"),
    };
    progress.notify(end).await;
    output
}
