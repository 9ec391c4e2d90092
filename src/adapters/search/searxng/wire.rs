//! SearXNG's wire shapes: the query string of `GET /search` (`q`, `format=json` sent
//! deliberately, and `time_range` when the caller set one) and the JSON answer of
//! `searx/webutils.py::get_json_response`, parsed leniently.

use serde::Deserialize;
use serde_json::Value;

use super::super::{
    upstream,
    upstream::{nullable, number},
};
use crate::domain::search::{
    SearchError, SearchRequest, SearchResult, SearchResults, TimeRange, UpstreamUsage,
};

/// Most engines named in an "every engine failed" reason (the line is bounded anyway).
const MAX_ENGINES_NAMED: usize = 8;

/// The query string, in a fixed order. There is no count parameter (a page holds what the
/// engines found, about 10–20 hits), and `pageno` stays at SearXNG's first page.
pub(super) fn search_params(request: &SearchRequest) -> Vec<(&'static str, &str)> {
    let mut params = vec![("q", request.query().as_str()), ("format", "json")];
    // `week` is not in the API docs, but SearXNG's `parse_time_range` (searx/webadapter.py)
    // accepts it with the other three; engines that cannot filter by time are left out by
    // SearXNG itself, so the range is honoured, never ignored.
    if let Some(range) = request.time_range() {
        let range = match range {
            TimeRange::Day => "day",
            TimeRange::Week => "week",
            TimeRange::Month => "month",
            TimeRange::Year => "year",
        };
        params.push(("time_range", range));
    }
    params
}

/// The answer of `GET /search?format=json`.
#[derive(Debug, Deserialize)]
pub(super) struct SearchBody {
    #[serde(default, deserialize_with = "nullable")]
    results: Vec<ResultDto>,
    /// `[[engine, error text], …]`.
    #[serde(default, deserialize_with = "nullable")]
    unresponsive_engines: Vec<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct ResultDto {
    #[serde(default, deserialize_with = "nullable")]
    url: String,
    #[serde(default, deserialize_with = "nullable")]
    title: String,
    #[serde(default, deserialize_with = "nullable")]
    content: String,
    #[serde(default)]
    score: Option<Value>,
    #[serde(default, rename = "publishedDate")]
    published_date: Option<String>,
}

impl SearchBody {
    /// The hits, scores normalised, duplicates dropped and cut to `max_results`.
    ///
    /// # Errors
    /// `Unavailable` when there is no hit because every engine failed: SearXNG still answers
    /// 200 then, and only `unresponsive_engines` says so.
    pub(super) fn into_domain(self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let hits: Vec<ResultDto> = self
            .results
            .into_iter()
            .filter(|hit| !hit.url.is_empty())
            .collect();
        if hits.is_empty() && !self.unresponsive_engines.is_empty() {
            return Err(SearchError::Unavailable {
                reason: failed_engines(&self.unresponsive_engines),
            });
        }
        let scores: Vec<Option<f64>> = hits.iter().map(|hit| number(hit.score.as_ref())).collect();
        // SearXNG's score grows with the number of engines and positions that found a page
        // (often above 1): divided by the best, the top hit is 1 and the order is kept.
        let best = scores
            .iter()
            .flatten()
            .copied()
            .filter(|s| s.is_finite() && *s > 0.0)
            .fold(0.0_f64, f64::max);
        let mut results = SearchResults {
            query: request.query().as_str().to_owned(),
            answer: None,
            images: Vec::new(),
            results: hits
                .into_iter()
                .zip(scores)
                .enumerate()
                .map(|(rank, (hit, score))| SearchResult {
                    title: hit.title,
                    url: hit.url,
                    content: hit.content,
                    score: match score {
                        _ if best <= 0.0 => upstream::rank_score(rank),
                        Some(s) if s.is_finite() => (s / best).clamp(0.0, 1.0),
                        _ => 0.0,
                    },
                    published_date: hit.published_date.filter(|d| !d.is_empty()),
                    ..SearchResult::default()
                })
                .collect(),
            usage: UpstreamUsage::default(),
        };
        results.drop_duplicate_pages();
        results.results.truncate(request.max_results().get());
        Ok(results)
    }
}

/// `every engine failed: google (timeout), bing (access denied), …`, on one bounded line.
fn failed_engines(engines: &[Vec<Value>]) -> String {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    };
    let mut named: Vec<String> = engines
        .iter()
        .take(MAX_ENGINES_NAMED)
        .map(|entry| {
            let (name, why) = (text(entry.first()), text(entry.get(1)));
            if why.is_empty() {
                name
            } else {
                format!("{name} ({why})")
            }
        })
        .collect();
    if engines.len() > MAX_ENGINES_NAMED {
        named.push(format!("{} more", engines.len() - MAX_ENGINES_NAMED));
    }
    let line = format!("every engine failed: {}", named.join(", "));
    upstream::one_line(&line).unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_engines_are_named_on_one_bounded_line() {
        let engines: Vec<Vec<Value>> = (0..10)
            .map(|i| vec![Value::from(format!("e{i}")), Value::from("timeout\nagain")])
            .collect();
        let line = failed_engines(&engines);
        assert!(line.starts_with("every engine failed: e0 (timeout again), e1 (timeout again)"));
        assert!(line.ends_with("e7 (timeout again), 2 more"), "{line}");
        assert_eq!(
            failed_engines(&[vec![Value::from("google")]]),
            "every engine failed: google"
        );
    }
}
