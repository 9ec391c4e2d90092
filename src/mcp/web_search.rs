//! The `web_search` tool: its schemas, the parsing of its arguments into a `SearchRequest`, and
//! the mapping of results and errors into a tool result a model can act on.

use std::fmt::Write as _;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, MetaObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::search::{
    InvalidInput, SearchDepth, SearchError, SearchProvider, SearchRequest, SearchResults,
    TimeRange, Topic,
};

/// The tool's name.
pub const NAME: &str = "web_search";

/// `_meta` key under which error results carry their machine-readable code.
const ERROR_META_KEY: &str = "searchgate/error";

/// The arguments of `web_search`, as a model sends them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSearchArgs {
    /// What to search the web for: a question or keywords, 1–400 characters. Be specific:
    /// include names, versions, places and dates that matter. Search one topic at a time.
    #[schemars(length(min = 1, max = 400))]
    pub query: String,
    /// How many results to return, from 1 to 20. Defaults to 5. Ask for more only when you need
    /// breadth; fewer results are faster and cheaper.
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 20))]
    pub max_results: Option<i64>,
    /// How thoroughly to search: "basic" (the default; one summary per page), "advanced"
    /// (several relevant excerpts per page; slower and costs more), "fast" (excerpts with lower
    /// latency) or "ultra-fast" (the lowest latency).
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ["basic", "advanced", "fast", "ultra-fast"]))]
    pub search_depth: Option<String>,
    /// The kind of sources to favour: "general" (the default), "news" (recent articles, with
    /// publication dates) or "finance".
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ["general", "news", "finance"]))]
    pub topic: Option<String>,
    /// Only return pages from the last "day", "week", "month" or "year". Leave it out to search
    /// all time.
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = ["day", "week", "month", "year"]))]
    pub time_range: Option<String>,
    /// Only return results from these domains, such as ["docs.rs", "*.gov"]. At most 300.
    /// Leave it out to search the whole web.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 300))]
    pub include_domains: Option<Vec<String>>,
    /// Never return results from these domains, such as ["pinterest.com"]. At most 150.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 150))]
    pub exclude_domains: Option<Vec<String>>,
}

/// The structured result of `web_search`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WebSearchOutput {
    /// The query that was run, trimmed.
    pub query: String,
    /// Which search backend answered ("mock" results are placeholders, not web pages).
    pub provider: String,
    /// The results, most relevant first.
    pub results: Vec<WebSearchHit>,
}

/// One search result.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WebSearchHit {
    /// The page title.
    pub title: String,
    /// The page URL; cite it when you use the result.
    pub url: String,
    /// A summary or the most relevant excerpt of the page.
    pub content: String,
    /// Relevance from 0 (weak) to 1 (strong).
    pub score: f64,
    /// When the page was published, when known (news results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_date: Option<String>,
}

/// The tool's definition for `tools/list`.
pub fn definition() -> Tool {
    let mut input = rmcp::handler::server::common::schema_for_input::<WebSearchArgs>()
        .expect("WebSearchArgs is a struct, so its schema is an object");
    // `#[serde(default)]` makes schemars write `"default": null`, which no typed field accepts;
    // state the real defaults instead.
    if let Some(serde_json::Value::Object(properties)) =
        std::sync::Arc::make_mut(&mut input).get_mut("properties")
    {
        for (name, schema) in properties.iter_mut() {
            if let Some(schema) = schema.as_object_mut() {
                schema.remove("default");
                let default = match name.as_str() {
                    "max_results" => json!(5),
                    "search_depth" => json!("basic"),
                    "topic" => json!("general"),
                    _ => continue,
                };
                schema.insert("default".to_owned(), default);
            }
        }
    }
    let output = rmcp::handler::server::common::schema_for_output::<WebSearchOutput>();
    let mut tool = Tool::new(
        NAME,
        "Search the web and return ranked results, each with a title, URL, an excerpt of the \
         page and a relevance score. Use it for current events, facts you are unsure of, and \
         documentation; cite the URLs you rely on.",
        input,
    )
    .with_title("Web search")
    .with_annotations(
        ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(true),
    );
    tool.output_schema = Some(output);
    tool
}

/// A tool result plus the error code to audit (`None` on success).
pub struct ToolOutcome {
    /// What the client receives.
    pub result: CallToolResult,
    /// The machine-readable code of an error result.
    pub error_code: Option<&'static str>,
}

