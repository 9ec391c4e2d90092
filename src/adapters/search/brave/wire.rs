//! Brave's wire shapes: the query string of `GET /res/v1/web/search` built from a domain
//! request (the options the caller set, plus `count` and `text_decorations=false`, sent
//! deliberately), the documented answer and error envelope, parsed leniently.

use serde::Deserialize;
use serde_json::Value;

use super::super::{country, upstream, upstream::nullable};
use crate::domain::search::{SearchRequest, SearchResult, SearchResults, TimeRange, UpstreamUsage};

/// Brave's limits on `q`, checked only when searchgate lengthened it with `site:` terms (the
/// caller's own query is Brave's to judge).
const MAX_QUERY_CHARS: usize = 400;
const MAX_QUERY_WORDS: usize = 50;

/// The query string, in a fixed order. `today` (UTC, `YYYY-MM-DD`) closes a date range that
/// has no end. A country without a code, and domain filters that do not fit the query, are
/// left out (the core reports them as unsupported; see `supports`).
pub(super) fn search_params(request: &SearchRequest, today: &str) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("q", query_text(request)),
        // Brave takes 1–20; 0 results (max_results 0) are cut after the answer.
        ("count", request.max_results().get().max(1).to_string()),
        // Otherwise descriptions carry `<strong>` around the query's words (search-apis-2 §2.1).
        ("text_decorations", "false".to_owned()),
    ];
    if let Some(freshness) = freshness(request, today) {
        params.push(("freshness", freshness));
    }
    if let Some(code) = request.country().and_then(country::iso_code) {
        params.push(("country", code.to_owned()));
    }
    params
}

/// Whether the domain filters, as `site:` terms, fit Brave's query limits.
pub(super) fn domains_fit(request: &SearchRequest) -> bool {
    let text = filtered_query(request);
    text.chars().count() <= MAX_QUERY_CHARS && text.split_whitespace().count() <= MAX_QUERY_WORDS
}

/// The query with the domain filters when they fit, else the query alone. Quoted phrases are
/// left as written: Brave matches them verbatim, which is what `exact_match` asks.
fn query_text(request: &SearchRequest) -> String {
    let filtered = !request.include_domains().is_empty() || !request.exclude_domains().is_empty();
    if filtered && domains_fit(request) {
        filtered_query(request)
    } else {
        request.query().as_str().to_owned()
    }
}

/// The query with the domain filters as Brave's search operators: `site:a OR site:b` for the
/// domains results must come from, `-site:x` for each one they must not.
fn filtered_query(request: &SearchRequest) -> String {
    let mut text = request.query().as_str().to_owned();
    let include: Vec<String> = request
        .include_domains()
        .iter()
        .map(|d| format!("site:{}", site(d)))
        .collect();
    if !include.is_empty() {
        text.push(' ');
        text.push_str(&include.join(" OR "));
    }
    for domain in request.exclude_domains() {
        text.push_str(" -site:");
        text.push_str(site(domain));
    }
    text
}

/// `site:` already covers subdomains, so the domain's `*.` wildcard is dropped.
fn site(domain: &str) -> &str {
    domain.strip_prefix("*.").unwrap_or(domain)
}

/// `freshness`: `pd`/`pw`/`pm`/`py` for a time range, `YYYY-MM-DDtoYYYY-MM-DD` for dates (an
/// open start is the epoch, an open end today or the start, whichever is later).
fn freshness(request: &SearchRequest, today: &str) -> Option<String> {
    if let Some(range) = request.time_range() {
        let code = match range {
            TimeRange::Day => "pd",
            TimeRange::Week => "pw",
            TimeRange::Month => "pm",
            TimeRange::Year => "py",
        };
        return Some(code.to_owned());
    }
    if request.start_date().is_none() && request.end_date().is_none() {
        return None;
    }
    let start = request
        .start_date()
        .map_or_else(|| "1970-01-01".to_owned(), |d| d.to_string());
    let end = request
        .end_date()
        .map_or_else(|| today.max(start.as_str()).to_owned(), |d| d.to_string());
    Some(format!("{start}to{end}"))
}

/// The answer of `GET /res/v1/web/search`; every section is optional (plan, query and
/// `result_filter` decide which come).
#[derive(Debug, Deserialize)]
pub(super) struct SearchBody {
    #[serde(default)]
    web: Option<WebDto>,
}

#[derive(Debug, Deserialize)]
struct WebDto {
    #[serde(default, deserialize_with = "nullable")]
    results: Vec<ResultDto>,
}

#[derive(Debug, Deserialize)]
struct ResultDto {
    #[serde(default, deserialize_with = "nullable")]
    title: String,
    /// Missing or null in a malformed entry, which is then skipped (not the whole answer).
    #[serde(default, deserialize_with = "nullable")]
    url: String,
    #[serde(default, deserialize_with = "nullable")]
    description: String,
    #[serde(default, deserialize_with = "nullable")]
    extra_snippets: Vec<String>,
    #[serde(default)]
    page_age: Option<String>,
    #[serde(default)]
    age: Option<String>,
    #[serde(default)]
    meta_url: Option<MetaUrlDto>,
}

