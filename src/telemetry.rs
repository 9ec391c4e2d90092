//! The tracing subscriber: human-readable lines by default, JSON by configuration. `RUST_LOG`,
//! when set, overrides the configured filter. Request spans carry the request id, so every line
//! logged while serving a request names it. Every field value, ours or a library's (rmcp's
//! warnings quote method and tool names), is cut to [`MAX_FIELD_CHARS`] characters and marked
//! `…`, so client-controlled text cannot grow the logs without bound.
//!
//! OpenTelemetry traces ([`otlp`]) are a second layer beside the log lines, present only when a
//! collector is configured. Each layer has its own filter: the spans made for traces (target
//! [`TRACE_TARGET`]) go to the trace layer only, so the log lines are the same with traces on
//! or off; the trace layer takes those spans and searchgate's warnings and errors (as span
//! events), nothing else.

pub mod context;
pub mod otlp;

use std::{fmt::Debug, io, time::Duration};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;
use tracing::field::Field;
use tracing_subscriber::{
    EnvFilter, Layer,
    field::MakeExt,
    filter::{FilterExt, filter_fn},
    fmt::{self, MakeWriter, format::Writer},
    prelude::*,
};

use crate::{
    config::{LogFormat, TelemetrySettings},
    domain::TRACE_TARGET,
};

/// The most characters of one field value a log line keeps.
pub const MAX_FIELD_CHARS: usize = 256;

/// The longest the exporter is given at shutdown to send the spans it holds.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The trace exporter, when there is one: kept to flush it at shutdown.
#[derive(Debug, Default)]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// Whether traces are exported.
    pub fn is_on(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still queued and stops the exporter, waiting at most a few seconds (an
    /// unreachable collector does not hold up the exit).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK's shutdown blocks until its export thread is done.
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT));
        match tokio::time::timeout(FLUSH_TIMEOUT + Duration::from_secs(1), flushed).await {
            Ok(Ok(Ok(()))) => tracing::debug!("trace exporter flushed"),
            Ok(Ok(Err(error))) => {
                tracing::warn!(error = %error, "the trace exporter did not flush")
            }
            _ => tracing::warn!("the trace exporter did not flush in time"),
        }
    }
}

/// Installs the global subscriber, writing to stderr, and the trace exporter when a collector is
/// configured (`telemetry.otlp_endpoint` or the standard `OTEL_EXPORTER_OTLP_*` variables; see
/// [`otlp`]). Later calls are ignored, so tests may call it freely.
pub fn init(settings: &TelemetrySettings) -> Tracing {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let not_traces = || filter_fn(|meta: &tracing::Metadata<'_>| meta.target() != TRACE_TARGET);
    let destination = otlp::destination(settings.otlp_endpoint.as_ref());
    let built = destination.as_ref().map(otlp::provider);
    let provider = built.as_ref().and_then(|b| b.as_ref().ok()).cloned();
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("searchgate"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_level(false)
            .with_tracked_inactivity(false)
            .with_filter(filter_fn(|meta| {
                meta.target() == TRACE_TARGET
                    || (meta.is_event()
                        && *meta.level() <= tracing::Level::WARN
                        && meta.target().starts_with("searchgate"))
            }))
    });
    let registry = tracing_subscriber::registry();
    // Without traces the filters stay global, as cheap as before: the trace spans are never
    // enabled, so making one costs a callsite check.
    let installed = match (settings.format, traces) {
        (LogFormat::Text, None) => registry
            .with(filter)
            .with(not_traces())
            .with(text_layer(io::stderr))
            .try_init(),
        (LogFormat::Json, None) => registry
            .with(filter)
            .with(not_traces())
            .with(json_layer(io::stderr))
            .try_init(),
        (LogFormat::Text, Some(traces)) => registry
            .with(traces)
            .with(text_layer(io::stderr).with_filter(filter.and(not_traces())))
            .try_init(),
        (LogFormat::Json, Some(traces)) => registry
            .with(traces)
            .with(json_layer(io::stderr).with_filter(filter.and(not_traces())))
            .try_init(),
    };
    if installed.is_err() {
        return Tracing::default();
    }
    match (&destination, built) {
        (Some(destination), Some(Ok(_))) => {
            tracing::info!(destination = ?destination, "exporting traces over OTLP/HTTP");
        }
        (_, Some(Err(error))) => {
            tracing::error!(error = %error, "traces are off: the OTLP exporter cannot be built");
        }
        _ => {}
    }
    Tracing { provider }
}

