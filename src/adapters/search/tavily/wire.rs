//! Tavily's wire shapes: request bodies built from domain requests (exactly the options the
//! caller set, plus `max_results` and `include_usage`, sent deliberately), and the documented
//! answers, parsed leniently (nulls, images as strings or objects, numbers as strings).

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use crate::domain::search::{
    CrawlRequest, CrawlResults, ExtractRequest, ExtractResults, FailedPage, Image, MapRequest,
    MapResults, Page, PageReading, SearchRequest, SearchResult, SearchResults, SiteScope,
    UpstreamUsage,
};

/// A JSON object under construction; `set` only when the caller chose a value.
struct Body(Map<String, Value>);

impl Body {
    fn new() -> Self {
        Self(Map::new())
    }

    fn put(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_owned(), value);
    }

    fn opt<T: Into<Value>>(&mut self, key: &str, value: Option<T>) {
        if let Some(value) = value {
            self.put(key, value.into());
        }
    }

    fn flag(&mut self, key: &str, on: bool) {
        if on {
            self.put(key, Value::Bool(true));
        }
    }

    fn list(&mut self, key: &str, items: &[String]) {
        if !items.is_empty() {
            self.put(key, json!(items));
        }
    }
}

/// `POST /search`. `max_results` is always sent (so a change of Tavily's default cannot change
/// what callers get) and `include_usage` too (so credits can be reported).
pub(super) fn search_body(request: &SearchRequest) -> Map<String, Value> {
    let mut body = Body::new();
    body.put("query", json!(request.query().as_str()));
    body.put("max_results", json!(request.max_results().get()));
    body.put("include_usage", json!(true));
    body.opt(
        "search_depth",
        request.requested_depth().map(|d| d.as_str()),
    );
    body.opt("topic", request.requested_topic().map(|t| t.as_str()));
    body.opt("time_range", request.time_range().map(|t| t.as_str()));
    body.opt("start_date", request.start_date().map(|d| d.to_string()));
    body.opt("end_date", request.end_date().map(|d| d.to_string()));
    body.opt("chunks_per_source", request.chunks_per_source());
    body.opt(
        "include_answer",
        request.include_answer().map(|a| a.as_str()),
    );
    body.opt(
        "include_raw_content",
        request.include_raw_content().map(|f| f.as_str()),
    );
    body.flag("include_images", request.include_images());
    body.flag(
        "include_image_descriptions",
        request.include_image_descriptions(),
    );
    body.flag("include_favicon", request.include_favicon());
    body.list("include_domains", request.include_domains());
    body.list("exclude_domains", request.exclude_domains());
    body.opt("country", request.country());
    body.flag("auto_parameters", request.auto_parameters());
    body.flag("exact_match", request.exact_match());
    body.0
}

/// `POST /extract`.
pub(super) fn extract_body(request: &ExtractRequest) -> Map<String, Value> {
    let mut body = Body::new();
    let urls: Vec<&str> = request.urls().iter().map(|u| u.as_str()).collect();
    body.put("urls", json!(urls));
    body.put("include_usage", json!(true));
    page_fields(&mut body, request.page());
    body.opt("query", request.query().map(|q| q.as_str()));
    body.opt("timeout", request.timeout_secs());
    body.0
}

/// How pages are read, for extract and crawl alike.
fn page_fields(body: &mut Body, page: &PageReading) {
    body.opt("extract_depth", page.depth().map(|d| d.as_str()));
    body.opt("format", page.format().map(|f| f.as_str()));
    body.flag("include_images", page.include_images());
    body.flag("include_favicon", page.include_favicon());
    body.opt("chunks_per_source", page.chunks_per_source());
}

fn scope_body(scope: &SiteScope) -> Body {
    let mut body = Body::new();
    body.put("url", json!(scope.url().as_str()));
    body.put("include_usage", json!(true));
    body.opt("max_depth", scope.max_depth());
    body.opt("max_breadth", scope.max_breadth());
    body.opt("limit", scope.limit());
    body.opt("instructions", scope.instructions());
    body.list("select_paths", scope.select_paths());
    body.list("select_domains", scope.select_domains());
    body.list("exclude_paths", scope.exclude_paths());
    body.list("exclude_domains", scope.exclude_domains());
    body.opt("allow_external", scope.allow_external());
    body.opt("timeout", scope.timeout_secs());
    body
}

/// `POST /crawl`.
pub(super) fn crawl_body(request: &CrawlRequest) -> Map<String, Value> {
    let mut body = scope_body(request.scope());
    page_fields(&mut body, request.page());
    body.0
}

/// `POST /map`: the scope only.
pub(super) fn map_body(request: &MapRequest) -> Map<String, Value> {
    scope_body(request.scope()).0
}

/// `null` (or absence) as the type's default.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A number, or a number written as a string (`response_time` has been both).
fn lenient_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// An image: a plain URL or `{url, description}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum ImageDto {
    Url(String),
    Described {
        url: String,
        #[serde(default)]
        description: Option<String>,
    },
}

