//! The `web_extract` tool: read the content of pages the model already knows the URLs of.

use std::{fmt::Write as _, sync::OnceLock};

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    page_tools::{PageArgs, PageOut, page_defaults, pages_text},
    tool::{self, ServedOut, ToolOutcome},
};
use crate::domain::search::{
    CallStats, Caller, ExtractOptions, ExtractRequest, ExtractResults, InvalidInput, SearchService,
};

/// The tool's name.
pub const NAME: &str = "web_extract";

/// The arguments of `web_extract`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WebExtractArgs {
    /// The pages to read: 1 to 20 absolute http(s) URLs, such as
    /// ["https://docs.rs/tokio/latest/tokio/"]. Use URLs from search results or the user.
    #[schemars(length(min = 1, max = 20))]
    pub urls: Vec<String>,
    /// How the pages are read.
    #[serde(flatten)]
    pub page: PageArgs,
    /// Return only the parts of each page most relevant to this question or keywords, instead
    /// of the whole page. Useful for long pages.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 400))]
    pub query: Option<String>,
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
    /// How the call was served.
    #[serde(flatten)]
    pub served: ServedOut,
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
    let input = tool::input_schema::<WebExtractArgs>(&page_defaults(), &[]);
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
    tool::run(
        NAME,
        parse(arguments),
        async |request| service.extract(caller, request).await,
        "Retry with fewer URLs or extract_depth \"basic\".",
        |_, results, stats| success(results, stats),
    )
    .await
}

fn parse(arguments: Option<JsonObject>) -> Result<ExtractRequest, InvalidInput> {
    static FIELDS: OnceLock<Vec<String>> = OnceLock::new();
    let args: WebExtractArgs = tool::parse_args(arguments, &FIELDS)?;
    ExtractRequest::new(ExtractOptions {
        urls: args.urls,
        query: args.query,
        timeout_secs: args.timeout,
        page: args.page.into_options()?,
    })
}

fn success(results: &ExtractResults, stats: CallStats) -> ToolOutcome {
    let output = WebExtractOutput {
        provider: stats.provider.to_owned(),
        results: results.pages.iter().map(PageOut::from).collect(),
        failed_results: results
            .failed
            .iter()
            .map(|f| FailedOut {
                url: f.url.clone(),
                error: f.error.clone(),
            })
            .collect(),
        served: ServedOut::new(&stats, &results.usage),
    };
    let mut text = pages_text(stats.provider, &output.results);
    for failed in &output.failed_results {
        let _ = writeln!(text, "\nCould not read {}: {}", failed.url, failed.error);
    }
    ToolOutcome::success(&output, text, stats, &results.usage)
}

#[cfg(test)]
mod tests {
    use crate::mcp::page_tools::PAGE_ARGUMENTS;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::{
        adapters::search::MockSearchProvider,
        domain::search::{ServicePolicy, WebBackend},
    };

    #[test]
    fn the_schema_lists_exactly_the_accepted_arguments() {
        tool::assert_input_schema(
            &definition(),
            &[&["urls", "query", "timeout"][..], &PAGE_ARGUMENTS].concat(),
            "urls",
        );
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
