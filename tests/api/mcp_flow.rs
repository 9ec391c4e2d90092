//! Contract: a real MCP client lists and calls `web_search` over Streamable HTTP; every MCP
//! revision rmcp serves is accepted (legacy initialize handshake and the stateless 2026-07-28
//! wire), with no session ever minted.

use rmcp::{
    ServiceExt,
    model::{
        CallToolRequestParams, ClientCapabilities, Implementation, InitializeRequestParams,
        ProtocolVersion,
    },
    transport::StreamableHttpClientTransport,
};
use searchgate::mcp::WebSearchOutput;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, tool_call};

#[tokio::test]
async fn rmcp_client_initializes_on_2025_11_25_lists_and_calls_web_search() {
    let app = spawn_app().await;
    let transport = StreamableHttpClientTransport::from_uri(app.mcp_url.as_str());
    let client_info = InitializeRequestParams::new(
        ClientCapabilities::default(),
        Implementation::new("test-client", "1.0"),
    )
    .with_protocol_version(ProtocolVersion::V_2025_11_25);
    let client = client_info
        .serve(transport)
        .await
        .expect("the handshake succeeds");

    let server = client.peer_info().expect("the server introduced itself");
    let implementation = server.server_info.as_ref().expect("serverInfo");
    assert_eq!(implementation.name, "searchgate");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        server.protocol_version,
        ProtocolVersion::V_2025_11_25,
        "the requested revision is echoed"
    );
    assert!(
        server.capabilities.tools.is_some(),
        "the tools capability is declared"
    );

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        ["web_search", "web_extract", "web_crawl", "web_map"],
        "the mock backend supports every tool"
    );
    let tool = &tools[0];
    assert_eq!(tool.name, "web_search");
    assert!(tool.description.as_deref().is_some_and(|d| d.len() > 40));
    let properties = tool.input_schema["properties"]
        .as_object()
        .expect("input properties");
    for (name, schema) in properties {
        assert!(
            schema["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "`{name}` is described"
        );
    }
    let output_schema = tool.output_schema.as_ref().expect("an output schema");
    assert_eq!(output_schema["type"], "object");
    assert_eq!(
        output_schema["required"],
        json!(["query", "provider", "results", "cached"])
    );

    let arguments = json!({ "query": "rust async runtimes", "max_results": 3 });
    let result = client
        .call_tool(
            CallToolRequestParams::new("web_search")
                .with_arguments(arguments.as_object().unwrap().clone()),
        )
        .await
        .expect("tools/call");
    assert_eq!(result.is_error, Some(false));
    let output: WebSearchOutput = serde_json::from_value(
        result
            .structured_content
            .clone()
            .expect("structuredContent"),
    )
    .unwrap();
    assert_eq!(output.provider, "mock");
    assert_eq!(output.query, "rust async runtimes");
    let urls: Vec<_> = output.results.iter().map(|r| r.url.as_ref()).collect();
    assert_eq!(
        urls,
        [
            "https://mock.searchgate.invalid/rust-async-runtimes/1",
            "https://mock.searchgate.invalid/rust-async-runtimes/2",
            "https://mock.searchgate.invalid/rust-async-runtimes/3",
        ]
    );
    assert_eq!(
        output.results[0].title,
        "[mock] rust async runtimes — result 1"
    );
    let text = result.content[0]
        .as_text()
        .expect("a text block")
        .text
        .clone();
    assert!(
        text.contains("3 results for \"rust async runtimes\""),
        "{text}"
    );
    assert!(
        text.contains("https://mock.searchgate.invalid/rust-async-runtimes/2"),
        "{text}"
    );
    client.cancel().await.expect("the client closes");
    app.stop().await;
}

#[tokio::test]
async fn a_stateless_2026_07_28_tools_call_needs_no_handshake() {
    let app = spawn_app().await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" }
    });
    let mut call = tool_call(
        "call-1",
        "web_search",
        json!({ "query": "stateless", "max_results": 1 }),
    );
    call["params"]["_meta"] = meta;
    let response = app
        .mcp_post_version(Some("2026-07-28"))
        .header("mcp-method", "tools/call")
        .header("mcp-name", "web_search")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("mcp-session-id").is_none(),
        "no session is minted"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "JSON responses, not SSE"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "call-1");
    let result = &body["result"];
    assert_eq!(
        result["resultType"], "complete",
        "2026-07-28 results carry resultType"
    );
    assert_eq!(
        result["structuredContent"]["results"][0]["url"],
        "https://mock.searchgate.invalid/stateless/1"
    );
    assert_eq!(
        result["structuredContent"]["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn server_discover_lists_every_supported_revision_and_the_tools_capability() {
    let app = spawn_app().await;
    let response = app.modern("server/discover", json!({})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let versions = body["result"]["supportedVersions"]
        .as_array()
        .expect("supportedVersions");
    for version in ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"] {
        assert!(
            versions.contains(&json!(version)),
            "{version} in {versions:?}"
        );
    }
    assert!(body["result"]["capabilities"]["tools"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn every_legacy_revision_completes_the_initialize_handshake() {
    let app = spawn_app().await;
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        // Clients send no version header with initialize: the body names the revision.
        let response = app
            .mcp_post_version(None)
            .json(&json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": { "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } }
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{version}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["result"]["protocolVersion"], version,
            "the requested revision is echoed"
        );
        assert_eq!(body["result"]["serverInfo"]["name"], "searchgate");
    }
    let (status, body) = app
        .rpc(json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" }))
        .await;
    assert_eq!(
        (status, body["result"].clone()),
        (200, json!({})),
        "ping answers an empty result"
    );
    app.stop().await;
}

#[tokio::test]
async fn tools_list_carries_cache_hints_on_the_modern_wire() {
    let app = spawn_app().await;
    let response = app.modern("tools/list", json!({})).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["ttlMs"], 300_000);
    assert_eq!(body["result"]["cacheScope"], "public");
    assert_eq!(body["result"]["tools"][0]["name"], "web_search");
    app.stop().await;
}