/// Runs `web_search` with raw arguments. Bad arguments and search failures become tool results
/// with `isError: true` (SEP-1303), so the model can correct itself.
pub async fn call(search: &dyn SearchProvider, arguments: Option<JsonObject>) -> ToolOutcome {
    let request = match parse(arguments.unwrap_or_default()) {
        Ok(request) => request,
        Err(invalid) => return invalid_argument(&invalid),
    };
    match search.search(&request).await {
        Ok(results) => success(search.name(), results, request.max_results().get()),
        Err(error) => search_failed(&error),
    }
}

fn parse(arguments: JsonObject) -> Result<SearchRequest, InvalidInput> {
    let args: WebSearchArgs = serde_path_to_error::deserialize(serde_json::Value::Object(
        arguments,
    ))
    .map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let field = if path == "." {
            argument_named_in(&message)
        } else {
            path
        };
        InvalidInput {
            field: leak_field(&field),
            message,
        }
    })?;
    let mut request = SearchRequest::new(&args.query)?;
    if let Some(n) = args.max_results {
        request = request.with_max_results(n)?;
    }
    if let Some(depth) = args.search_depth {
        request = request.with_depth(depth.parse::<SearchDepth>()?);
    }
    if let Some(topic) = args.topic {
        request = request.with_topic(topic.parse::<Topic>()?);
    }
    if let Some(range) = args.time_range {
        request = request.with_time_range(range.parse::<TimeRange>()?);
    }
    if let Some(domains) = args.include_domains {
        request = request.with_include_domains(&domains)?;
    }
    if let Some(domains) = args.exclude_domains {
        request = request.with_exclude_domains(&domains)?;
    }
    Ok(request)
}

/// serde reports missing and unknown fields at the root; the field is the first `name` in
/// backticks of its message.
fn argument_named_in(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|name| !name.is_empty())
        .unwrap_or("arguments")
        .to_owned()
}

/// Maps a field name onto the static names of the arguments, so `InvalidInput` stays `'static`.
fn leak_field(field: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "query",
        "max_results",
        "search_depth",
        "topic",
        "time_range",
        "include_domains",
        "exclude_domains",
    ];
    let top = field.split(['.', '[']).next().unwrap_or(field);
    KNOWN
        .iter()
        .copied()
        .find(|known| *known == top)
        .unwrap_or("arguments")
}

fn success(provider: &str, results: SearchResults, max: usize) -> ToolOutcome {
    let output = WebSearchOutput {
        query: results.query,
        provider: provider.to_owned(),
        // The port promises at most `max`; hold any provider to it.
        results: results
            .results
            .into_iter()
            .take(max)
            .map(|r| WebSearchHit {
                title: r.title,
                url: r.url,
                content: r.content,
                score: r.score,
                published_date: r.published_date,
            })
            .collect(),
    };
    let text = readable(&output);
    let structured = serde_json::to_value(&output).expect("plain data serializes");
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    ToolOutcome {
        result,
        error_code: None,
    }
}

/// A plain-text rendering for clients that show text only.
fn readable(output: &WebSearchOutput) -> String {
    let mut text = String::new();
    if output.provider == "mock" {
        text.push_str(
            "Note: these are placeholder results from searchgate's mock provider, not real web \
             pages.\n\n",
        );
    }
    let _ = writeln!(
        text,
        "{} results for \"{}\":",
        output.results.len(),
        output.query
    );
    for (rank, hit) in output.results.iter().enumerate() {
        let _ = write!(
            text,
            "\n{}. {}\n   {}\n   {}\n",
            rank + 1,
            hit.title,
            hit.url,
            hit.content
        );
        if let Some(date) = &hit.published_date {
            let _ = writeln!(text, "   Published: {date}");
        }
    }
    text
}

fn invalid_argument(invalid: &InvalidInput) -> ToolOutcome {
    let text = format!(
        "Invalid argument `{}`: {}. Fix the argument and call {NAME} again.",
        invalid.field, invalid.message
    );
    error_result(text, "invalid_argument", json!({ "field": invalid.field }))
}

