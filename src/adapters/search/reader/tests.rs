//! The page reader against loopback servers: what it keeps of a page, and every bound and
//! refusal a caller could run into.

use std::time::{Duration, Instant};

use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use super::{
    test_server::{RawServer, Step, chunk, head},
    *,
};
use crate::{
    adapters::public_web::{NoPublicAddress, cause},
    domain::search::{ExtractOptions, PageOptions},
};

const ARTICLE: &str = r#"<!doctype html><html><head><title>Rust Guide - Example Site</title>
<script>var tracker = "SCRIPT_SECRET";</script></head><body>
<nav><a href="/">Home</a> <a href="/about">NAV_LINK_ABOUT</a></nav>
<div class="ad sponsored">AD_BUY_NOW cheap stuff</div>
<article><h1>Rust Guide</h1><h2>Ownership</h2>
<p>Ownership is Rust's most <strong>unique</strong> feature, and it enables Rust to make memory
safety guarantees without needing a garbage collector. See <a href="/book/ch04">the book
chapter</a> for more details on how it works in practice.</p>
<p>Each value in Rust has a variable that's called its owner. There can only be one owner at a
time. When the owner goes out of scope, the value will be dropped. This paragraph is long.</p>
<img src="/img/owner.png" alt="ownership diagram">
<ul><li>First item</li><li>Second item</li></ul>
</article>
<footer>FOOTER_COPYRIGHT 2024</footer><script>console.log("SCRIPT_TWO")</script></body></html>"#;

fn settings() -> ReaderSettings {
    ReaderSettings {
        allow_private_addresses: true,
        page_timeout: Duration::from_millis(500),
        ..ReaderSettings::default()
    }
}

fn reader(settings: ReaderSettings) -> PageReader {
    PageReader::new(settings).expect("the default user agent is a valid header")
}

fn request(urls: &[String], page: PageOptions) -> ExtractRequest {
    ExtractRequest::new(ExtractOptions {
        urls: urls.to_vec(),
        page,
        ..ExtractOptions::default()
    })
    .expect("a valid request")
}

/// Reads one URL and returns the page or the failure reason.
async fn read_one(reader: &PageReader, url: String, page: PageOptions) -> Result<Page, String> {
    let results = reader.extract(&request(&[url], page)).await.unwrap();
    match (results.pages.first(), results.failed.first()) {
        (Some(page), None) => Ok(page.clone()),
        (None, Some(failed)) => Err(failed.error.clone()),
        other => panic!("one URL gives one page or one failure: {other:?}"),
    }
}

