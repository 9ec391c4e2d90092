//! The `web_crawl` tool: start at a page, follow its links, and read what is found. Crawls can
//! take minutes, so a client that sends a progress token gets `notifications/progress`.

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    site::{Progress, SCOPE_FIELDS, ScopeArgs, with_progress},
    tool::{self, ToolOutcome},
    web_extract::{PageOut, pages_text},
};
use crate::domain::search::{
    CallStats, Caller, ContentFormat, CrawlRequest, CrawlResults, ExtractDepth, InvalidInput,
    SearchService,
};

/// The tool's name.
pub const NAME: &str = "web_crawl";

/// The extraction arguments, after the scope ones.
const OWN_FIELDS: &[&str] = &[
    "extract_depth",
    "format",
    "include_images",
    "include_favicon",
    "chunks_per_source",
];

/// The arguments of `web_crawl`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WebCrawlArgs {
    /// Where to start and how far to go.
    #[serde(flatten)]
    pub scope: ScopeArgs,
    /// How thoroughly to read each page: "basic" (the default) or "advanced" (also tables and
    /// embedded content; slower and costs more).
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
    /// With instructions, how many relevant chunks to return per page, from 1 to 5 (default
    /// 3), instead of whole pages.
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 5))]
    pub chunks_per_source: Option<i64>,
}

/// The structured result of `web_crawl`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WebCrawlOutput {
    /// Which backend crawled ("mock" content is a placeholder).
    pub provider: String,
    /// Where the crawl started.
    pub base_url: String,
    /// The pages read.
    pub results: Vec<PageOut>,
    /// Whether searchgate answered from its cache.
    #[serde(default)]
    pub cached: bool,
    /// Credits the crawl cost the operator's account, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<f64>,
    /// The backend's id for this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Every argument `web_crawl` accepts.
pub fn fields() -> &'static [&'static str] {
    static FIELDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| [SCOPE_FIELDS, OWN_FIELDS].concat())
}

/// The tool's definition for `tools/list`.
pub fn definition() -> Tool {
    let input = tool::input_schema::<WebCrawlArgs>(
        &[
            ("max_depth", json!(1)),
            ("max_breadth", json!(20)),
            ("limit", json!(50)),
            ("allow_external", json!(true)),
            ("extract_depth", json!("basic")),
            ("format", json!("markdown")),
            ("include_images", json!(false)),
            ("include_favicon", json!(false)),
        ],
        &[],
    );
    tool::web_tool::<WebCrawlOutput>(
        NAME,
        "Crawl a website",
        "Crawl a website: start at a URL, follow its links (depth and breadth bounded) and \
         return the content of the pages found. Use it to read a documentation section or a \
         small site; use web_map first to see what is there, and instructions or select_paths \
         to stay on topic. Slow (up to minutes) and costs more than web_extract.",
        input,
    )
}

/// Runs `web_crawl`, reporting progress when `progress` is present.
pub async fn call(
    service: &SearchService,
    caller: &Caller,
    arguments: Option<JsonObject>,
    progress: Option<Progress>,
) -> ToolOutcome {
    let request = match parse(arguments) {
        Ok(request) => request,
        Err(invalid) => return tool::invalid_argument(NAME, &invalid),
    };
    let served = with_progress(
        progress,
        "crawl",
        service.crawl(caller, &request),
        |served| tool::progress_end("crawl", served, |r| format!("{} pages", r.pages.len())),
    )
    .await;
    tool::answer(
        NAME,
        served,
        "Retry with a smaller limit or max_depth, or use web_map and web_extract.",
        |results, stats| success(service.backend().name(), results, stats),
    )
}

fn parse(arguments: Option<JsonObject>) -> Result<CrawlRequest, InvalidInput> {
    let args: WebCrawlArgs = tool::parse_args(arguments, fields())?;
    let mut request = CrawlRequest::new(args.scope.into_scope()?);
    if let Some(depth) = args.extract_depth {
        request = request.with_extract_depth(depth.parse::<ExtractDepth>()?);
    }
    if let Some(format) = args.format {
        request = request.with_format(format.parse::<ContentFormat>()?);
    }
    request = request
        .with_images(args.include_images.unwrap_or(false))
        .with_favicon(args.include_favicon.unwrap_or(false));
    if let Some(n) = args.chunks_per_source {
        request = request.with_chunks_per_source(n)?;
    }
    request.checked()
}

fn success(provider: &str, results: &CrawlResults, stats: CallStats) -> ToolOutcome {
    let output = WebCrawlOutput {
        provider: provider.to_owned(),
        base_url: results.base_url.clone(),
        results: results.pages.iter().map(PageOut::from).collect(),
        cached: stats.cache_hit,
        credits: results.usage.credits,
        request_id: results.usage.request_id.clone(),
    };
    let text = format!(
        "Crawl of {}: {}",
        output.base_url,
        pages_text(provider, &output.results)
    );
    ToolOutcome::success(&output, text, stats, &results.usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_lists_exactly_the_accepted_arguments() {
        let tool = definition();
        let properties = tool.input_schema["properties"].as_object().unwrap();
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut fields = fields().to_vec();
        fields.sort_unstable();
        assert_eq!(names, fields);
        for (name, schema) in properties {
            assert!(
                schema["description"].as_str().unwrap_or_default().len() > 30,
                "`{name}` needs a description written for a model"
            );
        }
        assert_eq!(tool.input_schema["required"], json!(["url"]));
        for (name, schema) in properties {
            assert!(
                !schema.to_string().contains("\"null\""),
                "`{name}` may be left out but is never null: {schema}"
            );
        }
    }

    #[test]
    fn arguments_parse_into_a_request() {
        let args = json!({
            "url": "https://docs.rs", "max_depth": 2, "limit": 10, "instructions": "API pages",
            "select_paths": ["/tokio/.*"], "allow_external": false, "chunks_per_source": 2,
            "format": "text"
        });
        let request = parse(args.as_object().cloned()).expect("valid");
        assert_eq!(request.scope().max_depth(), Some(2));
        assert_eq!(request.scope().allow_external(), Some(false));
        assert_eq!(request.format(), Some(ContentFormat::Text));
        let bad = json!({ "url": "https://docs.rs", "max_depth": 9 });
        assert_eq!(
            parse(bad.as_object().cloned()).unwrap_err().field,
            "max_depth"
        );
    }
}
