//! Prometheus metrics at `/metrics` (prometheus-client, OpenMetrics text): requests and
//! latency by route and outcome, tool calls and upstream behaviour by provider and outcome,
//! and, read at scrape time, the token cache, key fetches, the audit queue and the trace
//! spans the OTLP exporter dropped.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result, http::StatusCode};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::ConstGauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use super::Layered;
use crate::domain::{
    audit::{AuditEvent, AuditSink},
    auth::CacheCounters,
    budget::{BudgetScope, Budgets},
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    provider: String,
    tool: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// A counter of amounts (credits, dollars), not events.
type Amount = Counter<f64, std::sync::atomic::AtomicU64>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FallbackLabels {
    provider: String,
    tool: String,
    error: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// searchgate's metrics. Shared by every request.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    upstream: Family<UpstreamLabels, Counter>,
    upstream_latency: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    fallbacks: Family<FallbackLabels, Counter>,
    credits: Family<ProviderLabels, Amount>,
    cost_usd: Family<ProviderLabels, Amount>,
    forwarded_ignored: Family<ReasonLabels, Counter>,
}

impl Metrics {
    /// Metrics reading the token cache's `cache` counters, the key fetch counts from
    /// `key_fetches`, and the depth of `audit`'s queue.
    pub fn new(
        cache: Option<Arc<CacheCounters>>,
        key_fetches: fn() -> (u64, u64),
        audit: AuditSink,
    ) -> Self {
        let mut registry = Registry::with_prefix("searchgate");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let upstream = Family::<UpstreamLabels, Counter>::default();
        let upstream_latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "http_requests",
            "HTTP requests by route and outcome (status class)",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and outcome",
            latency.clone(),
        );
        registry.register(
            "tool_calls",
            "Tool calls by provider, tool and outcome (ok, cache_hit, or the tool error code)",
            upstream.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Latency of tool calls that reached the search backend, by provider, tool and outcome",
            upstream_latency.clone(),
        );
        let fallbacks = Family::<FallbackLabels, Counter>::default();
        registry.register(
            "upstream_fallbacks",
            "Tool calls a backend failed and passed on to the next, by that backend, tool and its \
             error code",
            fallbacks.clone(),
        );
        let credits = Family::<ProviderLabels, Amount>::default();
        registry.register(
            "upstream_credits",
            "Backend credits spent, as the backends reported them, by backend",
            credits.clone(),
        );
        let cost_usd = Family::<ProviderLabels, Amount>::default();
        registry.register(
            "upstream_cost_usd",
            "US dollars spent, as the backends reported them, by backend",
            cost_usd.clone(),
        );
        let forwarded_ignored = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "forwarded_ignored",
            "Forwarding headers from a trusted proxy not followed to the end, by reason \
             (malformed: the header was ignored; unknown: a hop named no address)",
            forwarded_ignored.clone(),
        );
        registry.register_collector(Box::new(Pulled {
            cache,
            key_fetches,
            audit,
        }));
        Self {
            registry,
            requests,
            latency,
            upstream,
            upstream_latency,
            fallbacks,
            credits,
            cost_usd,
            forwarded_ignored,
        }
    }

    /// Counts forwarding headers not followed to the end, for `reason`.
    pub fn forwarded_ignored(&self, reason: &'static str) {
        self.forwarded_ignored
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Also reports `connections`: how many are open, and how many had to wait for a free slot
    /// under `server.max_connections`.
    #[must_use]
    pub fn with_connections(mut self, connections: Arc<super::Connections>) -> Self {
        self.registry
            .register_collector(Box::new(ConnectionCounts(connections)));
        self
    }

    /// Also reports the served TLS certificate's expiry and its reloads, when TLS is on.
    #[must_use]
    pub fn with_tls(mut self, tls: Option<Arc<super::tls::Reloads>>) -> Self {
        if let Some(tls) = tls {
            self.registry.register_collector(Box::new(TlsState(tls)));
        }
        self
    }

    /// Also reports the daily budgets: calls refused, and the share of the deployment's credit
    /// budget used.
    #[must_use]
    pub fn with_budgets(mut self, budgets: Option<Arc<Budgets>>) -> Self {
        if let Some(budgets) = budgets {
            self.registry
                .register_collector(Box::new(BudgetState(budgets)));
        }
        self
    }

    /// Counts a finished tool call from its audit event.
    pub fn observe_call(&self, event: &AuditEvent) {
        let (Some(tool), Some(provider)) = (&event.tool, &event.provider) else {
            return;
        };
        let outcome = match (&event.error_code, event.cache_hit) {
            (Some(code), _) => code.clone(),
            (None, Some(true)) => "cache_hit".to_owned(),
            (None, _) => "ok".to_owned(),
        };
        let labels = UpstreamLabels {
            provider: provider.clone(),
            tool: tool.clone(),
            outcome,
        };
        self.upstream.get_or_create(&labels).inc();
        let by_provider = || ProviderLabels {
            provider: provider.clone(),
        };
        if let Some(credits) = event.credits.filter(|c| c.is_finite() && *c > 0.0) {
            self.credits.get_or_create(&by_provider()).inc_by(credits);
        }
        if let Some(usd) = event.cost_usd.filter(|c| c.is_finite() && *c > 0.0) {
            self.cost_usd.get_or_create(&by_provider()).inc_by(usd);
        }
        // `provider:code,provider:code`, as the audit layer wrote it.
        for failed in event.fallback_from.iter().flat_map(|list| list.split(',')) {
            if let Some((provider, code)) = failed.split_once(':') {
                self.fallbacks
                    .get_or_create(&FallbackLabels {
                        provider: provider.to_owned(),
                        tool: tool.clone(),
                        error: code.to_owned(),
                    })
                    .inc();
            }
        }
        if event.upstream_attempts.unwrap_or(0) > 0 {
            self.upstream_latency
                .get_or_create(&labels)
                .observe(event.latency.as_secs_f64());
        }
    }

    /// The OpenMetrics text.
    fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %error, "cannot encode the metrics");
        }
        text
    }
}

