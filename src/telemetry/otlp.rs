//! Trace export over OTLP/HTTP (protobuf) to an OpenTelemetry collector, when one is configured.
//!
//! The export never holds up a request: finished spans go to the SDK's batch processor, which
//! exports from its own thread; in front of it a gate bounds the spans in flight (queued or
//! being exported) and drops, and counts, what does not fit. A failing collector is logged once
//! per outage (again when it answers), never per span or batch, and the spans it loses are
//! counted too; both counts are read by `/metrics` (`searchgate_otlp_spans_dropped_total`).
//!
//! What the SDK reads from the environment itself: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (when `telemetry.otlp_endpoint` is unset), `…_HEADERS`,
//! `…_COMPRESSION` (none built in), `OTEL_TRACES_SAMPLER` and `…_ARG`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` and the span limits. Set here: the default service
//! name `searchgate` (when neither variable names one), `service.version`, the HTTP client
//! (the tree's reqwest, run on the server's Tokio runtime) with `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`
//! / `OTEL_EXPORTER_OTLP_TIMEOUT`, and `OTEL_SDK_DISABLED=true` turning export off.

use std::{
    env,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use opentelemetry::{Context, Key, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{
        BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, Span, SpanData, SpanExporter,
        SpanProcessor,
    },
};
use url::Url;

/// Spans dropped because the export queue was full.
static DROPPED_QUEUE_FULL: AtomicU64 = AtomicU64::new(0);
/// Spans dropped because the collector did not take their batch.
static DROPPED_EXPORT_FAILED: AtomicU64 = AtomicU64::new(0);

/// The export queue's capacity when `OTEL_BSP_MAX_QUEUE_SIZE` does not set one (the SDK's).
const DEFAULT_QUEUE: usize = 2048;
/// The export timeout when `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT` does not set one (the SDK's).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a collector's answer read (it is a few bytes of protobuf).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Spans dropped so far: `(queue_full, export_failed)`.
pub fn spans_dropped() -> (u64, u64) {
    (
        DROPPED_QUEUE_FULL.load(Ordering::Relaxed),
        DROPPED_EXPORT_FAILED.load(Ordering::Relaxed),
    )
}

/// Where the traces go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Destination {
    /// `telemetry.otlp_endpoint`, with `/v1/traces`.
    Url(String),
    /// The standard variables, which the exporter reads itself.
    Environment,
}

/// Where to export to, or `None` when no collector is configured (or `OTEL_SDK_DISABLED=true`).
pub(super) fn destination(configured: Option<&Url>) -> Option<Destination> {
    let set = |name: &str| env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    if let Some(url) = configured {
        return Some(Destination::Url(traces_url(url)));
    }
    (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .then_some(Destination::Environment)
}

/// The traces URL under a collector's base URL, as the OTLP exporter specification derives it
/// from `OTEL_EXPORTER_OTLP_ENDPOINT`; a URL already ending in `/v1/traces` is kept.
fn traces_url(base: &Url) -> String {
    if base.path().trim_end_matches('/').ends_with("/v1/traces") {
        return base.as_str().to_owned();
    }
    format!("{}/v1/traces", base.as_str().trim_end_matches('/'))
}

/// A tracer provider exporting to `destination` from a batch processor behind a bounded gate.
///
/// # Errors
/// Outside a Tokio runtime, or when the exporter cannot be built (a malformed endpoint
/// variable, `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`).
pub(super) fn provider(destination: &Destination) -> Result<SdkTracerProvider, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "trace export needs the server's Tokio runtime".to_owned())?;
    let timeout = env_millis("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| env_millis("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .unwrap_or(DEFAULT_TIMEOUT);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the OTLP HTTP client: {e}"))?;
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(TokioHttpClient { client, runtime })
        .with_timeout(timeout);
    if let Destination::Url(url) = destination {
        builder = builder.with_endpoint(url.clone());
    }
    let exporter = builder.build().map_err(|e| e.to_string())?;
    let capacity = env::var("OTEL_BSP_MAX_QUEUE_SIZE")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_QUEUE);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let batch = BatchSpanProcessor::builder(Watched {
        inner: exporter,
        in_flight: in_flight.clone(),
        failing: AtomicBool::new(false),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(capacity)
            .build(),
    )
    .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(Gate {
            inner: batch,
            in_flight,
            capacity,
        })
        .with_resource(resource())
        .build())
}

/// The detected resource (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`), named `searchgate`
/// and versioned unless those say otherwise.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let mut builder = Resource::builder();
    if detected
        .get(&Key::from_static_str("service.name"))
        .is_none_or(|name| name.as_str().starts_with("unknown_service"))
    {
        builder = builder.with_service_name("searchgate");
    }
    if detected
        .get(&Key::from_static_str("service.version"))
        .is_none()
    {
        builder =
            builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

fn env_millis(name: &str) -> Option<Duration> {
    env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// Drops (and counts) a finished span when the spans in flight fill the queue, so the batch
/// processor's own queue never fills and every drop is counted.
#[derive(Debug)]
struct Gate {
    inner: BatchSpanProcessor,
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
}

impl SpanProcessor for Gate {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            release(&self.in_flight, 1);
            DROPPED_QUEUE_FULL.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

fn release(in_flight: &AtomicUsize, n: usize) {
    let _ = in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        Some(v.saturating_sub(n))
    });
}

/// The exporter, watched: each batch leaves the gate's count when its export ends; a failed
/// export is counted and logged once until an export succeeds again.
#[derive(Debug)]
struct Watched<E> {
    inner: E,
    in_flight: Arc<AtomicUsize>,
    failing: AtomicBool,
}

impl<E: SpanExporter> SpanExporter for Watched<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        release(&self.in_flight, spans);
        match &result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("the OpenTelemetry collector takes traces again");
                }
            }
            Err(error) => {
                DROPPED_EXPORT_FAILED.fetch_add(spans as u64, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %error,
                        "cannot export traces to the OpenTelemetry collector; spans are dropped \
                         (searchgate_otlp_spans_dropped_total) and this is not logged again until \
                         it takes them"
                    );
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The tree's reqwest client, run on the server's runtime: the batch processor exports from a
/// plain thread, where reqwest's async client has no reactor of its own.
#[derive(Debug)]
struct TokioHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait]
impl HttpClient for TokioHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let (status, headers, body) = self
            .runtime
            .spawn(async move {
                let mut response = client.execute(request).await?;
                let (status, headers) = (response.status(), response.headers().clone());
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(HttpError::from("the collector's answer is too large"));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok::<_, HttpError>((status, headers, body))
            })
            .await??;
        let mut response = Response::builder().status(status).body(Bytes::from(body))?;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_appended_to_a_base_url_once() {
        for (base, expected) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/otlp",
                "https://otel.example/otlp/v1/traces",
            ),
            (
                "http://collector:4318/v1/traces",
                "http://collector:4318/v1/traces",
            ),
        ] {
            let url = Url::parse(base).expect("a valid URL");
            assert_eq!(
                traces_url(&url),
                expected,
                "{base}: like OTEL_EXPORTER_OTLP_ENDPOINT"
            );
        }
    }

    #[test]
    fn the_gate_releases_what_it_counted_and_never_wraps() {
        let in_flight = AtomicUsize::new(2);
        release(&in_flight, 3);
        assert_eq!(
            in_flight.load(Ordering::Relaxed),
            0,
            "more released than counted stays at zero"
        );
    }
}