async fn serving(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn the_main_content_is_kept_and_navigation_scripts_and_ads_are_not() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/guide"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ARTICLE, "text/html; charset=utf-8"))
        .mount(&server)
        .await;
    let reader = reader(settings());
    let url = format!("{}/guide", server.uri());
    let images = PageOptions {
        include_images: true,
        ..PageOptions::default()
    };
    let page = read_one(&reader, url.clone(), images).await.unwrap();
    let markdown = &page.raw_content;
    assert_eq!(page.url, url, "the URL as asked for");
    assert_eq!(page.title.as_deref(), Some("Rust Guide - Example Site"));
    assert!(markdown.contains("garbage collector"), "{markdown}");
    for noise in [
        "NAV_LINK",
        "SCRIPT_SECRET",
        "SCRIPT_TWO",
        "AD_BUY_NOW",
        "FOOTER",
    ] {
        assert!(!markdown.contains(noise), "{noise} left in: {markdown}");
    }
    assert!(markdown.contains("## Ownership"), "headings: {markdown}");
    let link = format!("[the book chapter]({}/book/ch04)", server.uri());
    assert!(markdown.contains(&link), "absolute links: {markdown}");
    assert!(markdown.contains("- First item"), "lists: {markdown}");
    assert_eq!(page.images.len(), 1, "images of the article");
    assert_eq!(
        page.images[0].url,
        format!("{}/img/owner.png", server.uri())
    );
    assert_eq!(
        page.images[0].description.as_deref(),
        Some("ownership diagram")
    );

    let text = PageOptions {
        format: Some(ContentFormat::Text),
        ..PageOptions::default()
    };
    let page = read_one(&reader, url, text).await.unwrap();
    let text = &page.raw_content;
    assert!(
        text.contains("Ownership") && text.contains("the book chapter"),
        "{text}"
    );
    for syntax in ["##", "](", "**", "- First", "!["] {
        assert!(
            !text.contains(syntax),
            "markdown {syntax:?} in text: {text}"
        );
    }
    assert!(page.images.is_empty(), "images only when asked for");

    let received = server.received_requests().await.unwrap();
    let sent = |name: &str| {
        received[0]
            .headers
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(sent("accept"), ACCEPT_PAGES);
    assert_eq!(sent("user-agent"), ReaderSettings::default().user_agent);
}

#[tokio::test]
async fn plain_text_and_markdown_are_returned_as_they_are_in_their_charset() {
    let reader = reader(settings());
    let server = serving(ResponseTemplate::new(200).set_body_raw(
        b"caf\xe9 # not a heading".to_vec(),
        "text/plain; charset=windows-1252",
    ))
    .await;
    let page = read_one(&reader, server.uri(), PageOptions::default()).await;
    assert_eq!(page.unwrap().raw_content, "café # not a heading");
    let markdown = "# Title\n\n* item";
    let server = serving(ResponseTemplate::new(200).set_body_raw(markdown, "text/markdown")).await;
    let page = read_one(&reader, server.uri(), PageOptions::default()).await;
    assert_eq!(page.unwrap().raw_content, markdown);
}

/// A server where `/hop/<n>` redirects to `/hop/<n + 1>` until `/hop/<hops>`, which is a page.
async fn redirect_chain(hops: usize) -> MockServer {
    let server = MockServer::start().await;
    for n in 0..hops {
        let next = format!("{}/hop/{}", server.uri(), n + 1);
        Mock::given(path(format!("/hop/{n}")))
            .respond_with(ResponseTemplate::new(302).insert_header("location", next.as_str()))
            .mount(&server)
            .await;
    }
    Mock::given(path(format!("/hop/{hops}")))
        .respond_with(ResponseTemplate::new(200).set_body_raw("arrived", "text/plain"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn redirects_are_followed_up_to_five() {
    let reader = reader(settings());
    for hops in [3, 5] {
        let server = redirect_chain(hops).await;
        let page = read_one(
            &reader,
            format!("{}/hop/0", server.uri()),
            PageOptions::default(),
        );
        assert_eq!(page.await.unwrap().raw_content, "arrived", "{hops} hops");
    }
    let server = redirect_chain(6).await;
    let failed = read_one(
        &reader,
        format!("{}/hop/0", server.uri()),
        PageOptions::default(),
    );
    assert_eq!(failed.await.unwrap_err(), "more than 5 redirects");
}

#[tokio::test]
async fn pages_larger_than_the_limit_fail_whether_their_length_is_told_or_not() {
    let reader = reader(ReaderSettings {
        max_bytes: 1000,
        ..settings()
    });
    let told = serving(ResponseTemplate::new(200).set_body_raw("x".repeat(1001), "text/plain"));
    let failed = read_one(&reader, told.await.uri(), PageOptions::default()).await;
    assert_eq!(failed.unwrap_err(), "larger than 1000 bytes");

    let chunks = vec![
        head(
            "200 OK",
            &["Content-Type: text/plain", "Transfer-Encoding: chunked"],
        ),
        chunk(&[b'x'; 600]),
        chunk(&[b'x'; 600]),
        Step::Send(b"0\r\n\r\n".to_vec()),
    ];
    let untold = RawServer::start(chunks).await;
    let failed = read_one(&reader, untold.url("/"), PageOptions::default()).await;
    assert_eq!(failed.unwrap_err(), "larger than 1000 bytes");
}

#[tokio::test]
async fn slow_pages_fail_at_the_page_timeout() {
    let reader = reader(settings());
    let slow_head = serving(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)));
    let slow_body = RawServer::start(vec![
        head(
            "200 OK",
            &["Content-Type: text/plain", "Content-Length: 100"],
        ),
        Step::Send(b"the start".to_vec()),
        Step::Pause(Duration::from_secs(30)),
    ]);
    for url in [slow_head.await.uri(), slow_body.await.url("/")] {
        let started = Instant::now();
        let failed = read_one(&reader, url, PageOptions::default()).await;
        assert_eq!(failed.unwrap_err(), "timed out after 0.5 s");
        // Far from the server's 30 s: the reader gave up on its own.
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

#[tokio::test]
async fn other_types_fail_with_the_type_and_errors_with_the_status_or_cause() {
    let reader = reader(settings());
    for kind in ["image/png", "application/octet-stream", "application/pdf"] {
        let server = serving(ResponseTemplate::new(200).set_body_raw(vec![0u8, 1, 2], kind));
        let failed = read_one(&reader, server.await.uri(), PageOptions::default()).await;
        assert_eq!(
            failed.unwrap_err(),
            format!("unsupported content type {kind}")
        );
    }
    for status in [404, 503] {
        let server = serving(ResponseTemplate::new(status)).await;
        let failed = read_one(&reader, server.uri(), PageOptions::default()).await;
        assert_eq!(failed.unwrap_err(), format!("HTTP {status}"));
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let failed = read_one(&reader, url, PageOptions::default()).await;
    let why = failed.unwrap_err();
    assert!(why.starts_with("cannot connect: "), "{why}");
}

#[tokio::test]
async fn addresses_outside_the_public_internet_are_refused_without_connecting() {
    let server = serving(ResponseTemplate::new(200).set_body_raw(ARTICLE, "text/html")).await;
    let port = server.address().port();
    let reader = reader(ReaderSettings::default());
    let urls: Vec<String> = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://2130706433:{port}/"),
        "http://10.0.0.1/".to_owned(),
        "http://192.168.1.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "https://[fd00::1]/".to_owned(),
        "http://100.64.0.1/".to_owned(),
    ]
    .into();
    let started = Instant::now();
    let results = reader
        .extract(&request(&urls, PageOptions::default()))
        .await;
    let results = results.expect("refused pages do not fail the call");
    assert!(results.pages.is_empty());
    assert_eq!(results.failed.len(), urls.len());
    for failed in &results.failed {
        assert!(failed.error.starts_with("refused: "), "{failed:?}");
    }
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing reached the loopback server"
    );
    // Refused before any connection: no connect timeout was waited for.
    assert!(started.elapsed() < Duration::from_secs(2));

    // A name that resolves inside the network, past the URL check (as a name other than
    // localhost would be): the reader's client resolves it to no usable address.
    let error = reader
        .http
        .get(format!("http://localhost:{port}/"))
        .send()
        .await
        .expect_err("localhost has no public address");
    assert!(cause::<NoPublicAddress>(&error).is_some(), "{error}");
    assert_eq!(
        fetch::failure_reason(&error, Duration::from_secs(1)),
        "refused: localhost has no public address"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[test]
fn only_http_and_https_urls_reach_the_reader() {
    for url in ["file:///etc/passwd", "ftp://example.com/x", "gopher://a/"] {
        let options = ExtractOptions {
            urls: vec![url.to_owned()],
            ..ExtractOptions::default()
        };
        assert!(ExtractRequest::new(options).is_err(), "{url}");
    }
}

#[tokio::test]
async fn pages_are_read_a_few_at_a_time_and_one_call_takes_half() {
    let start = || {
        RawServer::start(vec![
            Step::Pause(Duration::from_millis(150)),
            head("200 OK", &["Content-Type: text/plain", "Content-Length: 2"]),
            Step::Send(b"ok".to_vec()),
        ])
    };
    let reader = reader(ReaderSettings {
        max_concurrent: 4,
        page_timeout: Duration::from_secs(10),
        ..settings()
    });
    let most_at_once = |server: &RawServer| {
        server
            .counts
            .most_at_once
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let server = start().await;
    let urls: Vec<String> = (0..6).map(|n| server.url(&format!("/{n}"))).collect();
    let results = reader
        .extract(&request(&urls, PageOptions::default()))
        .await
        .unwrap();
    assert_eq!(results.pages.len(), 6, "{:?}", results.failed);
    assert_eq!(
        server
            .counts
            .served
            .load(std::sync::atomic::Ordering::SeqCst),
        6
    );
    assert_eq!(
        most_at_once(&server),
        2,
        "one call reads half the turns at a time: no more, and not one by one"
    );

    let server = start().await;
    let urls: Vec<String> = (0..6).map(|n| server.url(&format!("/{n}"))).collect();
    let both = request(&urls, PageOptions::default());
    let (a, b) = tokio::join!(reader.extract(&both), reader.extract(&both));
    assert_eq!(a.unwrap().pages.len() + b.unwrap().pages.len(), 12);
    assert_eq!(most_at_once(&server), 4, "two calls share every turn");
}

#[tokio::test]
async fn pages_not_read_by_the_call_timeout_are_reported_not_lost() {
    let server = RawServer::start(vec![
        Step::Pause(Duration::from_secs(30)),
        head("200 OK", &["Content-Type: text/plain", "Content-Length: 2"]),
        Step::Send(b"ok".to_vec()),
    ])
    .await;
    let fast = serving(ResponseTemplate::new(200).set_body_raw("quick", "text/plain")).await;
    let reader = reader(ReaderSettings {
        page_timeout: Duration::from_secs(20),
        call_timeout: Duration::from_millis(300),
        ..settings()
    });
    let urls = vec![format!("{}/quick", fast.uri()), server.url("/slow")];
    let results = reader
        .extract(&request(&urls, PageOptions::default()))
        .await
        .unwrap();
    assert_eq!(results.pages.len(), 1, "what was read comes back");
    assert_eq!(results.failed.len(), 1);
    assert!(
        results.failed[0].error.starts_with("timed out"),
        "{:?}",
        results.failed
    );
}
