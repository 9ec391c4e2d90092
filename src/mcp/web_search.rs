//! The `web_search` tool: its schemas, the parsing of its arguments into a `SearchRequest`, and
//! the mapping of results into a tool result a model can act on.

use std::{borrow::Cow, sync::OnceLock};

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::tool::{self, ImageOut, ServedOut, ToolOutcome};
use crate::domain::search::{
    AnswerDepth, CallStats, Caller, ContentFormat, Date, InvalidInput, SearchArguments,
    SearchDepth, SearchOptions, SearchRequest, SearchResults, SearchService, TimeRange, Topic,
};

/// The tool's name.
pub const NAME: &str = "web_search";

/// A boolean, or the name of a mode (`include_answer`, `include_raw_content`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Switch {
    /// `true` for the default mode, `false` for off.
    On(bool),
    /// A named mode.
    Mode(String),
}

/// The arguments of `web_search`, as a model sends them.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WebSearchArgs {
    /// What to search the web for: a question or keywords, 1–400 characters. Be specific:
    /// include names, versions, places and dates that matter. Search one topic at a time.
    #[schemars(length(min = 1, max = 400))]
    pub query: String,
    /// How many results to return, from 0 to 20. Defaults to 5. Ask for more only when you need
    /// breadth; fewer results are faster. 0 with include_answer returns only the answer.
    #[serde(default)]
    #[schemars(with = "i64", range(min = 0, max = 20))]
    pub max_results: Option<i64>,
    /// How thoroughly to search: "basic" (the default; one summary per page), "advanced"
    /// (several relevant excerpts per page; slower and costs twice as much), "fast" (excerpts
    /// with lower latency) or "ultra-fast" (the lowest latency, one summary per page).
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = SearchDepth::VALUES))]
    pub search_depth: Option<String>,
    /// The kind of sources to favour: "general" (the default), "news" (recent articles, with
    /// publication dates) or "finance".
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = Topic::VALUES))]
    pub topic: Option<String>,
    /// Only return pages from the last "day", "week", "month" or "year". Leave it out to search
    /// all time. Do not combine with start_date or end_date.
    #[serde(default)]
    #[schemars(with = "String", extend("enum" = TimeRange::VALUES))]
    pub time_range: Option<String>,
    /// Only return pages published on or after this date, written YYYY-MM-DD (e.g. 2025-01-31).
    #[serde(default)]
    #[schemars(with = "String", extend("format" = "date"))]
    pub start_date: Option<String>,
    /// Only return pages published on or before this date, written YYYY-MM-DD.
    #[serde(default)]
    #[schemars(with = "String", extend("format" = "date"))]
    pub end_date: Option<String>,
    /// How many relevant excerpts to return per page, from 1 to 3 (default 3). Only with
    /// search_depth "advanced" or "fast".
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 3))]
    pub chunks_per_source: Option<i64>,
    /// Also write a short answer to the query from the results: true or "basic" for a brief
    /// answer, "advanced" for a detailed one. Off by default; you can usually answer yourself.
    #[serde(default)]
    pub include_answer: Option<Switch>,
    /// Also return each page's full text: true or "markdown" for markdown, "text" for plain
    /// text. Off by default; it makes results much longer.
    #[serde(default)]
    pub include_raw_content: Option<Switch>,
    /// Also return image URLs related to the query. Off by default.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub include_images: Option<bool>,
    /// With include_images, also describe each image in words. Off by default.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub include_image_descriptions: Option<bool>,
    /// Also return each result's favicon URL. Off by default.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub include_favicon: Option<bool>,
    /// Only return results from these domains, such as ["docs.rs", "*.gov", "linkedin.com/in"].
    /// At most 300. Leave it out to search the whole web.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 300))]
    pub include_domains: Option<Vec<String>>,
    /// Never return results from these domains, such as ["pinterest.com"]. At most 150.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 150))]
    pub exclude_domains: Option<Vec<String>>,
    /// Favour results from one country, by its English name, such as "united states" or
    /// "germany". Only with topic "general".
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 60))]
    pub country: Option<String>,
    /// Let the backend choose topic, depth and time range from the query (may switch to the
    /// dearer "advanced" depth). Off by default; options you set yourself still apply.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub auto_parameters: Option<bool>,
    /// Only return pages that contain the quoted phrases of the query verbatim, e.g. for the
    /// query "\"rust borrow checker\" errors". Off by default.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub exact_match: Option<bool>,
    /// Ask one search backend by name, with no fallback to the others. Leave it out to let
    /// searchgate use the first healthy backend in the operator's order.
    #[serde(default)]
    #[schemars(with = "String")]
    pub provider: Option<String>,
}

