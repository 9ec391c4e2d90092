//! Exa against a loopback fake: the exact bodies sent, every documented failure, and how
//! search and contents answers map to results.

use chrono::TimeZone;
use serde_json::json;
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers::any};

use super::*;
use crate::domain::search::{
    ContentFormat, Date, ExtractOptions, PageOptions, SearchDepth, TimeRange,
};

async fn fake(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(answer).mount(&server).await;
    server
}

fn provider(server: &MockServer) -> ExaSearchProvider {
    ExaSearchProvider::new(
        &Url::parse(&format!("{}/", server.uri())).unwrap(),
        "exa-key",
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

fn results(results: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"requestId": "req-1", "results": results,
        "searchTime": 0.42, "costDollars": {"total": 0.007, "search": {"neural": 0.007}}}))
}

#[tokio::test]
async fn every_honoured_argument_reaches_exa_under_its_documented_name() {
    let server = fake(results(json!([]))).await;
    let date = |s| Some(Date::parse("d", s).unwrap());
    let request = search(SearchOptions {
        max_results: Some(7),
        depth: Some(SearchDepth::UltraFast),
        start_date: date("2025-01-01"),
        end_date: date("2025-02-28"),
        include_domains: vec!["arxiv.org".into()],
        exclude_domains: vec!["spam.example".into()],
        country: Some("united kingdom".into()),
        include_raw_content: Some(ContentFormat::Text),
        include_favicon: true,
        ..SearchOptions::query("rust async")
    });
    provider(&server).search(&request).await.unwrap();
    let sent = only_request(&server).await;
    assert_eq!(sent.method.as_str(), "POST");
    assert_eq!(sent.url.path(), "/search");
    assert_eq!(sent.headers["x-api-key"], "exa-key");
    assert_eq!(sent.headers["accept"], "application/json");
    assert_eq!(sent.headers["content-type"], "application/json");
    assert!(
        !sent.headers.contains_key("authorization"),
        "the key goes in x-api-key only"
    );
    assert_eq!(
        sent.body_json::<Value>().unwrap(),
        json!({
            "query": "rust async", "numResults": 7, "type": "instant",
            "includeDomains": ["arxiv.org"], "excludeDomains": ["spam.example"],
            "startPublishedDate": "2025-01-01T00:00:00.000Z",
            "endPublishedDate": "2025-02-28T23:59:59.999Z",
            "userLocation": "GB",
            "contents": {"highlights": true, "text": true}
        })
    );
}

#[tokio::test]
async fn a_plain_search_sends_only_the_deliberate_fields() {
    let server = fake(results(json!([]))).await;
    provider(&server)
        .search(&search(SearchOptions::query("rust")))
        .await
        .unwrap();
    let sent = only_request(&server).await;
    assert_eq!(
        sent.body_json::<Value>().unwrap(),
        json!({"query": "rust", "numResults": 5, "contents": {"highlights": true}})
    );
}

#[test]
fn depths_and_time_ranges_have_their_exa_equivalents() {
    let now = chrono::Utc.with_ymd_and_hms(2025, 3, 10, 12, 0, 0).unwrap();
    let body = |options| Value::Object(wire::search_body(&search(options), now).unwrap());
    for (depth, kind) in [
        (SearchDepth::Basic, "auto"),
        (SearchDepth::Fast, "fast"),
        (SearchDepth::UltraFast, "instant"),
        (SearchDepth::Advanced, "deep"),
    ] {
        let sent = body(SearchOptions {
            depth: Some(depth),
            ..SearchOptions::query("q")
        });
        assert_eq!(sent["type"], kind, "{depth:?}");
    }
    for (range, start) in [
        (TimeRange::Day, "2025-03-09T12:00:00.000Z"),
        (TimeRange::Week, "2025-03-03T12:00:00.000Z"),
        (TimeRange::Month, "2025-02-08T12:00:00.000Z"),
        (TimeRange::Year, "2024-03-10T12:00:00.000Z"),
    ] {
        let sent = body(SearchOptions {
            time_range: Some(range),
            ..SearchOptions::query("q")
        });
        assert_eq!(sent["startPublishedDate"], start, "{range:?}");
        assert!(sent.get("endPublishedDate").is_none());
    }
    let unknown = wire::search_body(
        &search(SearchOptions {
            country: Some("atlantis".into()),
            ..SearchOptions::query("q")
        }),
        now,
    );
    assert!(
        unknown.unwrap().get("userLocation").is_none(),
        "an unknown country is left out; the core reports it as unsupported"
    );
}

