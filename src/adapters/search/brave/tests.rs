//! Brave against a loopback fake: the exact request sent, every documented failure, and how
//! answers map to results.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers::any};

use super::*;
use crate::domain::search::TimeRange;

async fn fake(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(answer).mount(&server).await;
    server
}

fn provider(server: &MockServer) -> BraveSearchProvider {
    BraveSearchProvider::new(
        &Url::parse(&format!("{}/", server.uri())).unwrap(),
        "brave-key",
        Deadlines::default(),
        Client::new(),
    )
    .unwrap()
}

async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "one call, no retries in the adapter");
    requests.remove(0)
}

fn search(options: SearchOptions) -> SearchRequest {
    SearchRequest::new(options).unwrap()
}

fn web(results: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"type": "search", "web": {"results": results}}))
}

#[tokio::test]
async fn every_honoured_argument_reaches_brave_under_its_documented_name() {
    let server = fake(web(json!([]))).await;
    let request = search(SearchOptions {
        max_results: Some(3),
        time_range: Some(TimeRange::Week),
        include_domains: vec!["docs.rs".into(), "*.rust-lang.org".into()],
        exclude_domains: vec!["spam.example".into()],
        country: Some("germany".into()),
        include_favicon: true,
        exact_match: true,
        ..SearchOptions::query("\"async trait\" rust")
    });
    provider(&server).search(&request).await.unwrap();
    let sent = only_request(&server).await;
    assert_eq!(sent.method.as_str(), "GET");
    assert_eq!(sent.url.path(), "/res/v1/web/search");
    assert_eq!(
        sent.url.query(),
        Some(
            "q=%22async+trait%22+rust+site%3Adocs.rs+OR+site%3Arust-lang.org+-site%3Aspam.example\
             &count=3&text_decorations=false&freshness=pw&country=DE"
        )
    );
    assert_eq!(sent.headers["x-subscription-token"], "brave-key");
    assert_eq!(sent.headers["accept"], "application/json");
    assert!(
        !sent.headers.contains_key("authorization"),
        "the key goes in its own header only"
    );
    assert!(sent.body.is_empty());
}

#[tokio::test]
async fn a_plain_search_sends_only_the_deliberate_parameters() {
    let server = fake(web(json!([]))).await;
    provider(&server)
        .search(&search(SearchOptions::query("rust lang")))
        .await
        .unwrap();
    let sent = only_request(&server).await;
    assert_eq!(
        sent.url.query(),
        Some("q=rust+lang&count=5&text_decorations=false")
    );
}

#[tokio::test]
async fn an_unknown_country_is_left_out_not_guessed() {
    let server = fake(web(json!([]))).await;
    provider(&server)
        .search(&search(SearchOptions {
            country: Some("atlantis".into()),
            ..SearchOptions::query("q")
        }))
        .await
        .unwrap();
    let sent = only_request(&server).await;
    assert_eq!(
        sent.url.query(),
        Some("q=q&count=5&text_decorations=false"),
        "no country parameter; the core reports country as unsupported"
    );
}

#[tokio::test]
async fn results_are_plain_text_ranked_deduplicated_and_cut_to_max_results() {
    let server = fake(web(json!([
        {"title": "<strong>Rust</strong> &amp; you", "url": "https://a.example/",
         "description": "The <strong>Rust</strong> book", "extra_snippets": ["more", ""],
         "page_age": "2025-01-15T00:00:00", "age": "January 15, 2025",
         "meta_url": {"favicon": "https://a.example/f.ico"}},
        {"title": null, "url": "https://a.example/?utm_source=x", "description": "dup"},
        {"title": "B", "url": "https://b.example/", "description": null, "extra_snippets": null,
         "age": "2 days ago", "meta_url": null},
        {"title": "C", "url": "https://c.example/"}
    ])))
    .await;
    let request = search(SearchOptions {
        max_results: Some(2),
        ..SearchOptions::query("rust")
    });
    let results = provider(&server).search(&request).await.unwrap();
    let urls: Vec<&str> = results.results.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        ["https://a.example/", "https://b.example/"],
        "duplicate dropped before the cut"
    );
    let first = &results.results[0];
    assert_eq!(first.title, "Rust & you");
    assert_eq!(first.content, "The Rust book\nmore");
    assert_eq!(first.published_date.as_deref(), Some("2025-01-15T00:00:00"));
    assert_eq!(first.favicon, None, "favicons only when asked");
    assert_eq!(first.score, 1.0);
    let second = &results.results[1];
    assert_eq!(second.content, "");
    assert_eq!(second.published_date.as_deref(), Some("2 days ago"));
    assert_eq!(
        second.score,
        1.0 / 3.0,
        "scored by Brave's rank, duplicates included"
    );
    assert_eq!(results.query, "rust");
}

