//! The MCP request path's own work, without the network: the envelope reader on a
//! `tools/call` body (what the endpoint does before rmcp parses it) and the serialization of a
//! `web_search` result (structured content, its text rendering, and the JSON-RPC response
//! bytes rmcp writes). Token checks are in `verify.rs`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rmcp::model::{NumberOrString, ServerJsonRpcMessage, ServerResult};
use searchgate::{
    domain::search::{SearchResult, SearchResults, UpstreamUsage},
    http::read_envelope,
    mcp::web_search_result,
};

/// The body `bench/load.sh` sends.
const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"web_search","arguments":{"query":"rust async runtimes","max_results":5},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

/// What the mock provider answers for that body: five hits of the same shape.
fn mock_results(count: usize) -> SearchResults {
    let query = "rust async runtimes";
    SearchResults {
        query: query.to_owned(),
        answer: None,
        images: Vec::new(),
        results: (1..=count)
            .map(|rank| SearchResult {
                title: format!("[mock] {query} — result {rank}"),
                url: format!("https://mock.searchgate.invalid/rust-async-runtimes/{rank}"),
                content: format!(
                    "Mock result {rank} of {count} for \"{query}\" (depth basic, topic general). \
                     Placeholder text from searchgate's mock search provider, not a web page; \
                     configure a real provider (TAVILY_API_KEY) for real results."
                ),
                score: 1.0 - rank as f64 / 100.0,
                ..SearchResult::default()
            })
            .collect(),
        usage: UpstreamUsage {
            credits: Some(1.0),
            request_id: Some("mock-request".into()),
            response_time: Some(0.01),
            cost_dollars: None,
        },
    }
}

fn envelope(c: &mut Criterion) {
    assert_eq!(
        read_envelope(CALL),
        Ok((Some("tools/call".into()), Some("web_search".into()))),
        "the benchmark body is read as the endpoint reads it"
    );
    c.bench_function("envelope reader (tools/call body, accepted)", |b| {
        b.iter(|| read_envelope(black_box(CALL)))
    });
}

fn serialization(c: &mut Criterion) {
    for count in [5, 20] {
        let results = mock_results(count);
        c.bench_function(
            &format!("web_search result, {count} hits (build + JSON-RPC bytes)"),
            |b| {
                b.iter(|| {
                    let result = web_search_result("mock", black_box(&results), count);
                    let message = ServerJsonRpcMessage::response(
                        ServerResult::CallToolResult(result),
                        NumberOrString::Number(1),
                    );
                    serde_json::to_vec(&message).expect("a result serializes")
                })
            },
        );
    }
}

criterion_group!(benches, envelope, serialization);
criterion_main!(benches);