/// The structured result of `web_search`. Its text borrows from the search results (which the
/// cache may share), so building it copies no page text; read back, it owns its text.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WebSearchOutput<'a> {
    /// The query that was run, trimmed.
    pub query: Cow<'a, str>,
    /// Which search backend answered ("mock" results are placeholders, not web pages).
    pub provider: Cow<'a, str>,
    /// Arguments you set that this backend cannot honour, so they did not shape the results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<Cow<'a, str>>,
    /// An answer written from the results, when include_answer was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Cow<'a, str>>,
    /// Images related to the query, when include_images was set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageOut>,
    /// The results, most relevant first.
    pub results: Vec<WebSearchHit<'a>>,
    /// How the call was served.
    #[serde(flatten)]
    pub served: ServedOut,
}

/// One search result.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WebSearchHit<'a> {
    /// The page title.
    pub title: Cow<'a, str>,
    /// The page URL; cite it when you use the result.
    pub url: Cow<'a, str>,
    /// A summary or the most relevant excerpt of the page.
    pub content: Cow<'a, str>,
    /// Relevance from 0 (weak) to 1 (strong).
    pub score: f64,
    /// When the page was published, when known (news results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_date: Option<Cow<'a, str>>,
    /// The page's full text, when include_raw_content was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_content: Option<Cow<'a, str>>,
    /// The page's favicon URL, when include_favicon was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub favicon: Option<Cow<'a, str>>,
    /// Images on the page, when the backend sent them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageOut>,
}

/// The tool's definition for `tools/list`; `providers` are the backends that search, which the
/// `provider` argument may name.
pub fn definition(providers: &[&str]) -> Tool {
    let input = tool::input_schema::<WebSearchArgs>(
        &[
            ("max_results", json!(5)),
            ("search_depth", json!("basic")),
            ("topic", json!("general")),
            ("include_answer", json!(false)),
            ("include_raw_content", json!(false)),
            ("include_images", json!(false)),
            ("include_image_descriptions", json!(false)),
            ("include_favicon", json!(false)),
            ("auto_parameters", json!(false)),
            ("exact_match", json!(false)),
        ],
        &[
            (
                "include_answer",
                json!({ "anyOf": [
                    { "type": "boolean" },
                    { "type": "string", "enum": AnswerDepth::VALUES }
                ], "default": false }),
            ),
            (
                "include_raw_content",
                json!({ "anyOf": [
                    { "type": "boolean" },
                    { "type": "string", "enum": ContentFormat::VALUES }
                ], "default": false }),
            ),
            ("provider", json!({ "type": "string", "enum": providers })),
        ],
    );
    tool::web_tool::<WebSearchOutput>(
        NAME,
        "Web search",
        "Search the web and return ranked results, each with a title, URL, an excerpt of the \
         page and a relevance score; optionally an answer, images and full page text. Use it for \
         current events, facts you are unsure of, and documentation; cite the URLs you rely on.",
        input,
    )
}

/// Runs `web_search` with raw arguments.
pub async fn call(
    service: &SearchService,
    caller: &Caller,
    arguments: Option<JsonObject>,
) -> ToolOutcome {
    tool::run(
        NAME,
        parse(arguments, service),
        async |call: &SearchCall| Some(service.search(caller, &call.request, call.only).await),
        "Retry, perhaps with search_depth \"basic\" or fewer results.",
        |call, results, stats| {
            let unsupported = service.unsupported(stats.provider, &call.request);
            success(
                results,
                call.request.max_results().get(),
                unsupported,
                stats,
            )
        },
    )
    .await
}