#[tokio::test]
async fn favicons_come_when_asked() {
    let server = fake(web(json!([
        {"title": "A", "url": "https://a.example/", "meta_url": {"favicon": "https://a.example/f.ico"}}
    ])))
    .await;
    let request = search(SearchOptions {
        include_favicon: true,
        ..SearchOptions::query("rust")
    });
    let results = provider(&server).search(&request).await.unwrap();
    assert_eq!(
        results.results[0].favicon.as_deref(),
        Some("https://a.example/f.ico")
    );
}

#[tokio::test]
async fn an_answer_without_web_results_is_zero_results() {
    let server = fake(
        ResponseTemplate::new(200)
            .set_body_json(json!({"type": "search", "query": {"original": "q"}})),
    )
    .await;
    let results = provider(&server)
        .search(&search(SearchOptions::query("q")))
        .await
        .unwrap();
    assert!(results.results.is_empty());
}

#[tokio::test]
async fn zero_max_results_asks_for_one_and_returns_none() {
    let server = fake(web(json!([{"title": "A", "url": "https://a.example/"}]))).await;
    let request = search(SearchOptions {
        max_results: Some(0),
        ..SearchOptions::query("q")
    });
    let results = provider(&server).search(&request).await.unwrap();
    assert!(results.results.is_empty());
    let sent = only_request(&server).await;
    assert!(
        sent.url.query().unwrap().contains("&count=1&"),
        "Brave refuses count=0"
    );
}

#[tokio::test]
async fn a_throttled_call_waits_for_the_first_reset_window() {
    let server = fake(
        ResponseTemplate::new(429)
            .insert_header("x-ratelimit-reset", "1, 1419704")
            .set_body_json(
                json!({"type": "ErrorResponse", "error": {"code": "RATE_LIMITED",
                "status": 429, "meta": {"quota_limit": 15000, "quota_current": 12}}}),
            ),
    )
    .await;
    match provider(&server)
        .search(&search(SearchOptions::query("q")))
        .await
    {
        Err(SearchError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)))
        }
        other => panic!("{other:?}"),
    }
}

fn envelope(status: u16, code: &str, meta: Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"type": "ErrorResponse", "error": {"id": "x", "status": status,
        "code": code, "detail": "Unable to validate request parameter(s)", "meta": meta},
        "time": 1}),
    )
    .unwrap()
}

