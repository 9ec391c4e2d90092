//! The `web_crawl` tool: start at a page, follow its links, and read what is found. Crawls can
//! take minutes, so a client that sends a progress token gets `notifications/progress`.

use std::sync::OnceLock;

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    page_tools::{
        PageArgs, PageOut, Progress, ScopeArgs, page_defaults, pages_text, scope_defaults,
        with_progress,
    },
    tool::{self, ServedOut, ToolOutcome},
};
use crate::domain::search::{
    CallStats, Caller, CrawlOptions, CrawlRequest, CrawlResults, InvalidInput, SearchService,
};

/// The tool's name.
pub const NAME: &str = "web_crawl";

/// The arguments of `web_crawl`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WebCrawlArgs {
    /// Where to start and how far to go.
    #[serde(flatten)]
    pub scope: ScopeArgs,
    /// How each page is read.
    #[serde(flatten)]
    pub page: PageArgs,
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
    /// How the call was served.
    #[serde(flatten)]
    pub served: ServedOut,
}

/// The tool's definition for `tools/list`.
pub fn definition() -> Tool {
    let mut input = tool::input_schema::<WebCrawlArgs>(
        &[&scope_defaults()[..], &page_defaults()].concat(),
        &[],
    );
    // A crawl reads many pages and ranks them against its instructions, not a query.
    tool::describe(
        &mut input,
        "extract_depth",
        "How thoroughly to read each page: \"basic\" (the default) or \"advanced\" (also tables and\n\
         embedded content; slower and costs more).",
    );
    tool::describe(
        &mut input,
        "chunks_per_source",
        "With instructions, how many relevant chunks to return per page, from 1 to 5 (default\n\
         3), instead of whole pages.",
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
    let found = |results: &CrawlResults| format!("{} pages", results.pages.len());
    tool::run(
        NAME,
        parse(arguments),
        async |request| {
            with_progress(progress, "crawl", service.crawl(caller, request), found).await
        },
        "Retry with a smaller limit or max_depth, or use web_map and web_extract.",
        |_, results, stats| success(results, stats),
    )
    .await
}

fn parse(arguments: Option<JsonObject>) -> Result<CrawlRequest, InvalidInput> {
    static FIELDS: OnceLock<Vec<String>> = OnceLock::new();
    let args: WebCrawlArgs = tool::parse_args(arguments, &FIELDS)?;
    let page = args.page.into_options()?;
    CrawlRequest::new(CrawlOptions {
        scope: args.scope.into_options(),
        page,
    })
}

fn success(results: &CrawlResults, stats: CallStats) -> ToolOutcome {
    let output = WebCrawlOutput {
        provider: stats.provider.to_owned(),
        base_url: results.base_url.clone(),
        results: results.pages.iter().map(PageOut::from).collect(),
        served: ServedOut::new(&stats, &results.usage),
    };
    let text = format!(
        "Crawl of {}: {}",
        output.base_url,
        pages_text(stats.provider, &output.results)
    );
    ToolOutcome::success(&output, text, stats, &results.usage)
}

#[cfg(test)]
mod tests {
    use crate::mcp::page_tools::{PAGE_ARGUMENTS, SCOPE_ARGUMENTS};
    use serde_json::json;

    use super::*;
    use crate::domain::search::ContentFormat;

    #[test]
    fn the_schema_lists_exactly_the_accepted_arguments() {
        tool::assert_input_schema(
            &definition(),
            &[&SCOPE_ARGUMENTS[..], &PAGE_ARGUMENTS].concat(),
            "url",
        );
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
        assert_eq!(request.page().format(), Some(ContentFormat::Text));
        let bad = json!({ "url": "https://docs.rs", "max_depth": 9 });
        assert_eq!(
            parse(bad.as_object().cloned()).unwrap_err().field,
            "max_depth"
        );
    }
}
