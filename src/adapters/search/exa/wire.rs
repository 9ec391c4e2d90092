//! Exa's wire shapes (camelCase JSON): the bodies of `POST /search` and `POST /contents` built
//! from domain requests (the options the caller set, plus `numResults` and the content wanted,
//! sent deliberately), the documented answers, parsed leniently, and the error envelope.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::{
    country, upstream,
    upstream::{nullable, number},
};
use crate::domain::search::{
    ExtractRequest, ExtractResults, FailedPage, Page, SearchDepth, SearchError, SearchRequest,
    SearchResult, SearchResults, TimeRange, UpstreamUsage,
};

/// Characters of page text used as a hit's content when Exa sent neither highlights nor a
/// summary (only when the full text was asked for).
const TEXT_EXCERPT_CHARS: usize = 500;

/// `POST /search`. Highlights are always asked for (they are the hits' content, as Tavily's
/// snippets are); the full text only with `include_raw_content`. `now` anchors time ranges.
///
/// # Errors
/// `Rejected` when the country has no known code.
pub(super) fn search_body(
    request: &SearchRequest,
    now: DateTime<Utc>,
) -> Result<Map<String, Value>, SearchError> {
    let mut body = Map::new();
    let mut put = |key: &str, value: Value| body.insert(key.to_owned(), value);
    put("query", json!(request.query().as_str()));
    // Exa takes 1–100; 0 results (max_results 0) are cut after the answer.
    put("numResults", json!(request.max_results().get().max(1)));
    if let Some(depth) = request.requested_depth() {
        put("type", json!(search_type(depth)));
    }
    if !request.include_domains().is_empty() {
        put("includeDomains", json!(request.include_domains()));
    }
    if !request.exclude_domains().is_empty() {
        put("excludeDomains", json!(request.exclude_domains()));
    }
    if let Some(range) = request.time_range() {
        let days = match range {
            TimeRange::Day => 1,
            TimeRange::Week => 7,
            TimeRange::Month => 30,
            TimeRange::Year => 365,
        };
        let start = now - TimeDelta::days(days);
        put(
            "startPublishedDate",
            json!(start.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        );
    }
    // Dates are whole days: from the start of the first to the end of the last, in UTC.
    if let Some(date) = request.start_date() {
        put("startPublishedDate", json!(format!("{date}T00:00:00.000Z")));
    }
    if let Some(date) = request.end_date() {
        put("endPublishedDate", json!(format!("{date}T23:59:59.999Z")));
    }
    // A country without a known code is left out (and reported unsupported by the core).
    if let Some(code) = request.country().and_then(country::iso_code) {
        put("userLocation", json!(code));
    }
    let mut contents = json!({ "highlights": true });
    if request.include_raw_content().is_some() {
        contents["text"] = json!(true);
    }
    put("contents", contents);
    Ok(body)
}

/// Tavily's depths as Exa's search types, by what each trades: `basic` is Exa's balanced
/// default (`auto`), `fast` its `fast`, `ultra-fast` its lowest-latency `instant`, and
/// `advanced` (slower, dearer, more thorough) its `deep`.
fn search_type(depth: SearchDepth) -> &'static str {
    match depth {
        SearchDepth::Basic => "auto",
        SearchDepth::Fast => "fast",
        SearchDepth::UltraFast => "instant",
        SearchDepth::Advanced => "deep",
    }
}

/// `POST /contents`: the URLs and their text, options at the top level (search-apis-2 §1.3).
pub(super) fn contents_body(request: &ExtractRequest) -> Map<String, Value> {
    let urls: Vec<&str> = request.urls().iter().map(|u| u.as_str()).collect();
    let mut body = Map::new();
    body.insert("urls".to_owned(), json!(urls));
    body.insert("text".to_owned(), json!(true));
    body
}

/// What every answer says about the call.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    cost_dollars: Option<CostDto>,
}

#[derive(Debug, Default, Deserialize)]
struct CostDto {
    #[serde(default)]
    total: Option<Value>,
}

impl Meta {
    /// `costDollars.total` only: its breakdown differs between API versions.
    fn into_domain(self) -> UpstreamUsage {
        UpstreamUsage {
            request_id: self.request_id.filter(|id| !id.is_empty()),
            cost_dollars: self.cost_dollars.and_then(|c| number(c.total.as_ref())),
            ..UpstreamUsage::default()
        }
    }
}

/// One result, of `/search` or `/contents`: only `url` is sure to be there.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultDto {
    /// Missing or null in a malformed entry, which is then skipped (not the whole answer).
    #[serde(default, deserialize_with = "nullable")]
    url: String,
    #[serde(default, deserialize_with = "nullable")]
    title: String,
    #[serde(default)]
    score: Option<Value>,
    #[serde(default)]
    published_date: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    highlights: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    favicon: Option<String>,
}

/// The answer of `POST /search`.
#[derive(Debug, Deserialize)]
pub(super) struct SearchBody {
    #[serde(default, deserialize_with = "nullable")]
    results: Vec<ResultDto>,
    #[serde(flatten)]
    meta: Meta,
}