/// Values read at scrape time from the parts that own them.
#[derive(Debug)]
struct Pulled {
    cache: Option<Arc<CacheCounters>>,
    key_fetches: fn() -> (u64, u64),
    audit: AuditSink,
}

impl Collector for Pulled {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::result::Result<(), std::fmt::Error> {
        let mut counter = |name: &str, help: &str, value: u64| {
            let metric = ConstCounter::new(value);
            let metric_encoder =
                encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(metric_encoder)
        };
        if let Some(cache) = &self.cache {
            counter(
                "token_cache_hits",
                "Access tokens answered from the verified-token cache",
                cache.hits.load(Ordering::Relaxed),
            )?;
            counter(
                "token_cache_misses",
                "Access tokens that needed verification",
                cache.misses.load(Ordering::Relaxed),
            )?;
        }
        let (ok, failed) = (self.key_fetches)();
        counter(
            "jwks_refreshes",
            "Signing-key fetches (or reloads) that succeeded",
            ok,
        )?;
        counter(
            "jwks_refresh_failures",
            "Signing-key fetches that failed",
            failed,
        )?;
        let stats = self.audit.stats();
        counter(
            "audit_events_set_aside",
            "Audit events that could not be stored, logged at error level instead",
            stats.set_aside,
        )?;
        let failures = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "audit_write_failures",
            "Audit writes that failed, by kind: transient (the store could not be written; \
             retried) or permanent (the store refused the rows; split and set aside)",
            None,
            failures.metric_type(),
        )?;
        for (kind, value) in [
            ("transient", stats.transient_failures),
            ("permanent", stats.permanent_failures),
        ] {
            let labels = [("kind", kind)];
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        let (queue_full, export_failed) = crate::telemetry::otlp::spans_dropped();
        let mut family = encoder.encode_descriptor(
            "otlp_spans_dropped",
            "Trace spans not exported, by reason: queue_full (more finished spans than the \
             export queue holds) or export_failed (the collector did not take their batch)",
            None,
            failures.metric_type(),
        )?;
        for (reason, value) in [("queue_full", queue_full), ("export_failed", export_failed)] {
            let labels = [("reason", reason)];
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        let depth = ConstGauge::new(i64::try_from(self.audit.queue_depth()).unwrap_or(i64::MAX));
        let metric_encoder = encoder.encode_descriptor(
            "audit_queue_depth",
            "Audit queue slots in use: events waiting for the writer and slots held by \
             requests in flight",
            None,
            depth.metric_type(),
        )?;
        depth.encode(metric_encoder)
    }
}

/// The budgets' state, read at scrape time.
struct BudgetState(Arc<Budgets>);

impl std::fmt::Debug for BudgetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BudgetState")
    }
}

impl Collector for BudgetState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::result::Result<(), std::fmt::Error> {
        let budgets = &self.0;
        let refused = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "budget_exhausted",
            "Tool calls refused because a daily budget was spent, by budget (principal or \
             total), on this replica",
            None,
            refused.metric_type(),
        )?;
        for scope in [BudgetScope::Principal, BudgetScope::Total] {
            let labels = [("scope", scope.as_str())];
            ConstCounter::new(budgets.refused(scope)).encode(family.encode_family(&labels)?)?;
        }
        if let Some(ratio) = budgets.total_used_ratio() {
            let gauge = ConstGauge::new(ratio);
            let mut family = encoder.encode_descriptor(
                "budget_used_ratio",
                "Share of a daily budget used, all replicas together, as of this replica's \
                 last chunk (scope total: the deployment's credits)",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(family.encode_family(&[("scope", "total")])?)?;
        }
        Ok(())
    }
}

