//! The Grafana dashboard (`deploy/grafana/searchgate.json`) and the Prometheus alerting rules
//! (`deploy/prometheus/searchgate-alerts.yml`) query only metrics that `/metrics` exposes, under
//! the names Prometheus stores them by, so neither can rot silently when a metric is renamed;
//! and both are well formed (every panel has a data source and a query, every rule a `for`, a
//! severity and a summary).

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use async_trait::async_trait;
use reqwest::StatusCode;
use searchgate::domain::{
    auth::{AuthError, AuthorizationServer, BearerToken, Principal, Rejection, ScopeSet},
    search::{
        Backends, SearchError, SearchProvider, SearchRequest, SearchResult, SearchResults,
        UpstreamUsage, WebBackend,
    },
};
use serde_json::{Value, json};

use crate::helpers::{spawn_with, tool_call};

const DASHBOARD: &str = include_str!("../../deploy/grafana/searchgate.json");
const ALERTS: &str = include_str!("../../deploy/prometheus/searchgate-alerts.yml");

/// Series Prometheus itself records for every scrape target (`up`, for the target-down alert:
/// searchgate's readiness is not a metric).
const FROM_PROMETHEUS: [&str; 1] = ["up"];

/// A backend whose credits are spent: every call falls back to the next backend.
struct Spent;

#[async_trait]
impl SearchProvider for Spent {
    fn name(&self) -> &'static str {
        "spent"
    }

    async fn search(&self, _request: &SearchRequest) -> Result<SearchResults, SearchError> {
        Err(SearchError::QuotaExhausted)
    }
}

/// A backend that answers.
struct Answers;

#[async_trait]
impl SearchProvider for Answers {
    fn name(&self) -> &'static str {
        "answers"
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        Ok(SearchResults {
            query: request.query().as_str().to_owned(),
            results: vec![SearchResult {
                title: "An answer".into(),
                url: "https://answers.example/".into(),
                content: "It.".into(),
                score: 0.5,
                ..SearchResult::default()
            }],
            // What the call cost, so the spending series exist.
            usage: UpstreamUsage {
                credits: Some(1.0),
                cost_dollars: Some(0.005),
                ..UpstreamUsage::default()
            },
            ..SearchResults::default()
        })
    }
}

/// Accepts one token, so the verified-token cache (and its metrics) is in front of it.
struct OneToken;

#[async_trait]
impl AuthorizationServer for OneToken {
    fn authorization_servers(&self) -> Vec<String> {
        vec!["https://idp.example".into()]
    }