impl From<ImageDto> for Image {
    fn from(image: ImageDto) -> Self {
        match image {
            ImageDto::Url(url) => Self {
                url,
                description: None,
            },
            ImageDto::Described { url, description } => Self {
                url,
                description: description.filter(|d| !d.is_empty()),
            },
        }
    }
}

fn images(list: Vec<ImageDto>) -> Vec<Image> {
    list.into_iter().map(Image::from).collect()
}

/// What every answer may carry about the call.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Meta {
    #[serde(default)]
    usage: Option<UsageDto>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_number")]
    response_time: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct UsageDto {
    #[serde(default, deserialize_with = "lenient_number")]
    credits: Option<f64>,
}

impl Meta {
    fn into_domain(self) -> UpstreamUsage {
        UpstreamUsage {
            credits: self.usage.and_then(|u| u.credits),
            request_id: self.request_id,
            response_time: self.response_time,
            cost_dollars: None,
        }
    }
}

/// The answer of `POST /search`.
#[derive(Debug, Deserialize)]
pub(super) struct SearchBody {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    images: Vec<ImageDto>,
    #[serde(default, deserialize_with = "nullable")]
    results: Vec<ResultDto>,
    #[serde(flatten)]
    meta: Meta,
}

#[derive(Debug, Deserialize)]
struct ResultDto {
    #[serde(default, deserialize_with = "nullable")]
    title: String,
    url: String,
    #[serde(default, deserialize_with = "nullable")]
    content: String,
    #[serde(default, deserialize_with = "lenient_number")]
    score: Option<f64>,
    #[serde(default)]
    published_date: Option<String>,
    #[serde(default)]
    raw_content: Option<String>,
    #[serde(default)]
    favicon: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    images: Vec<ImageDto>,
}

