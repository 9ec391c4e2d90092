//! The `search` and `fetch` tools that ChatGPT connectors and deep research require, with
//! exactly their contracts: `search` takes `{query}` and answers one text item holding
//! `{"results": [{id, title, url}]}`; `fetch` takes `{id}` and answers one text item holding
//! `{id, title, text, url, metadata}`. The same object is the structured content. A result's
//! `id` is its URL, so `fetch` is served by the extract port (the backend's, or the built-in
//! reader), through the same core policy as the web tools.

use std::sync::OnceLock;

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::tool::{self, ToolOutcome};
use crate::domain::search::{
    CallStats, Caller, ExtractOptions, ExtractRequest, ExtractResults, InvalidInput, SearchOptions,
    SearchRequest, SearchResults, SearchService,
};

/// The search tool's name.
pub const SEARCH: &str = "search";
/// The fetch tool's name.
pub const FETCH: &str = "fetch";

/// How many results `search` returns (it has no argument for it).
const SEARCH_RESULTS: i64 = 10;

/// The arguments of `search`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// What to search the web for: a question or keywords, 1–400 characters.
    #[schemars(length(min = 1, max = 400))]
    pub query: String,
}

/// The arguments of `fetch`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FetchArgs {
    /// The `id` of a search result (its URL), or any absolute http(s) URL.
    #[schemars(length(min = 1, max = 2048))]
    pub id: String,
}

/// The result of `search`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SearchOutput {
    /// The results, most relevant first.
    pub results: Vec<SearchHit>,
}

/// One result of `search`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SearchHit {
    /// What `fetch` takes to read the page: its URL.
    pub id: String,
    /// The page title.
    pub title: String,
    /// The page URL, for citation.
    pub url: String,
}

/// The result of `fetch`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FetchOutput {
    /// The id asked for.
    pub id: String,
    /// The page title (the URL when the page has none).
    pub title: String,
    /// The page's main content, as markdown.
    pub text: String,
    /// The page URL, for citation.
    pub url: String,
    /// Who read the page and what it cost.
    pub metadata: FetchMetadata,
}

/// What `fetch` reports about how the page was read.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FetchMetadata {
    /// The backend that read the page (`reader` is searchgate's own).
    pub provider: String,
    /// Whether searchgate answered from its cache.
    pub cached: bool,
}

/// The `search` tool's definition.
pub fn search_definition() -> Tool {
    tool::web_tool::<SearchOutput>(
        SEARCH,
        "Search",
        "Search the web. Returns results with an id, title and URL; pass an id to fetch to read \
         the page. Cite the URLs you use.",
        tool::input_schema::<SearchArgs>(&[], &[]),
    )
}

/// The `fetch` tool's definition.
pub fn fetch_definition() -> Tool {
    tool::web_tool::<FetchOutput>(
        FETCH,
        "Fetch",
        "Read a page found by search: give its id (its URL) and get the page's main content as \
         markdown, with its title and URL for citation.",
        tool::input_schema::<FetchArgs>(&[], &[]),
    )
}

/// Runs `search`.
pub async fn search(
    service: &SearchService,
    caller: &Caller,
    arguments: Option<JsonObject>,
) -> ToolOutcome {
    tool::run(
        SEARCH,
        parse_search(arguments),
        async |request| Some(service.search(caller, request, None).await),
        "Retry with a shorter query.",
        |_, results, stats| search_success(results, stats),
    )
    .await
}

/// Runs `fetch`.
pub async fn fetch(
    service: &SearchService,
    caller: &Caller,
    arguments: Option<JsonObject>,
) -> ToolOutcome {
    tool::run(
        FETCH,
        parse_fetch(arguments),
        async |request| service.extract(caller, request).await,
        "Retry later, or fetch another result.",
        fetch_success,
    )
    .await
}

fn parse_search(arguments: Option<JsonObject>) -> Result<SearchRequest, InvalidInput> {
    static FIELDS: OnceLock<Vec<String>> = OnceLock::new();
    let args: SearchArgs = tool::parse_args(arguments, &FIELDS)?;
    SearchRequest::new(SearchOptions {
        max_results: Some(SEARCH_RESULTS),
        ..SearchOptions::query(args.query)
    })
}

fn parse_fetch(arguments: Option<JsonObject>) -> Result<ExtractRequest, InvalidInput> {
    static FIELDS: OnceLock<Vec<String>> = OnceLock::new();
    let args: FetchArgs = tool::parse_args(arguments, &FIELDS)?;
    ExtractRequest::new(ExtractOptions {
        urls: vec![args.id],
        ..ExtractOptions::default()
    })
    .map_err(|invalid| InvalidInput {
        field: "id",
        ..invalid
    })
}

fn search_success(results: &SearchResults, stats: CallStats) -> ToolOutcome {
    let output = SearchOutput {
        results: results
            .results
            .iter()
            .map(|hit| SearchHit {
                id: hit.url.clone(),
                title: hit.title.clone(),
                url: hit.url.clone(),
            })
            .collect(),
    };
    json_outcome(&output, stats, results)
}