    async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
        match token.expose() {
            "reader" => Ok(Principal {
                subject: "alice".into(),
                issuer: "https://idp.example".into(),
                scopes: ScopeSet::from_space_separated("web-search:read"),
                ..Principal::default()
            }),
            _ => Err(AuthError::invalid(Rejection::Refused, "unknown token")),
        }
    }
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exposed() {
    // Labelled series of every kind: a tool call that falls back from a spent backend (`ok` and
    // a fallback), the same call again (`cache_hit`), a call without a token (`4xx`), with the
    // verified-token cache in front of the token check; served over TLS, so the certificate's
    // metrics exist, behind a trusted proxy that sent a forged `X-Forwarded-For`.
    let certificate = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = self_signed(certificate.path());
    let backends = Backends::new(vec![
        WebBackend::search_only(Arc::new(Spent)),
        WebBackend::search_only(Arc::new(Answers)),
    ])
    .expect("two backends");
    let app = spawn_with(
        // A deployment budget, so the budget metrics exist; large enough never to refuse.
        |s| {
            s.search.budget.total_credits_per_day = 1_000_000.0;
            s.server.tls.cert_path = Some(cert_path);
            s.server.tls.key_path = Some(key_path);
            s.server.trusted_proxies = vec!["127.0.0.1".to_owned()];
        },
        |builder| {
            builder
                .with_web_backend(backends)
                .with_authorization_server(OneToken)
        },
    )
    .await;
    let call = tool_call(1, "web_search", json!({ "query": "x" }));
    for _ in 0..2 {
        let response = app
            .mcp_post()
            .bearer_auth("reader")
            .json(&call)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["result"]["structuredContent"]["provider"], "answers",
            "{body}"
        );
    }
    let anonymous = app
        .mcp_post()
        .header("x-forwarded-for", "not an address")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let exposition = Exposition::parse(&app.metrics().await);
    app.stop().await;
    // The suffix rules hold for what searchgate writes: every sample belongs to its family.
    for sample in &exposition.samples {
        assert!(
            exposition.family_of(sample).is_some(),
            "{sample} has no family of a type that names its samples so:\n{}",
            exposition.text
        );
    }
    for series in [
        "searchgate_tool_calls_total{provider=\"answers\",tool=\"web_search\",outcome=\"ok\"}",
        "searchgate_tool_calls_total{provider=\"answers\",tool=\"web_search\",outcome=\"cache_hit\"}",
        "searchgate_upstream_fallbacks_total{provider=\"spent\",tool=\"web_search\",\
         error=\"upstream_quota_exhausted\"}",
        "searchgate_http_requests_total{route=\"mcp\",outcome=\"4xx\"}",
        "searchgate_token_cache_hits_total",
        "searchgate_forwarded_ignored_total{reason=\"malformed\"} 1",
        "searchgate_tls_certificate_expiry_timestamp_seconds",
    ] {
        assert!(
            exposition.text.contains(series),
            "no {series} in:\n{}",
            exposition.text
        );
    }

    let used: BTreeSet<String> = dashboard_queries()
        .into_iter()
        .chain(alert_rules().into_iter().map(|rule| rule.expr))
        .flat_map(|query| metric_names(&query))
        .collect();
    assert!(
        used.len() >= 10,
        "the queries name too few metrics for the extraction to be working: {used:?}"
    );

    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !exposition.exposes(name) && !FROM_PROMETHEUS.contains(&name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard or the alert rules query metrics that /metrics does not expose under \
         those names: {missing:?}\n/metrics was:\n{}",
        exposition.text
    );
    // Every metric searchgate exposes appears somewhere in the dashboard.
    let shown: HashSet<String> = dashboard_queries()
        .iter()
        .flat_map(|query| metric_names(query))
        .filter_map(|name| exposition.family_of(&name).map(str::to_owned))
        .collect();
    let unshown: Vec<&String> = exposition
        .families
        .keys()
        .filter(|family| !shown.contains(*family))
        .collect();
    assert!(
        unshown.is_empty(),
        "metrics the dashboard does not show: {unshown:?}"
    );
}

/// A self-signed certificate for 127.0.0.1 and its key, written into `dir`.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[test]
fn the_dashboard_is_an_importable_prometheus_dashboard() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is valid JSON");
    assert!(
        dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion: {}",
        dashboard["schemaVersion"]
    );
    assert_eq!(dashboard["uid"], "searchgate");
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "the import asks for a Prometheus data source: {inputs:?}"
    );
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a `datasource` variable of Prometheus data sources: {variables:?}"
    );

    let panels = panels(&dashboard);
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut ids = HashSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(panel["id"].as_u64().expect("a numeric id")),
            "duplicate panel id in {title:?}"
        );
        assert_eq!(
            panel["datasource"]["type"], "prometheus",
            "panel {title:?} has a Prometheus data source"
        );
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {title:?} uses the data source variable"
        );
        let targets = panel["targets"].as_array().map_or(&[][..], Vec::as_slice);
        assert!(!targets.is_empty(), "panel {title:?} has no target");
        for target in targets {
            assert!(
                target["expr"]
                    .as_str()
                    .is_some_and(|e| !e.trim().is_empty()),
                "panel {title:?}: a target without expr: {target}"
            );
            assert!(
                target["refId"].as_str().is_some(),
                "panel {title:?}: a target without refId"
            );
        }
    }
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert!(titles.contains(&"Budgets"), "a Budgets row: {titles:?}");
}