#[derive(Debug, Deserialize)]
struct MetaUrlDto {
    #[serde(default)]
    favicon: Option<String>,
}

impl SearchBody {
    /// Brave has no score: each hit gets [`upstream::rank_score`] of its rank. A page listed
    /// twice is kept once before cutting to `max_results`, so duplicates do not crowd out hits.
    pub(super) fn into_domain(self, request: &SearchRequest) -> SearchResults {
        let mut hits = self.web.map(|w| w.results).unwrap_or_default();
        hits.retain(|hit| !hit.url.is_empty());
        let mut results = SearchResults {
            // Not Brave's `query.original`: that includes the `site:` terms searchgate added.
            query: request.query().as_str().to_owned(),
            answer: None,
            images: Vec::new(),
            results: hits
                .into_iter()
                .enumerate()
                .map(|(rank, hit)| hit.into_domain(rank, request.include_favicon()))
                .collect(),
            usage: UpstreamUsage::default(),
        };
        results.drop_duplicate_pages();
        results.results.truncate(request.max_results().get());
        results
    }
}

impl ResultDto {
    fn into_domain(self, rank: usize, include_favicon: bool) -> SearchResult {
        let content = std::iter::once(&self.description)
            .chain(&self.extra_snippets)
            .map(|text| plain_text(text))
            .filter(|text| !text.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        SearchResult {
            title: plain_text(&self.title),
            url: self.url,
            content,
            score: upstream::rank_score(rank),
            published_date: self
                .page_age
                .filter(|d| !d.is_empty())
                .or(self.age.filter(|d| !d.is_empty())),
            raw_content: None,
            favicon: self
                .meta_url
                .and_then(|m| m.favicon)
                .filter(|f| include_favicon && !f.is_empty()),
            images: Vec::new(),
        }
    }
}

/// `text` without HTML tags (`<strong>` decorations, should Brave send them anyway) and with
/// the character references Brave writes (`&amp;`, `&#39;`, …) decoded, in one pass so that
/// `&amp;lt;` stays `&lt;`. A `<` or `&` that starts no tag or reference is kept.
pub(super) fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let skipped = if tail.starts_with('<') {
            tag_len(tail)
        } else {
            reference(tail).map(|(c, len)| {
                out.push(c);
                len
            })
        };
        let len = skipped.unwrap_or_else(|| {
            out.push(tail.as_bytes()[0] as char);
            1
        });
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The length of the tag at the start of `tail`: `<`, an optional `/`, a letter, then up to
/// 200 bytes without `<` until `>`.
fn tag_len(tail: &str) -> Option<usize> {
    let bytes = tail.as_bytes();
    let name = if bytes.get(1) == Some(&b'/') { 2 } else { 1 };
    if !bytes.get(name)?.is_ascii_alphabetic() {
        return None;
    }
    let end = name + tail[name..].find(['<', '>'])?;
    (bytes[end] == b'>' && end <= 200).then_some(end + 1)
}

/// The character and length of the reference at the start of `tail` (`&name;`, `&#n;`,
/// `&#xh;`).
fn reference(tail: &str) -> Option<(char, usize)> {
    // Bytes, not `str::get`: 12 may fall inside a character, and searching the whole rest
    // instead would make a long answer full of `&` quadratic.
    let semi = tail.as_bytes()[..tail.len().min(12)]
        .iter()
        .position(|b| *b == b';')?;
    let name = &tail[1..semi];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((c, semi + 1))
}

/// Brave's error envelope: `{"type":"ErrorResponse","error":{code, detail, meta}}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    error: Option<ErrorDto>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDto {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    meta: Option<ErrorMeta>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorMeta {
    #[serde(default, deserialize_with = "nullable")]
    errors: Vec<FieldError>,
    #[serde(default)]
    quota_limit: Option<Value>,
    #[serde(default)]
    quota_current: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct FieldError {
    #[serde(default, deserialize_with = "nullable")]
    loc: Vec<Value>,
    #[serde(default)]
    msg: Option<String>,
}

impl ErrorBody {
    /// The envelope, or an empty one when the body is not Brave's JSON (a proxy's page).
    pub(super) fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// `error.code` (`VALIDATION`, `RATE_LIMITED`, …), or `""`.
    pub(super) fn code(&self) -> &str {
        self.error
            .as_ref()
            .and_then(|e| e.code.as_deref())
            .unwrap_or("")
    }

    fn field_errors(&self) -> impl Iterator<Item = &FieldError> {
        self.error
            .iter()
            .filter_map(|e| e.meta.as_ref())
            .flat_map(|m| &m.errors)
    }