#[tokio::test]
async fn results_map_with_fallbacks_for_what_exa_leaves_out() {
    let server = fake(results(json!([
        {"id": "https://a.example/", "url": "https://a.example/", "title": null, "score": 0.46,
         "publishedDate": "2023-11-16T01:36:32.547Z", "highlights": ["one", " ", "two"],
         "text": "full text", "favicon": "https://a.example/f.ico"},
        {"url": "https://a.example", "title": "dup", "highlights": ["dup"]},
        {"url": "https://b.example/", "title": "B", "summary": "a summary", "highlights": null,
         "publishedDate": null},
        {"url": "https://c.example/", "title": "C", "text": "0123456789".repeat(60)},
        {"url": "https://d.example/", "title": "D"}
    ])))
    .await;
    let request = search(SearchOptions {
        max_results: Some(3),
        ..SearchOptions::query("q")
    });
    let answer = provider(&server).search(&request).await.unwrap();
    let hits: Vec<(&str, &str, f64)> = answer
        .results
        .iter()
        .map(|r| (r.url.as_str(), r.content.as_str(), r.score))
        .collect();
    assert_eq!(hits[0], ("https://a.example/", "one … two", 0.46));
    assert_eq!(
        hits[1],
        ("https://b.example/", "a summary", 1.0 / 3.0),
        "ranked when unscored"
    );
    assert_eq!(
        hits[2].1.chars().count(),
        500,
        "a text excerpt when nothing else"
    );
    assert_eq!(hits.len(), 3, "duplicate dropped, then cut to max_results");
    let first = &answer.results[0];
    assert_eq!(first.title, "", "a null title is empty");
    assert_eq!(
        first.published_date.as_deref(),
        Some("2023-11-16T01:36:32.547Z")
    );
    assert_eq!(first.raw_content, None, "full text only when asked");
    assert_eq!(first.favicon, None, "favicons only when asked");
    assert_eq!(answer.usage.cost_dollars, Some(0.007));
    assert_eq!(answer.usage.request_id.as_deref(), Some("req-1"));
    assert_eq!(answer.usage.credits, None);
}

#[tokio::test]
async fn raw_content_and_favicons_come_when_asked() {
    let server = fake(results(json!([
        {"url": "https://a.example/", "title": "A", "text": "full text",
         "favicon": "https://a.example/f.ico"}
    ])))
    .await;
    let request = search(SearchOptions {
        include_raw_content: Some(ContentFormat::Markdown),
        include_favicon: true,
        ..SearchOptions::query("q")
    });
    let answer = provider(&server).search(&request).await.unwrap();
    assert_eq!(answer.results[0].raw_content.as_deref(), Some("full text"));
    assert_eq!(
        answer.results[0].favicon.as_deref(),
        Some("https://a.example/f.ico")
    );
}

#[tokio::test]
async fn zero_max_results_asks_for_one_and_returns_none() {
    let server = fake(results(
        json!([{"url": "https://a.example/", "title": "A"}]),
    ))
    .await;
    let request = search(SearchOptions {
        max_results: Some(0),
        ..SearchOptions::query("q")
    });
    assert!(
        provider(&server)
            .search(&request)
            .await
            .unwrap()
            .results
            .is_empty()
    );
    assert_eq!(
        only_request(&server).await.body_json::<Value>().unwrap()["numResults"],
        1
    );
}