#[test]
fn every_alert_rule_says_how_long_how_bad_and_what_happened() {
    let rules = alert_rules();
    assert!(rules.len() >= 8, "{} rules", rules.len());
    let mut names = HashSet::new();
    for rule in &rules {
        assert!(
            names.insert(rule.name.clone()),
            "duplicate alert {}",
            rule.name
        );
        assert!(!rule.expr.trim().is_empty(), "{}: expr", rule.name);
        assert!(
            rule.r#for.as_deref().is_some_and(is_duration),
            "{}: for: {:?}",
            rule.name,
            rule.r#for
        );
        assert!(
            matches!(rule.severity.as_deref(), Some("critical" | "warning")),
            "{}: labels.severity: {:?}",
            rule.name,
            rule.severity
        );
        assert!(
            rule.summary
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty()),
            "{}: annotations.summary",
            rule.name
        );
        assert!(
            rule.description
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty()),
            "{}: annotations.description",
            rule.name
        );
    }
    for expected in [
        "SearchgateAuditWriterFailing",
        "SearchgateAuditQueueNearlyFull",
        "SearchgateBackendInCooldown",
        "SearchgateBudgetNearlySpent",
        "SearchgateIdpUnreachable",
        "SearchgateHigh5xxRate",
    ] {
        assert!(names.contains(expected), "no {expected} alert: {names:?}");
    }
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = metric_names(
        r#"sum by (job, le) (rate(a_bucket{x="y", job=~"$job"}[$__rate_interval]))
             / on (job) group_left (kind) b_total
           unless ignoring(instance) (c offset 5m > bool 0.9)
           or histogram_quantile(0.5, d_sum{s="rate(e_total[5m])"}) * 1e3 and "f" == $g"#,
    );
    assert_eq!(
        names,
        ["a_bucket", "b_total", "c", "d_sum"]
            .map(str::to_owned)
            .into()
    );
    assert_eq!(
        metric_names(r#"label_values(t_total{job=~"$job"}, instance)"#),
        BTreeSet::from(["t_total".to_owned()])
    );
    assert!(metric_names("label_values(job)").is_empty());

    let exposition = Exposition::parse(
        "# TYPE r counter\nr_total{a=\"b\"} 1\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 0\n\
         h_sum 0\nh_count 0\n# TYPE g gauge\ng 1\n# TYPE quiet counter\n# EOF\n",
    );
    for exposed in [
        "r_total",
        "h_bucket",
        "h_sum",
        "h_count",
        "g",
        "quiet_total",
    ] {
        assert!(exposition.exposes(exposed), "{exposed}");
    }
    // Prometheus stores an OpenMetrics counter as `…_total` and a histogram as its parts.
    for not_stored in [
        "r",
        "h",
        "h_total",
        "g_total",
        "quiet",
        "quiet_count",
        "EOF",
    ] {
        assert!(!exposition.exposes(not_stored), "{not_stored}");
    }
}

/// Every PromQL query of the dashboard: panel targets and the variables' `label_values(…)`.
fn dashboard_queries() -> Vec<String> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is valid JSON");
    let mut queries: Vec<String> = panels(&dashboard)
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|target| target["expr"].as_str().map(str::to_owned))
        .collect();
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            let query = variable["query"]["query"]
                .as_str()
                .or_else(|| variable["query"].as_str())
                .or_else(|| variable["definition"].as_str())
                .unwrap_or_else(|| panic!("variable {} has a query", variable["name"]));
            queries.push(query.to_owned());
        }
    }
    queries
}

/// The panels that query (rows hold none), with those of collapsed rows.
fn panels(dashboard: &Value) -> Vec<Value> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            found.extend(panel["panels"].as_array().cloned().unwrap_or_default());
        } else {
            found.push(panel.clone());
        }
    }
    found
}

struct Rule {
    name: String,
    expr: String,
    r#for: Option<String>,
    severity: Option<String>,
    summary: Option<String>,
    description: Option<String>,
}

/// The alerting rules of the rules file (recording rules would have no `alert`).
fn alert_rules() -> Vec<Rule> {
    let file: serde_yaml::Value = serde_yaml::from_str(ALERTS).expect("the rules are valid YAML");
    let text = |value: &serde_yaml::Value| value.as_str().map(str::to_owned);
    let groups = file["groups"].as_sequence().expect("groups");
    assert!(!groups.is_empty());
    groups
        .iter()
        .flat_map(|group| {
            assert!(group["name"].as_str().is_some(), "a group without a name");
            group["rules"].as_sequence().expect("rules").clone()
        })
        .map(|rule| Rule {
            name: text(&rule["alert"]).expect("every rule is an alerting rule"),
            expr: text(&rule["expr"]).unwrap_or_default(),
            r#for: text(&rule["for"]),
            severity: text(&rule["labels"]["severity"]),
            summary: text(&rule["annotations"]["summary"]),
            description: text(&rule["annotations"]["description"]),
        })
        .collect()
}

/// A Prometheus duration such as `5m` or `1h30m`.
fn is_duration(text: &str) -> bool {
    let mut rest = text;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ms", "y", "w", "d", "h", "m", "s"]
            .into_iter()
            .find(|unit| rest.starts_with(unit))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
        parts += 1;
    }
    parts > 0
}