fn fetch_success(
    request: &ExtractRequest,
    results: &ExtractResults,
    stats: CallStats,
) -> ToolOutcome {
    let id = request.urls().first().map_or("", |url| url.as_str());
    let Some(page) = results.pages.first() else {
        let reason = results
            .failed
            .first()
            .map_or("the backend returned no page", |f| f.error.as_str());
        return tool::page_unreadable(FETCH, id, reason, stats);
    };
    let output = FetchOutput {
        id: id.to_owned(),
        title: page
            .title
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| page.url.clone()),
        text: page.raw_content.clone(),
        url: page.url.clone(),
        metadata: FetchMetadata {
            provider: stats.provider.to_owned(),
            cached: stats.cache_hit,
        },
    };
    let usage = results.usage.clone();
    let text = serde_json::to_string(&output).expect("tool outputs serialize");
    ToolOutcome::success(&output, text, stats, &usage)
}

/// The contract's one text item (the object as a JSON string), and the object as structured
/// content.
fn json_outcome(output: &SearchOutput, stats: CallStats, results: &SearchResults) -> ToolOutcome {
    let text = serde_json::to_string(output).expect("tool outputs serialize");
    ToolOutcome::success(output, text, stats, &results.usage)
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use serde_json::{Value, json};

    use super::*;
    use crate::{
        adapters::search::MockSearchProvider,
        domain::search::{ServicePolicy, WebBackend},
    };

    fn service() -> SearchService {
        SearchService::new(
            WebBackend::full(Arc::new(MockSearchProvider)),
            ServicePolicy {
                cache_ttl: Duration::ZERO,
                calls_per_minute: 0,
                ..ServicePolicy::default()
            },
        )
    }

    fn args(value: Value) -> Option<JsonObject> {
        value.as_object().cloned()
    }

    /// The one text item, parsed, and the structured content.
    fn contract(outcome: &ToolOutcome) -> (Value, Value) {
        assert_eq!(outcome.result.content.len(), 1, "exactly one content item");
        let text = &outcome.result.content[0]
            .as_text()
            .expect("a text item")
            .text;
        (
            serde_json::from_str(text).expect("the text is JSON"),
            outcome.result.structured_content.clone().unwrap(),
        )
    }

    #[tokio::test]
    async fn search_answers_ids_titles_and_urls_as_one_json_text_item() {
        let outcome = search(
            &service(),
            &Caller::Anonymous,
            args(json!({"query": "ferris"})),
        )
        .await;
        let (text, structured) = contract(&outcome);
        assert_eq!(text, structured, "the same object twice");
        let results = text["results"].as_array().unwrap();
        assert_eq!(results.len(), 10);
        for hit in results {
            let keys: Vec<&str> = hit
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, ["id", "title", "url"]);
            assert_eq!(hit["id"], hit["url"], "the id is the URL fetch reads");
        }
        assert_eq!(text.as_object().unwrap().len(), 1, "a single key, results");
    }

    #[tokio::test]
    async fn fetch_reads_the_page_a_search_result_names() {
        let found = search(
            &service(),
            &Caller::Anonymous,
            args(json!({"query": "ferris"})),
        )
        .await;
        let id = contract(&found).0["results"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let outcome = fetch(&service(), &Caller::Anonymous, args(json!({ "id": id }))).await;
        let (text, structured) = contract(&outcome);
        assert_eq!(text, structured);
        assert_eq!(text["id"], id);
        assert_eq!(text["url"], id);
        assert!(!text["text"].as_str().unwrap().is_empty());
        assert!(!text["title"].as_str().unwrap().is_empty());
        assert_eq!(text["metadata"]["provider"], "mock");
    }

    #[tokio::test]
    async fn fetch_refuses_what_is_not_a_url_and_reports_an_unreadable_page() {
        let outcome = fetch(&service(), &Caller::Anonymous, args(json!({"id": "doc-1"}))).await;
        assert_eq!(outcome.error_code, Some("invalid_argument"));
        let meta = outcome.result.meta.as_ref().unwrap();
        assert_eq!(meta.0["searchgate/error"]["field"], "id");
        let failing = "https://example.com/mock-error:unavailable/page";
        let outcome = fetch(&service(), &Caller::Anonymous, args(json!({"id": failing}))).await;
        assert_eq!(outcome.result.is_error, Some(true));
        assert!(outcome.error_code.is_some());
    }

    #[test]
    fn the_schemas_are_the_contracts() {
        let search = search_definition();
        assert_eq!(
            search.input_schema["required"],
            json!(["query"]),
            "a single query string"
        );
        let fetch = fetch_definition();
        assert_eq!(fetch.input_schema["required"], json!(["id"]));
        for tool in [&search, &fetch] {
            let annotations = tool.annotations.as_ref().unwrap();
            assert_eq!(annotations.read_only_hint, Some(true));
            assert!(tool.output_schema.is_some());
        }
    }
}
