//! The `web_extract` tool: read the content of pages the model already knows the URLs of.

use std::fmt::Write as _;

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::tool::{self, ImageOut, ToolOutcome};
use crate::domain::search::{
    CallStats, Caller, ContentFormat, ExtractDepth, ExtractRequest, ExtractResults, InvalidInput,
    SearchService,
};

/// The tool's name.
pub const NAME: &str = "web_extract";

/// Every argument `web_extract` accepts.
const FIELDS: &[&str] = &[
    "urls",
    "extract_depth",
    "format",
    "include_images",
    "include_favicon",
    "query",
    "chunks_per_source",
    "timeout",
];

/// The arguments of `web_extract`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WebExtractArgs {
    /// The pages to read: 1 to 20 absolute http(s) URLs, such as
    /// ["https://docs.rs/tokio/latest/tokio/"]. Use URLs from search results or the user.
    #[schemars(length(min = 1, max = 20))]
    pub urls: Vec<String>,
    /// How thoroughly to read: "basic" (the default; main text) or "advanced" (also tables
    /// and embedded content; slower and costs more).
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ["basic", "advanced"]))]
    pub extract_depth: Option<String>,
    /// The format of the returned text: "markdown" (the default) or "text".
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ["markdown", "text"]))]
    pub format: Option<String>,
    /// Also return the image URLs found on each page. Off by default.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub include_images: Option<bool>,
    /// Also return each page's favicon URL. Off by default.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub include_favicon: Option<bool>,
    /// Return only the parts of each page most relevant to this question or keywords, instead
    /// of the whole page. Useful for long pages.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 400))]
    pub query: Option<String>,
    /// With query, how many relevant chunks to return per page, from 1 to 5 (default 3).
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 5))]
    pub chunks_per_source: Option<i64>,
    /// Seconds the backend may spend reading, from 1 to 60. Leave it out normally.
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 60))]
    pub timeout: Option<i64>,
}

/// The structured result of `web_extract`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WebExtractOutput {
    /// Which backend read the pages ("mock" content is a placeholder).
    pub provider: String,
    /// The pages read.
    pub results: Vec<PageOut>,
    /// The URLs that could not be read, and why.
    #[serde(default)]
    pub failed_results: Vec<FailedOut>,
    /// Whether searchgate answered from its cache.
    #[serde(default)]
    pub cached: bool,
    /// Credits the call cost the operator's account, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<f64>,
    /// The backend's id for this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
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

impl From<&crate::domain::search::Page> for PageOut {
    fn from(page: &crate::domain::search::Page) -> Self {
        Self {
            url: page.url.clone(),
            title: page.title.clone(),
            content: page.raw_content.clone(),
            images: tool::images(&page.images),
            favicon: page.favicon.clone(),
        }
    }
}

/// A URL that could not be read.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FailedOut {
    /// The URL.
    pub url: String,
    /// Why it could not be read.
    pub error: String,
}

/// The tool's definition for `tools/list`.
pub fn definition() -> Tool {
    let input = tool::input_schema::<WebExtractArgs>(
        &[
            ("extract_depth", json!("basic")),
            ("format", json!("markdown")),
            ("include_images", json!(false)),
            ("include_favicon", json!(false)),
        ],
        &[],
    );
    tool::web_tool::<WebExtractOutput>(
        NAME,
        "Read web pages",
        "Read web pages: give up to 20 URLs and get each page's main content as markdown or \
         text. Use it after web_search when an excerpt is not enough, or on URLs the user gives; \
         pass query to get only the relevant parts of long pages.",
        input,
    )
}

/// Runs `web_extract`.
pub async fn call(
    service: &SearchService,
    caller: &Caller,
    arguments: Option<JsonObject>,
) -> ToolOutcome {
    let request = match parse(arguments) {
        Ok(request) => request,
        Err(invalid) => return tool::invalid_argument(NAME, &invalid),
    };
    let served = service.extract(caller, &request).await;
    tool::answer(
        NAME,
        served,
        "Retry with fewer URLs or extract_depth \"basic\".",
        |results, stats| success(service.backend().name(), results, stats),
    )
}

fn parse(arguments: Option<JsonObject>) -> Result<ExtractRequest, InvalidInput> {
    let args: WebExtractArgs = tool::parse_args(arguments, FIELDS)?;
    let mut request = ExtractRequest::new(&args.urls)?;
    if let Some(depth) = args.extract_depth {
        request = request.with_depth(depth.parse::<ExtractDepth>()?);
    }
    if let Some(format) = args.format {
        request = request.with_format(format.parse::<ContentFormat>()?);
    }
    request = request
        .with_images(args.include_images.unwrap_or(false))
        .with_favicon(args.include_favicon.unwrap_or(false));
    if let Some(query) = args.query {
        request = request.with_query(&query)?;
    }
    if let Some(n) = args.chunks_per_source {
        request = request.with_chunks_per_source(n)?;
    }
    if let Some(secs) = args.timeout {
        request = request.with_timeout_secs(secs)?;
    }
    request.checked()
}

fn success(provider: &str, results: &ExtractResults, stats: CallStats) -> ToolOutcome {
    let output = WebExtractOutput {
        provider: provider.to_owned(),
        results: results.pages.iter().map(PageOut::from).collect(),
        failed_results: results
            .failed
            .iter()
            .map(|f| FailedOut {
                url: f.url.clone(),
                error: f.error.clone(),
            })
            .collect(),
        cached: stats.cache_hit,
        credits: results.usage.credits,
        request_id: results.usage.request_id.clone(),
    };
    let mut text = pages_text(provider, &output.results);
    for failed in &output.failed_results {
        let _ = writeln!(text, "\nCould not read {}: {}", failed.url, failed.error);
    }
    ToolOutcome::success(&output, text, stats, &results.usage)
}

/// A plain-text rendering of pages, shared with `web_crawl`.
pub(super) fn pages_text(provider: &str, pages: &[PageOut]) -> String {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        adapters::search::MockSearchProvider,
        domain::search::{ServicePolicy, WebBackend},
    };

    #[test]
    fn the_schema_lists_exactly_the_accepted_arguments() {
        let tool = definition();
        let properties = tool.input_schema["properties"].as_object().unwrap();
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut fields = FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(names, fields);
        for (name, schema) in properties {
            assert!(
                schema["description"].as_str().unwrap_or_default().len() > 30,
                "`{name}` needs a description written for a model"
            );
        }
        assert_eq!(tool.input_schema["required"], json!(["urls"]));
    }

    #[tokio::test]
    async fn pages_come_back_structured_and_bad_urls_name_the_argument() {
        let service = SearchService::new(
            WebBackend::full(Arc::new(MockSearchProvider)),
            ServicePolicy::default(),
        );
        let args = json!({ "urls": ["https://a.example/x", "https://a.example/mock-fail"] });
        let outcome = call(&service, &Caller::Anonymous, args.as_object().cloned()).await;
        let output: WebExtractOutput =
            serde_json::from_value(outcome.result.structured_content.unwrap()).unwrap();
        assert_eq!(output.results.len(), 1);
        assert_eq!(output.failed_results.len(), 1);
        let bad = json!({ "urls": ["not a url"] });
        let outcome = call(&service, &Caller::Anonymous, bad.as_object().cloned()).await;
        assert_eq!(outcome.error_code, Some("invalid_argument"));
        let text = &outcome.result.content[0].as_text().unwrap().text;
        assert!(text.contains("`urls`"), "{text}");
    }
}