#[test]
fn statuses_and_tags_map_to_the_documented_errors() {
    let body = |tag: &str| {
        serde_json::to_vec(
            &json!({"requestId": "r", "error": "Something\n went wrong", "tag": tag}),
        )
        .unwrap()
    };
    let cases: Vec<(u16, Vec<u8>, &str)> = vec![
        (400, body("INVALID_NUM_RESULTS"), "upstream_rejected"),
        (401, body("INVALID_API_KEY"), "upstream_unauthorized"),
        (402, body("NO_MORE_CREDITS"), "upstream_quota_exhausted"),
        (
            402,
            body("API_KEY_BUDGET_EXCEEDED"),
            "upstream_quota_exhausted",
        ),
        (403, body("ACCESS_DENIED"), "upstream_not_in_plan"),
        (403, body("FEATURE_DISABLED"), "upstream_rejected"),
        (403, body("ACCESS_DENIED"), "upstream_not_in_plan"),
        (403, Vec::new(), "upstream_not_in_plan"),
        (403, body("PROHIBITED_CONTENT"), "upstream_rejected"),
        (403, body("ROBOTS_FILTER_FAILED"), "upstream_rejected"),
        (
            429,
            br#"{"error":"rate limit exceeded"}"#.to_vec(),
            "upstream_rate_limited",
        ),
        (500, Vec::new(), "upstream_unavailable"),
        (501, Vec::new(), "upstream_unavailable"),
        (
            503,
            b"<html>gateway</html>".to_vec(),
            "upstream_unavailable",
        ),
        (404, Vec::new(), "internal_error"),
        (409, Vec::new(), "internal_error"),
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
    match status_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), &body("X")) {
        SearchError::Rejected { reason } => assert_eq!(reason, "Something went wrong"),
        other => panic!("{other:?}"),
    }
    match status_error(
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        br#"{"message":"bad"}"#,
    ) {
        SearchError::Rejected { reason } => assert_eq!(reason, "bad", "exa-js reads message too"),
        other => panic!("{other:?}"),
    }
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("2"));
    match status_error(StatusCode::TOO_MANY_REQUESTS, &headers, b"") {
        SearchError::RateLimited { retry_after } => {
            assert_eq!(retry_after, Some(Duration::from_secs(2)))
        }
        other => panic!("{other:?}"),
    }
}

fn extract(urls: &[&str], include_favicon: bool) -> ExtractRequest {
    ExtractRequest::new(ExtractOptions {
        urls: urls.iter().map(|u| (*u).to_owned()).collect(),
        page: PageOptions {
            include_favicon,
            ..PageOptions::default()
        },
        ..ExtractOptions::default()
    })
    .unwrap()
}

#[tokio::test]
async fn extract_reads_text_and_reports_each_failed_url() {
    let server = fake(ResponseTemplate::new(200).set_body_json(json!({
        "requestId": "req-2",
        "results": [{"id": "https://a.example/", "url": "https://a.example/", "title": "A",
                     "text": "page text", "favicon": "https://a.example/f.ico"}],
        "statuses": [
            {"id": "https://a.example/", "status": "success", "source": "cached"},
            {"id": "https://b.example/", "status": "error", "source": "crawled",
             "error": {"tag": "CRAWL_NOT_FOUND", "httpStatusCode": 404}},
            {"id": "https://c.example/", "status": "error", "error": {"tag": "CRAWL_TIMEOUT", "httpStatusCode": null}}
        ],
        "costDollars": {"total": 0.003}
    })))
    .await;
    let request = extract(
        &[
            "https://a.example/",
            "https://b.example/",
            "https://c.example/",
        ],
        true,
    );
    let read = provider(&server).extract(&request).await.unwrap();
    let sent = only_request(&server).await;
    assert_eq!(sent.method.as_str(), "POST");
    assert_eq!(sent.url.path(), "/contents");
    assert_eq!(sent.headers["x-api-key"], "exa-key");
    assert!(!sent.headers.contains_key("authorization"));
    assert_eq!(
        sent.body_json::<Value>().unwrap(),
        json!({"urls": ["https://a.example/", "https://b.example/", "https://c.example/"], "text": true})
    );
    assert_eq!(read.pages.len(), 1);
    assert_eq!(read.pages[0].raw_content, "page text");
    assert_eq!(read.pages[0].title.as_deref(), Some("A"));
    assert_eq!(
        read.pages[0].favicon.as_deref(),
        Some("https://a.example/f.ico")
    );
    let failed: Vec<(&str, &str)> = read
        .failed
        .iter()
        .map(|f| (f.url.as_str(), f.error.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            ("https://b.example/", "CRAWL_NOT_FOUND (HTTP 404)"),
            ("https://c.example/", "CRAWL_TIMEOUT")
        ]
    );
    assert_eq!(read.usage.cost_dollars, Some(0.003));
    assert_eq!(read.usage.request_id.as_deref(), Some("req-2"));
}