fn search_failed(error: &SearchError) -> ToolOutcome {
    let code = error.code();
    let (text, extra) = match error {
        SearchError::Rejected { reason } => (
            format!("The search backend rejected this search: {reason}. Change the query or options and try again."),
            json!({}),
        ),
        SearchError::BackendUnauthorized => {
            tracing::error!(error_code = code, "the search backend rejected searchgate's API key; check the configured key");
            (
                "The search backend rejected searchgate's API key. This is a server configuration \
                 problem that retrying will not fix; tell the user that the searchgate operator \
                 must check the search API key."
                    .to_owned(),
                json!({}),
            )
        }
        SearchError::RateLimited { retry_after } => {
            let secs = retry_after.map_or(60, |d| d.as_secs().max(1));
            (
                format!("The search backend is rate limiting searchgate. Retry in {secs} seconds."),
                json!({ "retry_after_secs": secs }),
            )
        }
        SearchError::QuotaExhausted => (
            "The search backend's credits are used up, so searches fail until the searchgate \
             operator adds credits. Retrying will not help."
                .to_owned(),
            json!({}),
        ),
        SearchError::Unavailable { reason } => {
            tracing::warn!(error_code = code, reason = %reason, "search backend unavailable");
            ("The search backend is unavailable right now. Retry in a few seconds.".to_owned(), json!({}))
        }
        SearchError::Timeout => (
            "The search backend did not answer in time. Retry, perhaps with search_depth \"basic\" \
             or fewer results."
                .to_owned(),
            json!({}),
        ),
        SearchError::Unexpected(inner) => {
            tracing::error!(error_code = code, error = ?inner, "search failed unexpectedly");
            ("searchgate failed to run the search because of an internal error. Retry later.".to_owned(), json!({}))
        }
    };
    error_result(text, code, extra)
}