/// The metric names a PromQL query (or a Grafana `label_values(selector, label)`) reads: the
/// identifiers left once string literals, label matchers, ranges, the label lists of
/// `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`, function calls, keywords, numbers
/// and Grafana `$variables` are taken out.
fn metric_names(query: &str) -> BTreeSet<String> {
    let query = query.trim();
    if let Some(inner) = query
        .strip_prefix("label_values(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        // `label_values(label)` reads no metric; `label_values(selector, label)` reads one.
        return match inner.rsplit_once(',') {
            Some((selector, _label)) => metric_names(selector),
            None => BTreeSet::new(),
        };
    }
    // Strings first (they may hold braces, brackets or parentheses), then `{…}` and `[…]`.
    let mut cleaned = String::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                while let Some(d) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
                cleaned.push(' ');
            }
            _ => cleaned.push(c),
        }
    }
    let cleaned = strip_between(&strip_between(&cleaned, '{', '}'), '[', ']');

    enum Token {
        Name(String),
        Number,
        Punct(char),
    }
    let chars: Vec<char> = cleaned.chars().collect();
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Name(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || c == '.' {
            // A number or a duration (`0.9`, `1e3`, `5m`): never a name.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Number);
        } else {
            if !c.is_whitespace() {
                tokens.push(Token::Punct(c));
            }
            i += 1;
        }
    }

    const KEYWORDS: [&str; 8] = [
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
    ];
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        // A call: `f(…)`, or an aggregation with its grouping first (`sum by (job) (…)`).
        let opens = match tokens.get(i + 1) {
            Some(Token::Punct('(')) => true,
            Some(Token::Name(next)) => {
                ["by", "without"].contains(&next.to_ascii_lowercase().as_str())
            }
            _ => false,
        };
        match &tokens[i] {
            Token::Name(name) if GROUPING.contains(&name.to_ascii_lowercase().as_str()) => {
                if opens {
                    // Its label list: names up to the closing parenthesis.
                    while i < tokens.len() && !matches!(tokens[i], Token::Punct(')')) {
                        i += 1;
                    }
                }
            }
            // A Grafana variable, a function or aggregation, or a keyword.
            Token::Name(_) if i > 0 && matches!(tokens[i - 1], Token::Punct('$')) => {}
            Token::Name(_) if opens => {}
            Token::Name(name) if KEYWORDS.contains(&name.to_ascii_lowercase().as_str()) => {}
            Token::Name(name) => {
                names.insert(name.clone());
            }
            Token::Number | Token::Punct(_) => {}
        }
        i += 1;
    }
    names
}

/// `text` without what lies between `open` and `close` (which do not nest in PromQL once
/// strings are gone).
fn strip_between(text: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in text.chars() {
        if c == open {
            inside = true;
            out.push(' ');
        } else if c == close && inside {
            inside = false;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// `/metrics` as Prometheus reads it: the families (`# TYPE name type`) and the sample names.
struct Exposition {
    text: String,
    families: HashMap<String, String>,
    samples: HashSet<String>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut families = HashMap::new();
        let mut samples = HashSet::new();
        for line in text.lines() {
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let mut words = declaration.split_whitespace();
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    families.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                samples.insert(line[..end].to_owned());
            }
        }
        Self {
            text: text.to_owned(),
            families,
            samples,
        }
    }

    /// The family a stored series name belongs to, by the suffix its type gives it in
    /// OpenMetrics (a counter's samples end in `_total`, a histogram's in `_bucket`, `_sum`
    /// and `_count`, a gauge's are the family name itself).
    fn family_of(&self, name: &str) -> Option<&str> {
        const SUFFIXES: [(&str, &str); 5] = [
            ("_total", "counter"),
            ("_bucket", "histogram"),
            ("_sum", "histogram"),
            ("_count", "histogram"),
            ("", "gauge"),
        ];
        SUFFIXES.iter().find_map(|(suffix, kind)| {
            let family = name.strip_suffix(suffix)?;
            let (declared, declared_kind) = self.families.get_key_value(family)?;
            (declared_kind == kind).then_some(declared.as_str())
        })
    }

    /// Whether Prometheus scraping this would store series under `name`: a declared family
    /// (perhaps with no series yet, like the fallbacks before any) whose type gives that name.
    fn exposes(&self, name: &str) -> bool {
        self.family_of(name).is_some()
    }
}