#[tokio::test]
async fn a_422_from_contents_is_every_url_failed_not_an_error() {
    let server = fake(ResponseTemplate::new(422).set_body_json(json!({
        "requestId": "req-3", "error": "URL could not be fetched", "tag": "CRAWL_UNKNOWN_ERROR"
    })))
    .await;
    let request = extract(&["https://a.example/", "https://b.example/"], false);
    let read = provider(&server).extract(&request).await.unwrap();
    assert!(read.pages.is_empty());
    let failed: Vec<(&str, &str)> = read
        .failed
        .iter()
        .map(|f| (f.url.as_str(), f.error.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            ("https://a.example/", "URL could not be fetched"),
            ("https://b.example/", "URL could not be fetched")
        ]
    );
    assert_eq!(read.usage.request_id.as_deref(), Some("req-3"));
}

#[tokio::test]
async fn a_422_from_search_is_not_mistaken_for_failed_pages() {
    let server = fake(ResponseTemplate::new(422)).await;
    let error = provider(&server)
        .search(&search(SearchOptions::query("q")))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "internal_error");
}

#[tokio::test]
async fn the_probe_reports_the_cost_or_names_the_key_setting() {
    let server = fake(results(json!([]))).await;
    assert_eq!(
        provider(&server).probe().await.unwrap(),
        "exa answered a one-result search (cost $0.007)"
    );
    assert_eq!(
        only_request(&server).await.body_json::<Value>().unwrap()["query"],
        "searchgate"
    );
    let refused = fake(ResponseTemplate::new(401)).await;
    let problem = provider(&refused).probe().await.unwrap_err();
    assert!(
        problem.contains("SEARCHGATE_SEARCH__EXA__API_KEY or EXA_API_KEY"),
        "{problem}"
    );
}

#[test]
fn it_claims_exactly_the_arguments_it_maps() {
    let provider = ExaSearchProvider::new(
        &Url::parse("https://api.exa.ai").unwrap(),
        "k",
        Deadlines::default(),
        Client::new(),
    )
    .unwrap();
    let claimed: Vec<&str> = provider
        .supports(&SearchRequest::new(SearchOptions::query("q")).unwrap())
        .iter()
        .map(SearchArgument::as_str)
        .collect();
    assert_eq!(
        claimed,
        [
            "max_results",
            "search_depth",
            "time_range",
            "start_date",
            "end_date",
            "include_raw_content",
            "include_favicon",
            "include_domains",
            "exclude_domains",
            "country"
        ]
    );
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let provider = ExaSearchProvider::new(
        &Url::parse("https://api.exa.ai/").unwrap(),
        "exa-secret",
        Deadlines::default(),
        Client::new(),
    )
    .unwrap();
    let printed = format!("{provider:?} {:?}", provider.key);
    assert!(!printed.contains("exa-secret"), "{printed}");
    assert_eq!(provider.url("search"), "https://api.exa.ai/search");
}