/// Text lines whose field values are bounded.
fn text_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fields = fmt::format::debug_fn(
        |writer: &mut Writer<'_>, field: &Field, value: &dyn Debug| {
            let text = format!("{value:?}");
            let text = bounded(&text);
            if field.name() == "message" {
                write!(writer, "{text}")
            } else {
                write!(writer, "{field}={text}")
            }
        },
    )
    .delimited(" ");
    fmt::layer().fmt_fields(fields).with_writer(writer)
}

/// JSON lines whose string values are bounded. The JSON formatter writes event fields itself,
/// so the bound is applied to each finished line.
fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(BoundedJson(writer))
}

/// `text` cut to [`MAX_FIELD_CHARS`] characters, marked with `…` when cut.
fn bounded(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_FIELD_CHARS) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

/// Bounds every string in a JSON value, in place.
fn bound_strings(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(cut) = bounded(text) {
                *text = cut;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(bound_strings),
        Value::Object(members) => members.values_mut().for_each(bound_strings),
        _ => {}
    }
}

/// A writer maker whose writers bound the strings of each JSON line they are given.
struct BoundedJson<W>(W);

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for BoundedJson<W> {
    type Writer = BoundedJsonWriter<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        BoundedJsonWriter(self.0.make_writer())
    }
}

/// See [`BoundedJson`]. The fmt layer hands over each formatted event in one `write`.
struct BoundedJsonWriter<W>(W);

impl<W: io::Write> io::Write for BoundedJsonWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A short line cannot hold a string over the bound; skip the parse.
        if buf.len() <= MAX_FIELD_CHARS {
            return self.0.write_all(buf).map(|()| buf.len());
        }
        for line in buf.split_inclusive(|b| *b == b'\n') {
            match serde_json::from_slice::<Value>(line) {
                Ok(mut value) => {
                    bound_strings(&mut value);
                    let mut out = serde_json::to_vec(&value).map_err(io::Error::other)?;
                    if line.ends_with(b"\n") {
                        out.push(b'\n');
                    }
                    self.0.write_all(&out)?;
                }
                Err(_) => self.0.write_all(line)?,
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer maker that keeps what was written.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    fn logged(json: bool) -> String {
        let captured = Captured::default();
        let huge = "n".repeat(500 * 1024);
        let log = || {
            let span = tracing::info_span!("request", request_id = %huge);
            let _entered = span.enter();
            tracing::warn!(name = %huge, quoted = huge.as_str(), "unknown tool: {huge}");
        };
        if json {
            let subscriber = tracing_subscriber::registry().with(json_layer(captured.clone()));
            tracing::subscriber::with_default(subscriber, log);
        } else {
            let subscriber = tracing_subscriber::registry().with(text_layer(captured.clone()));
            tracing::subscriber::with_default(subscriber, log);
        }
        let bytes = captured.0.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn a_500_kb_value_is_logged_as_a_marked_prefix_in_both_formats() {
        for json in [false, true] {
            let line = logged(json);
            assert!(line.len() < 4 * 1024, "json={json}: {} bytes", line.len());
            assert!(
                line.matches('…').count() >= 4,
                "json={json}: every long value is marked: {line}"
            );
            assert!(
                line.contains(&"n".repeat(MAX_FIELD_CHARS)),
                "json={json}: a prefix stays"
            );
            if json {
                let value: Value = serde_json::from_str(line.trim()).expect("still JSON");
                assert_eq!(value["level"], "WARN");
            }
        }
    }
}
