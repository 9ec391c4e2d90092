//! Contract: the real binary, reached by rmcp's client with a token from its embedded server,
//! offers the tools the operator lists (ChatGPT's `search` and `fetch` with their exact
//! contracts among them), describes itself (title, instructions, icons, website) and each tool
//! (annotations, OAuth requirement in `_meta.securitySchemes`), and refuses a call without the
//! tool's scope either as an HTTP 403 step-up (the default) or, with
//! `auth.scope_refusal = tool_error`, as a tool error carrying the same challenge in
//! `_meta["mcp/www_authenticate"]`.

use std::{path::Path, process::Child};

use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, ClientCapabilities, Implementation, InitializeRequestParams},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::helpers::{free_port, searchgate, spawn_binary, tool_call};

/// A searchgate binary on its embedded defaults plus `extra`, offering `search`, `fetch` and
/// `web_search`, with `fetch` needing a scope of its own; and its MCP URL.
async fn server(dir: &Path, extra: &[(&str, &str)]) -> (Child, String, Vec<(String, String)>) {
    let port = free_port().to_string();
    let mut env: Vec<(String, String)> = [
        ("PORT", port.as_str()),
        ("SEARCHGATE_MCP__TOOLS", "search,fetch,web_search"),
        (
            "SEARCHGATE_MCP__WEBSITE_URL",
            "https://example.com/searchgate",
        ),
        ("SEARCHGATE_AUTH__TOOL_SCOPES__FETCH", "web-search:fetch"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.sort();
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let child = spawn_binary(dir, port.parse().unwrap(), &borrowed).await;
    (
        child,
        format!("http://127.0.0.1:{port}/web-search/mcp"),
        env,
    )
}

/// A token from the running server's embedded authorization server, with `scope`.
fn token(dir: &Path, env: &[(String, String)], scope: &str) -> String {
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = searchgate(dir, &borrowed)
        .args(["token", "--scope", scope])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn client(
    url: &str,
    token: &str,
) -> RunningService<rmcp::RoleClient, InitializeRequestParams> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
    );
    InitializeRequestParams::new(
        ClientCapabilities::default(),
        Implementation::new("clients-test", "1.0"),
    )
    .serve(transport)
    .await
    .expect("the handshake succeeds")
}

fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned())
        .with_arguments(arguments.as_object().unwrap().clone())
}

/// The one text item of a result, parsed as JSON.
fn only_text_as_json(result: &rmcp::model::CallToolResult) -> Value {
    assert_eq!(result.content.len(), 1, "exactly one content item");
    serde_json::from_str(&result.content[0].as_text().expect("text").text).expect("JSON text")
}

#[tokio::test(flavor = "multi_thread")]
async fn chatgpt_search_and_fetch_and_a_server_that_describes_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, env) = server(dir.path(), &[]).await;
    let both = token(dir.path(), &env, "web-search:read web-search:fetch");
    let client = client(&url, &both).await;

    let info = client.peer_info().expect("server info");
    let about = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(about.title.as_deref(), Some("searchgate web search"));
    assert_eq!(
        about.website_url.as_deref(),
        Some("https://example.com/searchgate")
    );
    let icons = about.icons.clone().expect("icons");
    let served = url.replace("/web-search/mcp", "/icon.svg");
    assert_eq!(icons[0].src, served);
    assert!(icons[1].src.starts_with("data:image/svg+xml;base64,"));
    let instructions = info.instructions.clone().expect("instructions");
    assert!(instructions.contains("fetch") && instructions.contains("Cite"));
    let icon = reqwest::get(&served).await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        ["search", "fetch", "web_search"],
        "the listed tools, in order"
    );
    for tool in &tools {
        let annotations = tool.annotations.as_ref().expect("annotations");
        assert!(annotations.title.is_some(), "{}", tool.name);
        assert_eq!(
            (
                annotations.read_only_hint,
                annotations.destructive_hint,
                annotations.idempotent_hint,
                annotations.open_world_hint
            ),
            (Some(true), Some(false), Some(true), Some(true)),
            "{}",
            tool.name
        );
        let scopes = if tool.name == "fetch" {
            json!(["web-search:fetch"])
        } else {
            json!(["web-search:read"])
        };
        assert_eq!(
            tool.meta.as_ref().expect("_meta").0["securitySchemes"],
            json!([{ "type": "oauth2", "scopes": scopes }]),
            "{}",
            tool.name
        );
    }

    // rmcp's typed Tool drops fields it does not know; the wire has the top-level copy.
    let raw: Value = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&both)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .json(
            &json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": { "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {} } } }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for tool in raw["result"]["tools"].as_array().expect("tools") {
        assert_eq!(
            tool["securitySchemes"], tool["_meta"]["securitySchemes"],
            "a first-class field and its _meta mirror: {tool}"
        );
        assert!(tool["securitySchemes"].is_array());
    }

    let found = client
        .call_tool(call("search", json!({ "query": "ferris" })))
        .await
        .expect("search");
    let results = only_text_as_json(&found);
    assert_eq!(Some(&results), found.structured_content.as_ref());
    let hits = results["results"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert_eq!(
        hits[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "title", "url"]
    );
    let id = hits[0]["id"].as_str().unwrap();
    let fetched = client
        .call_tool(call("fetch", json!({ "id": id })))
        .await
        .expect("fetch");
    let page = only_text_as_json(&fetched);
    assert_eq!(Some(&page), fetched.structured_content.as_ref());
    assert_eq!(
        (page["id"].as_str(), page["url"].as_str()),
        (Some(id), Some(id))
    );
    assert!(!page["text"].as_str().unwrap().is_empty());
    assert_eq!(page["metadata"]["provider"], "mock");
    let _ = client.cancel().await;
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_scope_is_an_http_403_step_up_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, env) = server(dir.path(), &[]).await;
    let read_only = token(dir.path(), &env, "web-search:read");
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&read_only)
        .header("accept", "application/json, text/event-stream")
        .json(&tool_call(
            1,
            "fetch",
            json!({ "id": "https://example.com/" }),
        ))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"web-search:fetch\""),
        "{challenge}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_tool_error_refusals_the_same_challenge_comes_in_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, env) = server(
        dir.path(),
        &[("SEARCHGATE_AUTH__SCOPE_REFUSAL", "tool_error")],
    )
    .await;
    let read_only = token(dir.path(), &env, "web-search:read");
    let client = client(&url, &read_only).await;
    let refused = client
        .call_tool(call("fetch", json!({ "id": "https://example.com/" })))
        .await
        .expect("a tool result, not an HTTP failure");
    let allowed = client
        .call_tool(call("search", json!({ "query": "ferris" })))
        .await
        .expect("search");
    let _ = client.cancel().await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(refused.is_error, Some(true));
    let meta = &refused.meta.as_ref().expect("_meta").0;
    let challenge = meta["mcp/www_authenticate"][0].as_str().unwrap();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"web-search:fetch\"")
            && challenge.contains("resource_metadata=\"http://127.0.0.1:"),
        "{challenge}"
    );
    assert_eq!(meta["searchgate/error"]["code"], "insufficient_scope");
    assert_ne!(
        allowed.is_error,
        Some(true),
        "a tool the token opens still works"
    );
}