/// The TLS certificate's state, read at scrape time.
#[derive(Debug)]
struct TlsState(Arc<super::tls::Reloads>);

impl Collector for TlsState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::result::Result<(), std::fmt::Error> {
        let expiry = ConstGauge::new(self.0.not_after());
        expiry.encode(encoder.encode_descriptor(
            "tls_certificate_expiry_timestamp_seconds",
            "When the served TLS certificate expires (Unix seconds)",
            None,
            expiry.metric_type(),
        )?)?;
        let placeholder = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "tls_reloads",
            "Certificate files read again after a change or SIGHUP, by outcome (loaded; refused: \
             the previous certificate stayed)",
            None,
            placeholder.metric_type(),
        )?;
        for (outcome, value) in [("loaded", self.0.loaded()), ("refused", self.0.refused())] {
            ConstCounter::new(value).encode(family.encode_family(&[("outcome", outcome)])?)?;
        }
        let failing = ConstGauge::new(i64::from(self.0.failing()));
        failing.encode(encoder.encode_descriptor(
            "tls_files_refused",
            "1 while the certificate files on disk do not load (the previous certificate is \
             still served), else 0",
            None,
            failing.metric_type(),
        )?)?;
        Ok(())
    }
}

/// The connection counts, read at scrape time.
#[derive(Debug)]
struct ConnectionCounts(Arc<super::Connections>);

impl Collector for ConnectionCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::result::Result<(), std::fmt::Error> {
        let waited = ConstCounter::new(self.0.waited());
        waited.encode(encoder.encode_descriptor(
            "connections_waited",
            "Connections that waited to be served because server.max_connections were open",
            None,
            waited.metric_type(),
        )?)?;
        let open = ConstGauge::new(i64::try_from(self.0.open()).unwrap_or(i64::MAX));
        open.encode(encoder.encode_descriptor(
            "connections_open",
            "Connections open now",
            None,
            open.metric_type(),
        )?)
    }
}

/// The route family of a path, for labels (bounded: never the raw path).
fn route_of(path: &str, mcp_path: &str) -> &'static str {
    if path == mcp_path {
        "mcp"
    } else if path.starts_with("/.well-known/") {
        "discovery"
    } else if path.starts_with("/idp/") {
        "authorization_server"
    } else if path == "/oauth/register" {
        "registration"
    } else if path.starts_with("/api/") {
        "admin"
    } else if matches!(path, "/healthz" | "/readyz") {
        "health"
    } else if path == "/metrics" {
        "metrics"
    } else if path.starts_with("/openapi") || path.starts_with("/docs") {
        "docs"
    } else {
        "other"
    }
}

fn outcome_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Middleware counting every request.
#[derive(Clone)]
pub struct MetricsLayer {
    /// Where to count.
    pub metrics: Arc<Metrics>,
    /// The MCP endpoint's path.
    pub mcp_path: String,
}

impl<E: Endpoint> Middleware<E> for MetricsLayer {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<MetricsLayer, E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let route = route_of(req.uri().path(), &self.layer.mcp_path);
        let started = Instant::now();
        let response = match self.inner.call(req).await {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        };
        let labels = RouteLabels {
            route,
            outcome: outcome_of(response.status()),
        };
        self.layer.metrics.requests.get_or_create(&labels).inc();
        self.layer
            .metrics
            .latency
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        Ok(response)
    }
}

/// `GET /metrics`: to anyone, or only to the clients `telemetry.metrics_allowed_from` names.
#[poem::handler]
pub fn metrics_endpoint(
    req: &poem::Request,
    metrics: poem::web::Data<&Arc<Metrics>>,
    allowed: poem::web::Data<&Arc<super::Networks>>,
) -> Response {
    let refused = !allowed.is_empty()
        && !super::ClientAddr::of(req).is_some_and(|addr| allowed.contains(addr.client));
    if refused {
        return Response::builder()
            .status(poem::http::StatusCode::FORBIDDEN)
            .content_type("text/plain; charset=utf-8")
            .body("/metrics answers only the addresses in telemetry.metrics_allowed_from\n");
    }
    Response::builder()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_small_fixed_set() {
        assert_eq!(route_of("/web-search/mcp", "/web-search/mcp"), "mcp");
        assert_eq!(
            route_of("/idp/token", "/web-search/mcp"),
            "authorization_server"
        );
        assert_eq!(route_of("/api/v1/clients/x", "/web-search/mcp"), "admin");
        assert_eq!(route_of("/anything/else", "/web-search/mcp"), "other");
    }
}
