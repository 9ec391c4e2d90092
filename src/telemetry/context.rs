//! W3C trace context: the parent a client names in `traceparent` / `tracestate` (an HTTP header,
//! or `params._meta` of an MCP request), read with OpenTelemetry's own propagator, and the trace
//! id a request ends up in, for its audit row and log lines.

use opentelemetry::{
    Context,
    propagation::{Extractor, TextMapPropagator},
    trace::TraceContextExt,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::domain::TRACE_TARGET;

/// The longest `traceparent` read (version 00 has 55 characters; later versions may add some).
pub const MAX_TRACEPARENT_CHARS: usize = 128;
/// The longest `tracestate` read: W3C Trace Context §3.3.1.5 asks to propagate at least 512
/// characters; a longer one is dropped rather than cut mid-member.
pub const MAX_TRACESTATE_CHARS: usize = 512;

/// Whether spans are exported (an OTLP exporter is configured): a callsite check, nearly free.
pub fn traces_on() -> bool {
    tracing::enabled!(target: TRACE_TARGET, tracing::Level::INFO)
}

/// The two values, as the propagator reads them.
struct Carrier<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The remote parent that `traceparent` (with `tracestate`) names, when it is valid and within
/// [`MAX_TRACEPARENT_CHARS`]; a `tracestate` over [`MAX_TRACESTATE_CHARS`] is left out.
pub fn remote_parent(traceparent: &str, tracestate: Option<&str>) -> Option<Context> {
    if traceparent.len() > MAX_TRACEPARENT_CHARS {
        return None;
    }
    let carrier = Carrier {
        traceparent,
        tracestate: tracestate.filter(|s| s.len() <= MAX_TRACESTATE_CHARS),
    };
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// The trace id (32 lowercase hex digits) of `cx`'s span, when it has a valid one.
pub fn trace_id(cx: &Context) -> Option<String> {
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
}

/// The trace id `span` is exported in, when traces are on.
pub fn span_trace_id(span: &tracing::Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    trace_id(&span.context())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_traceparent_names_the_remote_parent() {
        let cx = remote_parent(PARENT, Some("vendor=x")).expect("valid");
        assert_eq!(
            trace_id(&cx).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(
            cx.span().span_context().span_id().to_string(),
            "b7ad6b7169203331"
        );
        assert!(
            cx.span().span_context().is_remote(),
            "it came from the client"
        );
    }

    #[test]
    fn malformed_or_oversized_traceparents_are_ignored() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "not a traceparent",
            &format!("{PARENT}-{}", "0".repeat(200)),
        ] {
            assert!(remote_parent(bad, None).is_none(), "{bad:?} is no parent");
        }
    }

    #[test]
    fn an_oversized_tracestate_is_left_out_but_the_parent_kept() {
        let state = format!("vendor={}", "x".repeat(MAX_TRACESTATE_CHARS));
        let cx = remote_parent(PARENT, Some(&state)).expect("the parent still counts");
        assert!(
            cx.span().span_context().trace_state().header().is_empty(),
            "no state over the bound"
        );
    }
}