#[test]
fn codes_and_statuses_map_to_the_documented_errors() {
    let field = |loc: Value, msg: &str| json!({"errors": [{"loc": loc, "msg": msg, "type": "x"}]});
    let cases: Vec<(u16, Vec<u8>, &str)> = vec![
        (
            422,
            envelope(422, "SUBSCRIPTION_TOKEN_INVALID", json!({})),
            "upstream_unauthorized",
        ),
        (
            401,
            envelope(401, "SUBSCRIPTION_TOKEN_INVALID", json!({})),
            "upstream_unauthorized",
        ),
        (401, Vec::new(), "upstream_unauthorized"),
        (403, b"<html>WAF</html>".to_vec(), "upstream_unauthorized"),
        (
            422,
            envelope(
                422,
                "VALIDATION",
                field(json!(["header", "x-subscription-token"]), "Field required"),
            ),
            "upstream_unauthorized",
        ),
        (
            400,
            envelope(
                400,
                "OPTION_NOT_IN_PLAN",
                json!({"component": "authentication"}),
            ),
            "upstream_not_in_plan",
        ),
        (
            422,
            envelope(422, "OPTION_NOT_IN_PLAN", json!({})),
            "upstream_not_in_plan",
        ),
        (
            422,
            envelope(
                422,
                "VALIDATION",
                field(
                    json!(["query", "count"]),
                    "Input should be less than or equal to 20",
                ),
            ),
            "upstream_rejected",
        ),
        (
            422,
            envelope(422, "VALIDATION", json!({})),
            "upstream_rejected",
        ),
        (
            422,
            envelope(422, "SOMETHING_NEW", json!({})),
            "upstream_not_in_plan",
        ),
        (422, Vec::new(), "upstream_not_in_plan"),
        (
            400,
            envelope(400, "VALIDATION", json!({})),
            "upstream_rejected",
        ),
        (
            429,
            envelope(
                429,
                "RATE_LIMITED",
                json!({"quota_limit": 2000, "quota_current": 2000}),
            ),
            "upstream_quota_exhausted",
        ),
        (
            429,
            envelope(
                429,
                "RATE_LIMITED",
                json!({"rate_limit": 1, "rate_current": 2}),
            ),
            "upstream_rate_limited",
        ),
        (429, Vec::new(), "upstream_rate_limited"),
        (500, Vec::new(), "upstream_unavailable"),
        (503, b"oops".to_vec(), "upstream_unavailable"),
        (404, Vec::new(), "internal_error"),
    ];
    for (status, body, code) in &cases {
        let error = status_error(
            StatusCode::from_u16(*status).unwrap(),
            &HeaderMap::new(),
            body,
        );
        assert_eq!(
            error.code(),
            *code,
            "HTTP {status} {}",
            String::from_utf8_lossy(body)
        );
    }
    let body = envelope(
        422,
        "VALIDATION",
        field(
            json!(["query", "count"]),
            "Input should be\n less than or equal to 20",
        ),
    );
    match status_error(StatusCode::UNPROCESSABLE_ENTITY, &HeaderMap::new(), &body) {
        SearchError::Rejected { reason } => {
            assert_eq!(reason, "count: Input should be less than or equal to 20")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn retry_after_wins_over_the_reset_window() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("3"));
    headers.insert("x-ratelimit-reset", HeaderValue::from_static("1, 100"));
    match status_error(StatusCode::TOO_MANY_REQUESTS, &headers, b"") {
        SearchError::RateLimited { retry_after } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_probe_reports_the_plan_limits() {
    let server =
        fake(web(json!([])).insert_header("x-ratelimit-policy", "1;w=1, 15000;w=2592000")).await;
    assert_eq!(
        provider(&server).probe().await.unwrap(),
        "brave answered a one-result search (plan rate limits: 1/s, 15000/month)"
    );
    let sent = only_request(&server).await;
    assert_eq!(
        sent.url.query(),
        Some("q=searchgate&count=1&text_decorations=false")
    );
}

#[tokio::test]
async fn the_probe_names_the_key_setting_when_the_key_is_refused() {
    let server = fake(ResponseTemplate::new(401)).await;
    let problem = provider(&server).probe().await.unwrap_err();
    assert!(
        problem.contains("SEARCHGATE_SEARCH__BRAVE__API_KEY or BRAVE_API_KEY"),
        "{problem}"
    );
}

#[test]
fn the_limit_header_is_reported_as_sent_without_a_policy() {
    let mut headers = HeaderMap::new();
    headers.insert("x-ratelimit-limit", HeaderValue::from_static("1, 15000"));
    assert_eq!(rate_limits(&headers).as_deref(), Some("1, 15000"));
    assert_eq!(rate_limits(&HeaderMap::new()), None);
}

#[test]
fn it_claims_exactly_the_arguments_it_maps() {
    let server_url = Url::parse("https://api.search.brave.com").unwrap();
    let provider =
        BraveSearchProvider::new(&server_url, "k", Deadlines::default(), Client::new()).unwrap();
    let claimed: Vec<&str> = provider
        .supports(&SearchRequest::new(SearchOptions::query("q")).unwrap())
        .iter()
        .map(SearchArgument::as_str)
        .collect();
    assert_eq!(
        claimed,
        [
            "max_results",
            "time_range",
            "start_date",
            "end_date",
            "include_favicon",
            "include_domains",
            "exclude_domains",
            "country",
            "exact_match"
        ]
    );
    let unknown = SearchRequest::new(SearchOptions {
        country: Some("narnia".into()),
        include_domains: (0..60).map(|i| format!("d{i}.com")).collect(),
        ..SearchOptions::query("q")
    })
    .unwrap();
    let honoured = provider.supports(&unknown);
    for (argument, why) in [
        (SearchArgument::Country, "a country without a code"),
        (
            SearchArgument::IncludeDomains,
            "domains that overflow the query",
        ),
        (SearchArgument::SearchDepth, "never"),
    ] {
        assert!(!honoured.contains(argument), "{why}");
    }
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let provider = BraveSearchProvider::new(
        &Url::parse("https://api.search.brave.com/").unwrap(),
        "brave-secret",
        Deadlines::default(),
        Client::new(),
    )
    .unwrap();
    let printed = format!("{provider:?} {:?}", provider.token);
    assert!(!printed.contains("brave-secret"), "{printed}");
    assert_eq!(
        provider.endpoint.as_str(),
        "https://api.search.brave.com/res/v1/web/search"
    );
}