/// A boolean-or-mode argument: `true` is `on`, `false` is off, a name is that mode.
fn switch<T: std::str::FromStr<Err = InvalidInput>>(
    field: &'static str,
    value: Option<Switch>,
    on: T,
) -> Result<Option<T>, InvalidInput> {
    match value {
        None | Some(Switch::On(false)) => Ok(None),
        Some(Switch::On(true)) => Ok(Some(on)),
        Some(Switch::Mode(name)) => name
            .parse()
            .map(Some)
            .map_err(|e| InvalidInput { field, ..e }),
    }
}

fn date(field: &'static str, value: Option<String>) -> Result<Option<Date>, InvalidInput> {
    value.map(|raw| Date::parse(field, &raw)).transpose()
}

/// A parsed call: the request, and the backend the caller insisted on.
struct SearchCall {
    request: SearchRequest,
    only: Option<&'static str>,
}

/// The call; a backend the caller names must search and honour every argument set (with no
/// fallback, an argument it cannot honour would be silently lost).
fn parse(
    arguments: Option<JsonObject>,
    service: &SearchService,
) -> Result<SearchCall, InvalidInput> {
    static FIELDS: OnceLock<Vec<String>> = OnceLock::new();
    let args: WebSearchArgs = tool::parse_args(arguments, &FIELDS)?;
    let provider = args.provider.clone();
    let request = options(args)?;
    let Some(name) = provider else {
        return Ok(SearchCall {
            request,
            only: None,
        });
    };
    let backends = service.backends();
    let Some(backend) = backends.named(&name).filter(|b| b.search.is_some()) else {
        let names: Vec<&str> = backends
            .iter()
            .filter(|b| b.search.is_some())
            .map(|b| b.name)
            .collect();
        return Err(InvalidInput {
            field: "provider",
            message: format!("`{name}` is not one of: {}", names.join(", ")),
        });
    };
    if let Some(argument) = service.unsupported(backend.name, &request).iter().next() {
        return Err(InvalidInput {
            field: argument.as_str(),
            message: format!(
                "the `{}` backend cannot honour it; leave it out, or leave provider out so \
                 searchgate picks a backend and reports what it could not honour",
                backend.name
            ),
        });
    }
    Ok(SearchCall {
        request,
        only: Some(backend.name),
    })
}

fn options(args: WebSearchArgs) -> Result<SearchRequest, InvalidInput> {
    SearchRequest::new(SearchOptions {
        query: args.query,
        max_results: args.max_results,
        depth: tool::parse_opt(args.search_depth)?,
        topic: tool::parse_opt(args.topic)?,
        time_range: tool::parse_opt(args.time_range)?,
        start_date: date("start_date", args.start_date)?,
        end_date: date("end_date", args.end_date)?,
        chunks_per_source: args.chunks_per_source,
        include_answer: switch("include_answer", args.include_answer, AnswerDepth::Basic)?,
        include_raw_content: switch(
            "include_raw_content",
            args.include_raw_content,
            ContentFormat::Markdown,
        )?,
        include_images: args.include_images.unwrap_or(false),
        include_image_descriptions: args.include_image_descriptions.unwrap_or(false),
        include_favicon: args.include_favicon.unwrap_or(false),
        include_domains: args.include_domains.unwrap_or_default(),
        exclude_domains: args.exclude_domains.unwrap_or_default(),
        country: args.country,
        auto_parameters: args.auto_parameters.unwrap_or(false),
        exact_match: args.exact_match.unwrap_or(false),
    })
}

pub(super) fn success(
    results: &SearchResults,
    max: usize,
    unsupported: SearchArguments,
    stats: CallStats,
) -> ToolOutcome {
    let output = WebSearchOutput {
        query: Cow::Borrowed(&results.query),
        provider: Cow::Borrowed(stats.provider),
        unsupported: unsupported
            .iter()
            .map(|argument| Cow::Borrowed(argument.as_str()))
            .collect(),
        answer: borrowed(results.answer.as_ref()),
        images: tool::images(&results.images),
        // The port promises at most `max`; hold any provider to it.
        results: results
            .results
            .iter()
            .take(max)
            .map(|r| WebSearchHit {
                title: Cow::Borrowed(&r.title),
                url: Cow::Borrowed(&r.url),
                content: Cow::Borrowed(&r.content),
                score: r.score,
                published_date: borrowed(r.published_date.as_ref()),
                raw_content: borrowed(r.raw_content.as_ref()),
                favicon: borrowed(r.favicon.as_ref()),
                images: tool::images(&r.images),
            })
            .collect(),
        served: ServedOut::new(&stats, &results.usage),
    };
    let text = readable(&output);
    ToolOutcome::success(&output, text, stats, &results.usage)
}

