//! The MCP server: rmcp's `ServerHandler` for searchgate's tools, served over Streamable HTTP
//! statelessly with JSON responses. Tools parse arguments into domain types, call the ports and
//! map errors; they hold no business rules.

mod call_record;
mod web_search;

use std::{sync::Arc, time::Duration};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
        Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
        Tool,
    },
    service::RequestContext,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use call_record::{CallInfo, CallRecord};
pub use web_search::{WebSearchArgs, WebSearchHit, WebSearchOutput};

use crate::domain::{auth::ScopePolicy, search::SearchProvider};

/// How long clients may cache `tools/list` (2026-07-28 cache hints): the list only changes on
/// restart.
const TOOLS_TTL: Duration = Duration::from_secs(300);

/// searchgate's MCP handler. Cheap to clone: one clone serves each request.
#[derive(Clone)]
pub struct McpServer {
    search: Arc<dyn SearchProvider>,
    tools: Arc<[Tool]>,
    scopes: Option<Arc<ScopePolicy>>,
}

impl McpServer {
    /// A server whose tools use `search`.
    pub fn new(search: Arc<dyn SearchProvider>) -> Self {
        Self {
            search,
            tools: Arc::new([web_search::definition()]),
            scopes: None,
        }
    }

    /// Checks each tool's scopes again in the handler. The HTTP layer answers a missing scope
    /// with a 403 step-up before dispatch; this second check keeps a tool closed even if a
    /// request ever got past that layer.
    pub fn with_scope_policy(mut self, scopes: Arc<ScopePolicy>) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// The names of the tools this server offers.
    pub fn tool_names(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().map(|tool| tool.name.as_ref())
    }

    /// The rmcp Streamable HTTP service for this handler: stateless (no `Mcp-Session-Id`, GET
    /// and DELETE answer 405), JSON responses, bodies bounded to `max_body_bytes`. `Host` and
    /// `Origin` are checked by the HTTP layer before authentication, so rmcp's own host check is
    /// off here rather than done twice.
    pub fn into_service(
        self,
        max_body_bytes: usize,
        shutdown: CancellationToken,
    ) -> StreamableHttpService<Self, NeverSessionManager> {
        let config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_max_request_body_bytes(max_body_bytes)
            .with_cancellation_token(shutdown);
        StreamableHttpService::new(move || Ok(self.clone()), Arc::default(), config)
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("searchgate", env!("CARGO_PKG_VERSION"))
                    .with_title("searchgate web search"),
            )
            .with_instructions(
                "Web search for agents. Call web_search with a specific query to get ranked \
                 results (title, URL, excerpt, relevance score). Cite the URLs you use.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let ttl_ms = u64::try_from(TOOLS_TTL.as_millis()).expect("a small constant");
        let mut result = ListToolsResult::with_all_items(self.tools.to_vec()).with_ttl_ms(ttl_ms);
        result.cache_scope = Some(CacheScope::Public);
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|tool| tool.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let record = CallRecord::from_context(&context);
        // rmcp runs handlers on their own task, outside the HTTP request's span; this span
        // puts the request id back on every line the tool logs.
        let principal = record
            .as_ref()
            .and_then(|r| r.read(|info| info.principal.clone()));
        if let Some(scopes) = &self.scopes {
            let required = scopes.required_for_tool(&request.name);
            let allowed = principal
                .as_ref()
                .is_some_and(|p| scopes.satisfies(&p.scopes, required));
            if !allowed {
                tracing::error!(tool = %request.name, "a tools/call without the tool's scopes reached the handler");
                if let Some(record) = &record {
                    record.tool_finished(Some("insufficient_scope"));
                }
                let text = format!(
                    "Calling {} needs the scope {}.",
                    request.name,
                    required.join(" ")
                );
                return Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into());
            }
        }
        let subject = principal.map(|p| p.subject);
        let span = tracing::info_span!(
            "tool",
            request_id = record.as_ref().map_or("", CallRecord::request_id),
            tool = %request.name,
            subject = subject.as_deref().unwrap_or(""),
        );
        let result = match request.name.as_ref() {
            web_search::NAME => {
                web_search::call(self.search.as_ref(), request.arguments)
                    .instrument(span)
                    .await
            }
            other => {
                // Spec: an unknown tool is a protocol error (-32602), not a tool result.
                return Err(McpError::invalid_params(
                    format!("Unknown tool: {other}"),
                    None,
                ));
            }
        };
        if let Some(record) = record {
            record.tool_finished(result.error_code);
        }
        Ok(result.result.into())
    }
}