    /// Whether a validation error is about the key header (a missing token lands there).
    pub(super) fn names_key_header(&self) -> bool {
        self.field_errors().any(|e| {
            e.loc.iter().any(|part| {
                part.as_str()
                    .is_some_and(|p| p.eq_ignore_ascii_case("x-subscription-token"))
            })
        })
    }

    /// Whether a validation error names a query parameter (`q`, `count`, `country`, …): the
    /// request, not the plan, is at fault.
    pub(super) fn names_query_parameter(&self) -> bool {
        self.field_errors()
            .any(|e| e.loc.first().and_then(Value::as_str) == Some("query"))
    }

    /// Whether the month's quota is spent (`quota_current >= quota_limit`), as opposed to the
    /// per-second limit.
    pub(super) fn quota_spent(&self) -> bool {
        let meta = self.error.as_ref().and_then(|e| e.meta.as_ref());
        let number = |v: &Option<Value>| upstream::number(v.as_ref());
        match meta.map(|m| (number(&m.quota_current), number(&m.quota_limit))) {
            Some((Some(current), Some(limit))) => limit > 0.0 && current >= limit,
            _ => false,
        }
    }

    /// One line for the model: the first field error as `param: message`, else `detail`.
    pub(super) fn reason(&self) -> Option<String> {
        let field = self.field_errors().find_map(|e| {
            let msg = e.msg.as_deref()?;
            let names: Vec<String> = e
                .loc
                .iter()
                .skip(1)
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                .collect();
            Some(if names.is_empty() {
                msg.to_owned()
            } else {
                format!("{}: {msg}", names.join("."))
            })
        });
        let detail = || self.error.as_ref().and_then(|e| e.detail.clone());
        upstream::one_line(&field.or_else(detail)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::{Date, SearchOptions};

    fn request(options: SearchOptions) -> SearchRequest {
        SearchRequest::new(options).unwrap()
    }

    #[test]
    fn dates_become_a_freshness_range_with_open_sides_closed() {
        let date = |s| Some(Date::parse("d", s).unwrap());
        let cases = [
            (
                date("2024-01-02"),
                date("2024-03-04"),
                "2024-01-02to2024-03-04",
            ),
            (date("2024-01-02"), None, "2024-01-02to2025-06-30"),
            (None, date("2024-03-04"), "1970-01-01to2024-03-04"),
            (date("2026-01-01"), None, "2026-01-01to2026-01-01"),
        ];
        for (start_date, end_date, expected) in cases {
            let r = request(SearchOptions {
                start_date,
                end_date,
                ..SearchOptions::query("q")
            });
            assert_eq!(
                freshness(&r, "2025-06-30").as_deref(),
                Some(expected),
                "{start_date:?}..{end_date:?}"
            );
        }
        assert_eq!(
            freshness(&request(SearchOptions::query("q")), "2025-06-30"),
            None
        );
    }

    #[test]
    fn domains_that_overflow_the_query_are_left_out_whole_not_cut() {
        let domains: Vec<String> = (0..60).map(|i| format!("d{i}.com")).collect();
        let r = request(SearchOptions {
            include_domains: domains,
            ..SearchOptions::query("q")
        });
        assert!(!domains_fit(&r));
        assert_eq!(search_params(&r, "2025-06-30")[0], ("q", "q".to_owned()));
        let few = request(SearchOptions {
            include_domains: vec!["a.com".into()],
            ..SearchOptions::query("q")
        });
        assert!(domains_fit(&few));
        assert_eq!(search_params(&few, "2025-06-30")[0].1, "q site:a.com");
    }

    #[test]
    fn an_entry_without_a_url_is_skipped_not_the_whole_answer() {
        let body: SearchBody = serde_json::from_value(serde_json::json!({
            "web": { "results": [
                { "title": "no address", "url": null },
                { "title": "none at all" },
                { "title": "kept", "url": "https://kept.example/" }
            ]}
        }))
        .unwrap();
        let results = body.into_domain(&request(SearchOptions::query("q")));
        let urls: Vec<_> = results.results.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, ["https://kept.example/"]);
    }

    #[test]
    fn decorations_and_references_are_removed_once() {
        let cases = [
            ("<strong>Rust</strong> is fast", "Rust is fast"),
            ("a &amp; b &lt;c&gt; &#39;d&#x27;", "a & b <c> 'd'"),
            ("&amp;lt; stays escaped", "&lt; stays escaped"),
            ("x < y && y > z", "x < y && y > z"),
            ("tom & jerry; <3", "tom & jerry; <3"),
            ("&unknown; &#xZZ;", "&unknown; &#xZZ;"),
            ("<b>unclosed", "unclosed"),
            ("<a href=\"x\">link</a>", "link"),
            ("trailing <", "trailing <"),
            ("ünïcödé &eacute;", "ünïcödé &eacute;"),
            ("&ééééééé; x", "&ééééééé; x"),
        ];
        for (html, text) in cases {
            assert_eq!(plain_text(html), text, "{html}");
        }
    }
}