fn borrowed(text: Option<&String>) -> Option<Cow<'_, str>> {
    text.map(|t| Cow::Borrowed(t.as_str()))
}

/// A plain-text rendering for clients that show text only. Appended piece by piece rather
/// than with `write!`: it runs on every search, and the formatting machinery cost more than
/// the copying.
fn readable(output: &WebSearchOutput<'_>) -> String {
    let capacity = 256
        + output
            .results
            .iter()
            .map(|hit| hit.title.len() + hit.url.len() + hit.content.len() + 32)
            .sum::<usize>();
    let mut text = String::with_capacity(capacity);
    if output.provider == "mock" {
        text.push_str(
            "Note: these are placeholder results from searchgate's mock provider, not real web \
             pages.\n\n",
        );
    }
    if !output.unsupported.is_empty() {
        let names: Vec<&str> = output.unsupported.iter().map(|n| n.as_ref()).collect();
        push_all(
            &mut text,
            &[
                "Note: the ",
                &output.provider,
                " backend cannot honour ",
                &names.join(", "),
                "; the results are not filtered or shaped by it.\n\n",
            ],
        );
    }
    if let Some(answer) = &output.answer {
        push_all(&mut text, &["Answer: ", answer, "\n\n"]);
    }
    let mut digits = itoa::Buffer::new();
    let count = digits.format(output.results.len());
    push_all(
        &mut text,
        &[count, " results for \"", &output.query, "\":\n"],
    );
    for (rank, hit) in output.results.iter().enumerate() {
        let mut digits = itoa::Buffer::new();
        let rank = digits.format(rank + 1);
        push_all(
            &mut text,
            &[
                "\n",
                rank,
                ". ",
                &hit.title,
                "\n   ",
                &hit.url,
                "\n   ",
                &hit.content,
                "\n",
            ],
        );
        if let Some(date) = &hit.published_date {
            push_all(&mut text, &["   Published: ", date, "\n"]);
        }
        if let Some(raw) = &hit.raw_content {
            push_all(&mut text, &["   Full text:\n", raw, "\n"]);
        }
    }
    if !output.images.is_empty() {
        text.push_str("\nImages:\n");
        for image in &output.images {
            match &image.description {
                Some(description) => {
                    push_all(&mut text, &["- ", &image.url, " — ", description, "\n"])
                }
                None => push_all(&mut text, &["- ", &image.url, "\n"]),
            }
        }
    }
    text
}

