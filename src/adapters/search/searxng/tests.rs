//! SearXNG against a loopback fake: the exact request sent, every failure (including the 200
//! that hides one), and how answers map to results.

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers::any};

use super::*;
use crate::domain::search::TimeRange;

async fn fake(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(answer).mount(&server).await;
    server
}

fn provider(server: &MockServer) -> SearxngSearchProvider {
    SearxngSearchProvider::new(
        &Url::parse(&server.uri()).unwrap(),
        Deadlines::default(),
        Client::new(),
    )
}

async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "one call, no retries in the adapter");
    requests.remove(0)
}

fn search(options: SearchOptions) -> SearchRequest {
    SearchRequest::new(options).unwrap()
}

fn answer(results: Value, unresponsive: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "query": "q", "number_of_results": 0, "results": results, "answers": [],
        "corrections": [], "infoboxes": [], "suggestions": [], "unresponsive_engines": unresponsive
    }))
}

#[tokio::test]
async fn a_time_range_reaches_searxng_and_nothing_else_is_added() {
    for (range, sent) in [
        (TimeRange::Day, "day"),
        (TimeRange::Week, "week"),
        (TimeRange::Month, "month"),
        (TimeRange::Year, "year"),
    ] {
        let server = fake(answer(json!([]), json!([]))).await;
        let request = search(SearchOptions {
            max_results: Some(3),
            time_range: Some(range),
            ..SearchOptions::query("\"async trait\" rust")
        });
        provider(&server).search(&request).await.unwrap();
        let got = only_request(&server).await;
        assert_eq!(got.method.as_str(), "GET");
        assert_eq!(got.url.path(), "/search");
        assert_eq!(
            got.url.query().map(str::to_owned),
            Some(format!(
                "q=%22async+trait%22+rust&format=json&time_range={sent}"
            ))
        );
        assert_eq!(got.headers["accept"], "application/json");
        assert!(
            !got.headers.contains_key("authorization"),
            "SearXNG has no key"
        );
    }
}

#[tokio::test]
async fn a_plain_search_sends_the_query_and_json_format_only() {
    let server = fake(answer(json!([]), json!([]))).await;
    provider(&server)
        .search(&search(SearchOptions::query("rust lang")))
        .await
        .unwrap();
    let got = only_request(&server).await;
    assert_eq!(got.url.query(), Some("q=rust+lang&format=json"));
}

#[tokio::test]
async fn scores_are_normalised_and_hits_deduplicated_then_cut() {
    let server = fake(answer(
        json!([
            {"url": "https://a.example/", "title": "A", "content": "a", "score": 4.0,
             "publishedDate": "2025-01-15T00:00:00", "engine": "brave", "engines": ["brave"]},
            {"url": "https://a.example", "title": "A again", "content": "dup", "score": 3.0},
            {"url": "https://b.example/", "title": null, "content": null, "score": 1.0,
             "publishedDate": null},
            {"url": "https://c.example/", "title": "C", "score": "0.5"},
            {"title": "no address"}
        ]),
        json!([["google", "timeout"]]),
    ))
    .await;
    let request = search(SearchOptions {
        max_results: Some(3),
        ..SearchOptions::query("q")
    });
    let results = provider(&server).search(&request).await.unwrap();
    let got: Vec<(&str, f64)> = results
        .results
        .iter()
        .map(|r| (r.url.as_str(), r.score))
        .collect();
    assert_eq!(
        got,
        [
            ("https://a.example/", 1.0),
            ("https://b.example/", 0.25),
            ("https://c.example/", 0.125)
        ],
        "divided by the best score; one engine failing does not fail the search"
    );
    assert_eq!(
        results.results[0].published_date.as_deref(),
        Some("2025-01-15T00:00:00")
    );
    assert_eq!(results.results[1].title, "");
    assert_eq!(results.results[1].content, "");
    assert_eq!(results.results[1].published_date, None);
}