fn error_result(text: String, code: &'static str, extra: serde_json::Value) -> ToolOutcome {
    let mut detail = json!({ "code": code });
    if let (Some(detail), serde_json::Value::Object(extra)) = (detail.as_object_mut(), extra) {
        detail.extend(extra);
    }
    let mut meta = MetaObject::new();
    meta.0.insert(ERROR_META_KEY.to_owned(), detail);
    let result = CallToolResult::error(vec![ContentBlock::text(text)]).with_meta(Some(meta));
    ToolOutcome {
        result,
        error_code: Some(code),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        adapters::search::MockSearchProvider,
        domain::search::{MockSearchPort, SearchResult},
    };

    fn args(value: serde_json::Value) -> JsonObject {
        value.as_object().expect("an object").clone()
    }

    fn error_code(outcome: &ToolOutcome) -> Option<&'static str> {
        outcome.error_code
    }

    #[test]
    fn every_input_field_has_a_description_and_the_output_is_an_object() {
        let tool = definition();
        let properties = tool.input_schema["properties"]
            .as_object()
            .expect("properties");
        assert_eq!(properties.len(), 7);
        for (name, schema) in properties {
            let description = schema["description"].as_str().unwrap_or_default();
            assert!(
                description.len() > 30,
                "`{name}` needs a description written for a model"
            );
        }
        assert_eq!(
            tool.input_schema["required"],
            json!(["query"]),
            "only the query is required"
        );
        assert_eq!(
            properties["search_depth"]["enum"],
            json!(["basic", "advanced", "fast", "ultra-fast"])
        );
        assert_eq!(properties["max_results"]["maximum"], json!(20));
        assert_eq!(
            properties["max_results"]["default"],
            json!(5),
            "the real default is stated"
        );
        assert!(
            properties["time_range"].get("default").is_none(),
            "no null defaults"
        );
        let output = tool.output_schema.expect("an output schema");
        assert_eq!(output["type"], "object");
    }

    #[test]
    fn the_enums_in_the_schema_are_the_domain_spellings() {
        let tool = definition();
        let props = &tool.input_schema["properties"];
        assert_eq!(props["search_depth"]["enum"], json!(SearchDepth::VALUES));
        assert_eq!(props["topic"]["enum"], json!(Topic::VALUES));
        assert_eq!(props["time_range"]["enum"], json!(TimeRange::VALUES));
    }

    #[test]
    fn arguments_parse_into_a_request() {
        let request = parse(args(json!({
            "query": "  rust  ", "max_results": 7, "search_depth": "advanced", "topic": "news",
            "time_range": "week", "include_domains": ["docs.rs"], "exclude_domains": ["x.com"]
        })))
        .expect("valid");
        assert_eq!(request.query().as_str(), "rust");
        assert_eq!(request.max_results().get(), 7);
        assert_eq!(request.depth(), SearchDepth::Advanced);
        assert_eq!(request.time_range(), Some(TimeRange::Week));
        assert_eq!(request.exclude_domains(), ["x.com"]);
    }

    #[test]
    fn bad_arguments_name_their_field() {
        let cases = [
            (json!({}), "query", "missing query"),
            (json!({ "query": 5 }), "query", "wrong type"),
            (json!({ "query": "" }), "query", "empty"),
            (
                json!({ "query": "q", "max_results": 0 }),
                "max_results",
                "zero",
            ),
            (
                json!({ "query": "q", "max_results": "5" }),
                "max_results",
                "a string",
            ),
            (
                json!({ "query": "q", "topic": "sports" }),
                "topic",
                "unknown topic",
            ),
            (
                json!({ "query": "q", "include_domains": "docs.rs" }),
                "include_domains",
                "not a list",
            ),
            (
                json!({ "query": "q", "colour": "red" }),
                "arguments",
                "unknown argument",
            ),
        ];
        for (value, field, reason) in cases {
            let err = parse(args(value)).expect_err(reason);
            assert_eq!(err.field, field, "{reason}: {}", err.message);
        }
        let unknown = parse(args(json!({ "query": "q", "colour": "red" }))).unwrap_err();
        assert!(
            unknown.message.contains("colour"),
            "the unknown argument is named: {}",
            unknown.message
        );
    }

    #[tokio::test]
    async fn results_come_back_structured_and_readable() {
        let outcome = call(
            &MockSearchProvider,
            Some(args(json!({ "query": "tokio", "max_results": 2 }))),
        )
        .await;
        assert_eq!(error_code(&outcome), None);
        assert_eq!(outcome.result.is_error, Some(false));
        let output: WebSearchOutput =
            serde_json::from_value(outcome.result.structured_content.clone().unwrap()).unwrap();
        assert_eq!(output.provider, "mock");
        assert_eq!(output.results.len(), 2);
        let text = outcome.result.content[0].as_text().unwrap().text.clone();
        assert!(
            text.contains("placeholder results"),
            "mock data is labelled: {text}"
        );
        assert!(text.contains("1. [mock] tokio — result 1"), "{text}");
    }

    #[tokio::test]
    async fn a_provider_that_returns_too_many_results_is_cut_to_max_results() {
        let mut provider = MockSearchPort::new();
        provider.expect_name().return_const("greedy");
        provider.expect_search().returning(|request| {
            let hit = SearchResult {
                title: "t".into(),
                url: "https://example.com".into(),
                content: "c".into(),
                score: 0.5,
                published_date: None,
            };
            Ok(SearchResults {
                query: request.query().as_str().to_owned(),
                results: vec![hit; 9],
            })
        });
        let outcome = call(
            &provider,
            Some(args(json!({ "query": "q", "max_results": 3 }))),
        )
        .await;
        let output: WebSearchOutput =
            serde_json::from_value(outcome.result.structured_content.unwrap()).unwrap();
        assert_eq!(output.results.len(), 3);
    }

    #[tokio::test]
    async fn search_errors_become_tool_errors_with_a_code_and_advice() {
        let cases: Vec<(SearchError, &str, &str)> = vec![
            (
                SearchError::RateLimited {
                    retry_after: Some(Duration::from_secs(12)),
                },
                "upstream_rate_limited",
                "Retry in 12 seconds",
            ),
            (
                SearchError::BackendUnauthorized,
                "upstream_unauthorized",
                "API key",
            ),
            (
                SearchError::QuotaExhausted,
                "upstream_quota_exhausted",
                "credits",
            ),
            (
                SearchError::Rejected {
                    reason: "query too long".into(),
                },
                "upstream_rejected",
                "query too long",
            ),
            (
                SearchError::Unavailable {
                    reason: "503".into(),
                },
                "upstream_unavailable",
                "Retry in a few seconds",
            ),
            (
                SearchError::Timeout,
                "upstream_timeout",
                "did not answer in time",
            ),
            (
                SearchError::Unexpected(anyhow::anyhow!("secret detail")),
                "internal_error",
                "internal error",
            ),
        ];
        for (error, code, phrase) in cases {
            let mut provider = MockSearchPort::new();
            provider.expect_name().return_const("failing");
            let error = std::sync::Mutex::new(Some(error));
            provider
                .expect_search()
                .returning(move |_| Err(error.lock().unwrap().take().unwrap()));
            let outcome = call(&provider, Some(args(json!({ "query": "q" })))).await;
            assert_eq!(outcome.error_code, Some(code));
            assert_eq!(outcome.result.is_error, Some(true));
            assert!(
                outcome.result.structured_content.is_none(),
                "error results carry no structured content"
            );
            let text = &outcome.result.content[0].as_text().unwrap().text;
            assert!(text.contains(phrase), "{code}: {text}");
            assert!(
                !text.contains("secret detail"),
                "internal details stay in the logs"
            );
            let meta = outcome.result.meta.as_ref().unwrap();
            assert_eq!(meta.0.get(ERROR_META_KEY).unwrap()["code"], code);
        }
    }
}