impl SearchBody {
    /// Exa dropped `score` for most search types: a hit without one is scored by rank. A page
    /// listed twice is kept once before cutting to `max_results`.
    pub(super) fn into_domain(self, request: &SearchRequest) -> SearchResults {
        let raw = request.include_raw_content().is_some();
        let mut results = SearchResults {
            query: request.query().as_str().to_owned(),
            answer: None,
            images: Vec::new(),
            results: self
                .results
                .into_iter()
                .filter(|r| !r.url.is_empty())
                .enumerate()
                .map(|(rank, hit)| {
                    let content = hit.content();
                    SearchResult {
                        score: number(hit.score.as_ref())
                            .filter(|s| s.is_finite())
                            .map_or_else(|| upstream::rank_score(rank), |s| s.clamp(0.0, 1.0)),
                        published_date: hit.published_date.filter(|d| !d.is_empty()),
                        raw_content: hit.text.filter(|_| raw),
                        favicon: hit
                            .favicon
                            .filter(|f| request.include_favicon() && !f.is_empty()),
                        title: hit.title,
                        url: hit.url,
                        content,
                        images: Vec::new(),
                    }
                })
                .collect(),
            usage: self.meta.into_domain(),
        };
        results.drop_duplicate_pages();
        results.results.truncate(request.max_results().get());
        results
    }
}

impl ResultDto {
    /// The highlights, else the summary, else the start of the text.
    fn content(&self) -> String {
        let highlights: Vec<&str> = self
            .highlights
            .iter()
            .map(|h| h.trim())
            .filter(|h| !h.is_empty())
            .collect();
        if !highlights.is_empty() {
            return highlights.join(" … ");
        }
        if let Some(summary) = self.summary.as_deref().filter(|s| !s.trim().is_empty()) {
            return summary.trim().to_owned();
        }
        self.text
            .as_deref()
            .map(|t| t.trim().chars().take(TEXT_EXCERPT_CHARS).collect())
            .unwrap_or_default()
    }
}

/// The answer of `POST /contents`.
#[derive(Debug, Deserialize)]
pub(super) struct ContentsBody {
    #[serde(default, deserialize_with = "nullable")]
    results: Vec<ResultDto>,
    #[serde(default, deserialize_with = "nullable")]
    statuses: Vec<StatusDto>,
    #[serde(flatten)]
    meta: Meta,
}

#[derive(Debug, Deserialize)]
struct StatusDto {
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    status: String,
    #[serde(default)]
    error: Option<StatusError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusError {
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    http_status_code: Option<Value>,
}

impl ContentsBody {
    /// Pages read, and each URL whose status is `error` with its tag as the reason.
    pub(super) fn into_domain(self, include_favicon: bool) -> ExtractResults {
        ExtractResults {
            pages: self
                .results
                .into_iter()
                .filter(|r| !r.url.is_empty())
                .map(|page| Page {
                    title: Some(page.title).filter(|t| !t.is_empty()),
                    raw_content: page.text.unwrap_or_default(),
                    favicon: page.favicon.filter(|f| include_favicon && !f.is_empty()),
                    url: page.url,
                    images: Vec::new(),
                })
                .collect(),
            failed: self
                .statuses
                .into_iter()
                .filter(|s| s.status.eq_ignore_ascii_case("error"))
                .map(|s| FailedPage {
                    error: s.error.map_or_else(
                        || "Exa could not read this page".to_owned(),
                        StatusError::describe,
                    ),
                    url: s.id,
                })
                .collect(),
            usage: self.meta.into_domain(),
        }
    }
}

impl StatusError {
    /// `CRAWL_NOT_FOUND (HTTP 404)`.
    fn describe(self) -> String {
        let tag = self
            .tag
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Exa could not read this page".to_owned());
        match number(self.http_status_code.as_ref()) {
            Some(code) => format!("{tag} (HTTP {code})"),
            None => tag,
        }
    }
}

/// Exa's error envelope: `{"requestId", "error": "…", "tag": "…"}` (exa-js also reads
/// `message`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErrorBody {
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

impl ErrorBody {
    /// The envelope, or an empty one when the body is not Exa's JSON (a gateway's page).
    pub(super) fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The machine-readable tag (`NO_MORE_CREDITS`, …), or `""`.
    pub(super) fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or("")
    }

    /// The explanation on one bounded line: `error` (or `message`), else the tag.
    pub(super) fn reason(&self) -> Option<String> {
        let text = match &self.error {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        };
        text.or(self.message.as_deref())
            .and_then(upstream::one_line)
            .or_else(|| self.tag.as_deref().and_then(upstream::one_line))
    }

    /// A 422 of `/contents` (a URL that could not be fetched) as every URL failed.
    pub(super) fn into_all_failed(self, request: &ExtractRequest) -> ExtractResults {
        let error = self
            .reason()
            .unwrap_or_else(|| "Exa could not read this page (HTTP 422)".to_owned());
        ExtractResults {
            pages: Vec::new(),
            failed: request
                .urls()
                .iter()
                .map(|url| FailedPage {
                    url: url.as_str().to_owned(),
                    error: error.clone(),
                })
                .collect(),
            usage: UpstreamUsage {
                request_id: self.request_id,
                ..UpstreamUsage::default()
            },
        }
    }
}