#[tokio::test]
async fn hits_without_scores_are_ranked_by_position() {
    let server = fake(answer(
        json!([{"url": "https://a.example/"}, {"url": "https://b.example/", "score": null}]),
        json!([]),
    ))
    .await;
    let results = provider(&server)
        .search(&search(SearchOptions::query("q")))
        .await
        .unwrap();
    let scores: Vec<f64> = results.results.iter().map(|r| r.score).collect();
    assert_eq!(scores, [1.0, 0.5]);
}

#[tokio::test]
async fn no_hit_because_every_engine_failed_is_unavailable() {
    let server = fake(answer(
        json!([]),
        json!([["google", "timeout"], ["bing", "access denied"]]),
    ))
    .await;
    match provider(&server)
        .search(&search(SearchOptions::query("q")))
        .await
    {
        Err(SearchError::Unavailable { reason }) => assert_eq!(
            reason,
            "every engine failed: google (timeout), bing (access denied)"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn no_hit_with_every_engine_answering_is_an_empty_result() {
    let server = fake(answer(json!([]), json!([]))).await;
    let results = provider(&server)
        .search(&search(SearchOptions::query("q")))
        .await
        .unwrap();
    assert!(results.results.is_empty());
}

#[tokio::test]
async fn an_html_page_instead_of_json_is_unexpected() {
    let server =
        fake(ResponseTemplate::new(200).set_body_raw("<!DOCTYPE html><html></html>", "text/html"))
            .await;
    let error = provider(&server)
        .search(&search(SearchOptions::query("q")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "internal_error");
}

#[test]
fn statuses_map_to_the_documented_errors() {
    let cases = [
        (403, "upstream_not_in_plan"),
        (400, "upstream_rejected"),
        (429, "upstream_rate_limited"),
        (500, "upstream_unavailable"),
        (502, "upstream_unavailable"),
        (404, "internal_error"),
    ];
    for (status, code) in cases {
        let error = status_error(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            b"",
        );
        assert_eq!(error.code(), code, "HTTP {status}");
    }
    match status_error(StatusCode::FORBIDDEN, &HeaderMap::new(), b"") {
        error @ SearchError::NotInPlan { .. } => {
            assert!(error.is_permanent(), "only the operator can switch JSON on");
            assert!(error.to_string().contains("search.formats"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("5"));
    match status_error(StatusCode::TOO_MANY_REQUESTS, &headers, b"") {
        SearchError::RateLimited { retry_after } => {
            assert_eq!(retry_after, Some(Duration::from_secs(5)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_probe_explains_json_output_switched_off() {
    let server = fake(ResponseTemplate::new(403)).await;
    let problem = provider(&server).probe().await.unwrap_err();
    assert!(problem.contains("search.formats"), "{problem}");
    assert!(
        problem.contains("SEARCHGATE_SEARCH__SEARXNG__BASE_URL or SEARXNG_URL"),
        "{problem}"
    );
}

#[tokio::test]
async fn the_probe_reports_a_working_instance() {
    let server = fake(answer(json!([{"url": "https://a.example/"}]), json!([]))).await;
    assert_eq!(
        provider(&server).probe().await.unwrap(),
        "searxng answered a search with 1 result (JSON output is on)"
    );
}

#[test]
fn it_claims_exactly_the_arguments_it_maps() {
    let provider = SearxngSearchProvider::new(
        &Url::parse("http://searxng:8080").unwrap(),
        Deadlines::default(),
        Client::new(),
    );
    let claimed: Vec<&str> = provider
        .supports(&SearchRequest::new(SearchOptions::query("q")).unwrap())
        .iter()
        .map(SearchArgument::as_str)
        .collect();
    assert_eq!(claimed, ["max_results", "time_range"]);
}

#[test]
fn a_password_in_the_base_url_never_shows_in_debug_output() {
    let provider = SearxngSearchProvider::new(
        &Url::parse("https://me:hunter2@search.example/searxng/").unwrap(),
        Deadlines::default(),
        Client::new(),
    );
    let printed = format!("{provider:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(
        printed.contains("https://me:redacted@search.example/searxng/search"),
        "{printed}"
    );
}