fn push_all(text: &mut String, parts: &[&str]) {
    for part in parts {
        text.push_str(part);
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::{
        adapters::search::MockSearchProvider,
        domain::search::{MockSearchPort, SearchError, SearchResult, ServicePolicy, WebBackend},
        mcp::tool::ERROR_META_KEY,
    };

    fn args(value: serde_json::Value) -> Option<JsonObject> {
        Some(value.as_object().expect("an object").clone())
    }

    fn service(provider: impl crate::domain::search::SearchProvider) -> SearchService {
        SearchService::new(
            WebBackend::search_only(Arc::new(provider)),
            ServicePolicy {
                cache_ttl: Duration::ZERO,
                calls_per_minute: 0,
                ..ServicePolicy::default()
            },
        )
    }

    /// The request `arguments` parse into, with the mock as the only backend.
    fn request_of(arguments: Option<JsonObject>) -> Result<SearchRequest, InvalidInput> {
        parse(arguments, &service(MockSearchProvider)).map(|call| call.request)
    }

    async fn run(
        provider: impl crate::domain::search::SearchProvider,
        value: serde_json::Value,
    ) -> ToolOutcome {
        call(&service(provider), &Caller::Anonymous, args(value)).await
    }

    #[test]
    fn every_input_field_has_a_description_and_the_output_is_an_object() {
        let tool = definition(&["mock"]);
        tool::assert_input_schema(
            &tool,
            &[
                "auto_parameters",
                "chunks_per_source",
                "country",
                "end_date",
                "exact_match",
                "exclude_domains",
                "include_answer",
                "include_domains",
                "include_favicon",
                "include_image_descriptions",
                "include_images",
                "include_raw_content",
                "max_results",
                "provider",
                "query",
                "search_depth",
                "start_date",
                "time_range",
                "topic",
            ],
            "query",
        );
        let properties = &tool.input_schema["properties"];
        assert_eq!(
            properties["search_depth"]["enum"],
            json!(["basic", "advanced", "fast", "ultra-fast"])
        );
        assert_eq!(properties["max_results"]["maximum"], json!(20));
        assert_eq!(properties["max_results"]["minimum"], json!(0));
        assert_eq!(
            properties["max_results"]["default"],
            json!(5),
            "the real default is stated"
        );
        assert!(
            properties["time_range"].get("default").is_none(),
            "no null defaults"
        );
        assert_eq!(
            properties["include_answer"]["anyOf"][1]["enum"],
            json!(["basic", "advanced"]),
            "a boolean or a named mode"
        );
        let output = tool.output_schema.expect("an output schema");
        assert_eq!(output["type"], "object");
    }

    #[test]
    fn the_enums_in_the_schema_are_the_domain_spellings() {
        let tool = definition(&["mock"]);
        let props = &tool.input_schema["properties"];
        assert_eq!(props["search_depth"]["enum"], json!(SearchDepth::VALUES));
        assert_eq!(props["topic"]["enum"], json!(Topic::VALUES));
        assert_eq!(props["time_range"]["enum"], json!(TimeRange::VALUES));
        assert_eq!(
            props["include_raw_content"]["anyOf"][1]["enum"],
            json!(ContentFormat::VALUES)
        );
    }

    #[test]
    fn arguments_parse_into_a_request() {
        let request = request_of(args(json!({
            "query": "  rust  ", "max_results": 7, "search_depth": "advanced", "topic": "news",
            "time_range": "week", "include_domains": ["docs.rs"], "exclude_domains": ["x.com"],
            "chunks_per_source": 2, "include_answer": true, "include_raw_content": "text",
            "include_images": true, "include_image_descriptions": true, "include_favicon": true,
            "auto_parameters": true, "exact_match": true
        })))
        .expect("valid");
        assert_eq!(request.query().as_str(), "rust");
        assert_eq!(request.max_results().get(), 7);
        assert_eq!(request.depth(), SearchDepth::Advanced);
        assert_eq!(request.time_range(), Some(TimeRange::Week));
        assert_eq!(request.exclude_domains(), ["x.com"]);
        assert_eq!(
            request.include_answer(),
            Some(AnswerDepth::Basic),
            "true is basic"
        );
        assert_eq!(request.include_raw_content(), Some(ContentFormat::Text));
        assert!(request.include_image_descriptions() && request.exact_match());
        let dated = request_of(args(json!({
            "query": "q", "start_date": "2025-01-01", "end_date": "2025-02-01", "country": "France"
        })))
        .expect("valid");
        assert_eq!(dated.country(), Some("france"));
        let off = request_of(args(json!({ "query": "q", "include_answer": false }))).unwrap();
        assert_eq!(off.include_answer(), None, "false is off");
    }

    #[test]
    fn bad_arguments_name_their_field() {
        let cases = [
            (json!({}), "query", "missing query"),
            (json!({ "query": 5 }), "query", "wrong type"),
            (json!({ "query": "" }), "query", "empty"),
            (
                json!({ "query": "q", "max_results": 21 }),
                "max_results",
                "too many",
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
                json!({ "query": "q", "include_answer": "long" }),
                "include_answer",
                "unknown answer mode",
            ),
            (
                json!({ "query": "q", "include_raw_content": "html" }),
                "include_raw_content",
                "unknown format",
            ),
            (
                json!({ "query": "q", "start_date": "01/02/2025" }),
                "start_date",
                "not ISO",
            ),
            (
                json!({ "query": "q", "time_range": "day", "end_date": "2025-01-01" }),
                "time_range",
                "range with dates",
            ),
            (
                json!({ "query": "q", "chunks_per_source": 2 }),
                "chunks_per_source",
                "chunks without advanced depth",
            ),
            (
                json!({ "query": "q", "colour": "red" }),
                "arguments",
                "unknown argument",
            ),
        ];
        for (value, field, reason) in cases {
            let err = request_of(args(value)).expect_err(reason);
            assert_eq!(err.field, field, "{reason}: {}", err.message);
        }
        let unknown = request_of(args(json!({ "query": "q", "colour": "red" }))).unwrap_err();
        assert!(
            unknown.message.contains("colour"),
            "the unknown argument is named: {}",
            unknown.message
        );
    }

    #[tokio::test]
    async fn results_come_back_structured_and_readable() {
        let outcome = run(
            MockSearchProvider,
            json!({ "query": "tokio", "max_results": 2, "include_answer": true }),
        )
        .await;
        assert_eq!(outcome.error_code, None);
        assert_eq!(outcome.result.is_error, Some(false));
        let output: WebSearchOutput =
            serde_json::from_value(outcome.result.structured_content.clone().unwrap()).unwrap();
        assert_eq!(output.provider, "mock");
        assert_eq!(output.results.len(), 2);
        assert!(output.answer.is_some(), "the answer is mapped");
        let text = outcome.result.content[0].as_text().unwrap().text.clone();
        assert!(
            text.contains("placeholder results"),
            "mock data is labelled: {text}"
        );
        assert!(text.contains("1. [mock] tokio — result 1"), "{text}");
        assert!(text.contains("Answer: "), "{text}");
    }

    #[tokio::test]
    async fn a_provider_that_returns_too_many_results_is_cut_to_max_results() {
        let mut provider = MockSearchPort::new();
        provider.expect_name().return_const("greedy");
        provider.expect_search().returning(|request| {
            let hit = |n: u32| SearchResult {
                title: "t".into(),
                url: format!("https://example.com/{n}"),
                content: "c".into(),
                score: 0.5,
                ..SearchResult::default()
            };
            Ok(SearchResults {
                query: request.query().as_str().to_owned(),
                results: (1..=9).map(hit).collect(),
                ..SearchResults::default()
            })
        });
        let outcome = run(provider, json!({ "query": "q", "max_results": 3 })).await;
        let output: WebSearchOutput =
            serde_json::from_value(outcome.result.structured_content.unwrap()).unwrap();
        assert_eq!(output.results.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn search_errors_become_tool_errors_with_a_code_and_advice() {
        type Case = (fn() -> SearchError, &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (
                || SearchError::RateLimited {
                    retry_after: Some(Duration::from_secs(12)),
                },
                "upstream_rate_limited",
                "Retry in 12 seconds",
            ),
            (
                || SearchError::BackendUnauthorized,
                "upstream_unauthorized",
                "API key",
            ),
            (
                || SearchError::QuotaExhausted,
                "upstream_quota_exhausted",
                "credits",
            ),
            (
                || SearchError::Rejected {
                    reason: "query too long".into(),
                },
                "upstream_rejected",
                "query too long",
            ),
            (
                || SearchError::Unavailable {
                    reason: "503".into(),
                },
                "upstream_unavailable",
                "Retry in a few seconds",
            ),
            (
                || SearchError::Timeout,
                "upstream_timeout",
                "did not answer in time",
            ),
            (
                || SearchError::TooManyCalls {
                    retry_after: Duration::from_millis(2500),
                },
                "rate_limited",
                "Retry in 3 seconds",
            ),
            (
                || SearchError::Unexpected(anyhow::anyhow!("secret detail")),
                "internal_error",
                "internal error",
            ),
        ];
        for (error, code, phrase) in cases {
            let mut provider = MockSearchPort::new();
            provider.expect_name().return_const("failing");
            provider.expect_search().returning(move |_| Err(error()));
            let outcome = run(provider, json!({ "query": "q" })).await;
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