impl SearchBody {
    pub(super) fn into_domain(self, request: &SearchRequest) -> SearchResults {
        SearchResults {
            query: self
                .query
                .unwrap_or_else(|| request.query().as_str().to_owned()),
            answer: self.answer.filter(|a| !a.is_empty()),
            images: images(self.images),
            results: self
                .results
                .into_iter()
                .take(request.max_results().get())
                .map(|r| SearchResult {
                    title: r.title,
                    url: r.url,
                    content: r.content,
                    score: r.score.unwrap_or(0.0).clamp(0.0, 1.0),
                    published_date: r.published_date.filter(|d| !d.is_empty()),
                    raw_content: r.raw_content,
                    favicon: r.favicon.filter(|f| !f.is_empty()),
                    images: images(r.images),
                })
                .collect(),
            usage: self.meta.into_domain(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct PageDto {
    url: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    raw_content: String,
    #[serde(default, deserialize_with = "nullable")]
    images: Vec<ImageDto>,
    #[serde(default)]
    favicon: Option<String>,
}

impl From<PageDto> for Page {
    fn from(page: PageDto) -> Self {
        Self {
            url: page.url,
            title: page.title.filter(|t| !t.is_empty()),
            raw_content: page.raw_content,
            images: images(page.images),
            favicon: page.favicon.filter(|f| !f.is_empty()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct FailedDto {
    url: String,
    #[serde(default, deserialize_with = "nullable")]
    error: String,
}

/// The answer of `POST /extract`.
#[derive(Debug, Deserialize)]
pub(super) struct ExtractBody {
    #[serde(default, deserialize_with = "nullable")]
    results: Vec<PageDto>,
    #[serde(default, deserialize_with = "nullable")]
    failed_results: Vec<FailedDto>,
    #[serde(flatten)]
    meta: Meta,
}

impl ExtractBody {
    pub(super) fn into_domain(self) -> ExtractResults {
        ExtractResults {
            pages: self.results.into_iter().map(Page::from).collect(),
            failed: self
                .failed_results
                .into_iter()
                .map(|f| FailedPage {
                    url: f.url,
                    error: f.error,
                })
                .collect(),
            usage: self.meta.into_domain(),
        }
    }
}

/// The answer of `POST /crawl`.
#[derive(Debug, Deserialize)]
pub(super) struct CrawlBody {
    #[serde(default, deserialize_with = "nullable")]
    base_url: String,
    #[serde(default, deserialize_with = "nullable")]
    results: Vec<PageDto>,
    #[serde(flatten)]
    meta: Meta,
}

impl CrawlBody {
    /// The port promises at most the scope's limit.
    pub(super) fn into_domain(self, limit: Option<u16>) -> CrawlResults {
        let limit = limit.map_or(usize::MAX, usize::from);
        CrawlResults {
            base_url: self.base_url,
            pages: self
                .results
                .into_iter()
                .take(limit)
                .map(Page::from)
                .collect(),
            usage: self.meta.into_domain(),
        }
    }
}

/// The answer of `POST /map`.
#[derive(Debug, Deserialize)]
pub(super) struct MapBody {
    #[serde(default, deserialize_with = "nullable")]
    base_url: String,
    #[serde(default, deserialize_with = "nullable")]
    results: Vec<String>,
    #[serde(flatten)]
    meta: Meta,
}

impl MapBody {
    /// The port promises at most the scope's limit.
    pub(super) fn into_domain(self, limit: Option<u16>) -> MapResults {
        let limit = limit.map_or(usize::MAX, usize::from);
        MapResults {
            base_url: self.base_url,
            urls: self.results.into_iter().take(limit).collect(),
            usage: self.meta.into_domain(),
        }
    }
}

/// The answer of `GET /usage`.
#[derive(Debug, Deserialize)]
pub(super) struct UsageBody {
    #[serde(default)]
    key: Option<Value>,
    #[serde(default)]
    account: Option<Value>,
}

impl UsageBody {
    /// One line for `check-config`.
    pub(super) fn describe(&self) -> String {
        let field = |v: &Option<Value>, k: &str| {
            v.as_ref()
                .and_then(|v| v.get(k))
                .filter(|x| !x.is_null())
                .map(|x| x.to_string().trim_matches('"').to_owned())
        };
        let usage = field(&self.key, "usage").unwrap_or_else(|| "?".to_owned());
        let limit = field(&self.key, "limit").unwrap_or_else(|| "no limit".to_owned());
        let mut line = format!("accepted; this key has used {usage} credits (limit: {limit})");
        if let Some(plan) = field(&self.account, "current_plan") {
            line.push_str(&format!("; plan {plan}"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::{AnswerDepth, ContentFormat, SearchDepth, SearchOptions, Topic};

    #[test]
    fn a_default_search_sends_only_the_deliberate_fields() {
        let request = SearchRequest::new(SearchOptions::query("rust")).unwrap();
        assert_eq!(
            Value::Object(search_body(&request)),
            json!({ "query": "rust", "max_results": 5, "include_usage": true })
        );
    }

    #[test]
    fn every_search_option_has_its_wire_name() {
        let request = SearchRequest::new(SearchOptions {
            depth: Some(SearchDepth::Advanced),
            topic: Some(Topic::General),
            chunks_per_source: Some(2),
            include_answer: Some(AnswerDepth::Advanced),
            include_raw_content: Some(ContentFormat::Text),
            include_images: true,
            include_image_descriptions: true,
            include_favicon: true,
            country: Some("germany".into()),
            auto_parameters: true,
            exact_match: true,
            include_domains: vec!["docs.rs".into()],
            ..SearchOptions::query("q")
        })
        .unwrap();
        let body = Value::Object(search_body(&request));
        assert_eq!(body["search_depth"], "advanced");
        assert_eq!(body["include_answer"], "advanced");
        assert_eq!(body["include_raw_content"], "text");
        assert_eq!(body["include_image_descriptions"], true);
        assert_eq!(body["country"], "germany");
        assert_eq!(body["chunks_per_source"], 2);
        assert_eq!(body["include_domains"], json!(["docs.rs"]));
        assert!(
            body.get("exclude_domains").is_none(),
            "empty lists are left out"
        );
    }

    #[test]
    fn answers_parse_leniently() {
        let body: SearchBody = serde_json::from_value(json!({
            "query": "q", "answer": "A.", "images": ["https://i/1.png", {"url": "https://i/2.png", "description": "two"}],
            "results": [{"title": null, "url": "https://e.com", "content": "c", "score": "0.5",
                         "favicon": "https://e.com/f.ico", "images": null, "published_date": ""}],
            "usage": {"credits": 2}, "request_id": "r-1", "response_time": "1.25",
            "follow_up_questions": null, "auto_parameters": {"topic": "general"}
        }))
        .unwrap();
        let results = body.into_domain(&SearchRequest::new(SearchOptions::query("q")).unwrap());
        assert_eq!(results.answer.as_deref(), Some("A."));
        assert_eq!(results.images[0].description, None);
        assert_eq!(results.images[1].description.as_deref(), Some("two"));
        assert_eq!(results.results[0].score, 0.5);
        assert_eq!(results.results[0].title, "");
        assert_eq!(results.results[0].published_date, None);
        assert_eq!(results.usage.credits, Some(2.0));
        assert_eq!(results.usage.request_id.as_deref(), Some("r-1"));
        assert_eq!(results.usage.response_time, Some(1.25));
    }

    #[test]
    fn usage_is_described_in_one_line() {
        let body: UsageBody = serde_json::from_value(json!({
            "key": {"usage": 12, "limit": null}, "account": {"current_plan": "Researcher"}
        }))
        .unwrap();
        assert_eq!(
            body.describe(),
            "accepted; this key has used 12 credits (limit: no limit); plan Researcher"
        );
    }
}
