//! The rmcp-only server of bench/ratio.sh: rmcp's Streamable HTTP service mounted in poem exactly
//! as searchgate mounts it (stateless, JSON responses, the same conversion in and out), with one
//! tool, `web_search`, that returns a fixed result. No auth, audit, tracing or metrics: what is
//! left is what rmcp and poem cost, the ceiling searchgate is measured against.
//!
//! `rmcp-only ADDRESS RESPONSE_FILE` serves `/web-search/mcp` on ADDRESS; RESPONSE_FILE is
//! searchgate's JSON-RPC answer to the workload, whose `result` (text and `structuredContent`)
//! becomes the fixed result, so both servers send the same bytes.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{net::SocketAddr, sync::Arc};

use http_body_util::BodyExt;
use poem::{Endpoint, Request, Response, Route, Server, listener::TcpListener};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, JsonObject,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

/// searchgate's default `server.max_body_bytes`.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The one tool and its fixed answer. Cheap to clone: rmcp takes one clone per request.
#[derive(Clone)]
struct FixedSearch {
    tool: Arc<Tool>,
    result: Arc<CallToolResult>,
}

impl FixedSearch {
    /// The tool `web_search` answering `result`.
    fn new(result: CallToolResult) -> Self {
        let schema = |value: serde_json::Value| -> Arc<JsonObject> {
            Arc::new(serde_json::from_value(value).expect("the schemas below are objects"))
        };
        let input = schema(serde_json::json!({
            "type": "object",
            "properties": {
                "query": { "type": "string" },
                "max_results": { "type": "integer" }
            },
            "required": ["query"]
        }));
        let tool = Tool::new("web_search", "Search the web (a fixed result).", input)
            .with_raw_output_schema(schema(serde_json::json!({ "type": "object" })));
        Self {
            tool: Arc::new(tool),
            result: Arc::new(result),
        }
    }
}

impl ServerHandler for FixedSearch {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("rmcp-only", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(vec![Tool::clone(
            &self.tool,
        )]))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        (self.tool.name == name).then(|| Tool::clone(&self.tool))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if request.name != self.tool.name {
            return Err(McpError::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        }
        Ok(CallToolResult::clone(&self.result).into())
    }
}

/// Hands the request to rmcp, as searchgate's `RmcpEndpoint` does.
struct RmcpEndpoint {
    service: StreamableHttpService<FixedSearch, NeverSessionManager>,
}

impl Endpoint for RmcpEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Self::Output> {
        let response = self.service.handle(http::Request::from(req)).await;
        let (parts, body) = response.into_parts();
        let body = body.map_err(|never| -> std::io::Error { match never {} });
        Ok(Response::from(http::Response::from_parts(parts, body)))
    }
}

/// The `result` of the JSON-RPC response in `file`.
fn fixed_result(file: &str) -> Result<CallToolResult, Box<dyn std::error::Error>> {
    let text = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let mut response: serde_json::Value = serde_json::from_slice(&text)?;
    let result = response
        .get_mut("result")
        .map(serde_json::Value::take)
        .ok_or_else(|| format!("{file}: not a JSON-RPC result"))?;
    Ok(serde_json::from_value(result)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(file), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: rmcp-only ADDRESS RESPONSE_FILE".into());
    };
    let address: SocketAddr = address.parse()?;
    let handler = FixedSearch::new(fixed_result(&file)?);
    // searchgate's `McpServer::into_service`, setting for setting.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_cancellation_token(CancellationToken::new());
    let service = StreamableHttpService::new(move || Ok(handler.clone()), Arc::default(), config);
    let app = Route::new().at("/web-search/mcp", RmcpEndpoint { service });
    println!("rmcp-only listening on {address}");
    Server::new(TcpListener::bind(address)).run(app).await?;
    Ok(())
}
