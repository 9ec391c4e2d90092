//! The MCP server: rmcp's `ServerHandler` for searchgate's tools, served over Streamable HTTP
//! statelessly with JSON responses. Tools parse arguments into domain types, call the ports and
//! map errors; they hold no business rules.

mod call_record;
mod page_tools;
mod search_fetch;
pub mod server_info;
mod tool;
mod web_crawl;
mod web_extract;
mod web_map;
mod web_search;

use std::{sync::Arc, time::Duration};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
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

/// The `web_search` result for `results` as the tool builds it (structured content and its
/// text rendering); public for the result-serialization benchmark in `benches/`.
#[doc(hidden)]
pub fn web_search_result(
    provider: &'static str,
    results: &SearchResults,
    max: usize,
) -> CallToolResult {
    let stats = CallStats {
        provider,
        ..CallStats::default()
    };
    web_search::success(results, max, SearchArguments::NONE, stats).result
}

use crate::domain::{
    audit,
    auth::{Principal, ScopePolicy},
    search::{
        Backends, CallStats, Caller, Capability, SearchArguments, SearchResults, SearchService,
    },
};
use crate::http::Challenge;

/// The tools searchgate can offer: the four web tools, and ChatGPT's `search` and `fetch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WebTool {
    Search,
    Extract,
    Crawl,
    Map,
    ConnectorSearch,
    ConnectorFetch,
}

impl WebTool {
    /// Every tool, in the order `tools/list` gives them.
    const ALL: [Self; 6] = [
        Self::Search,
        Self::Extract,
        Self::Crawl,
        Self::Map,
        Self::ConnectorSearch,
        Self::ConnectorFetch,
    ];

    /// Offered unless the operator lists tools: the web tools.
    const DEFAULT: [Self; 4] = [Self::Search, Self::Extract, Self::Crawl, Self::Map];

    /// The tool's name on the wire.
    const fn name(self) -> &'static str {
        match self {
            Self::Search => web_search::NAME,
            Self::Extract => web_extract::NAME,
            Self::Crawl => web_crawl::NAME,
            Self::Map => web_map::NAME,
            Self::ConnectorSearch => search_fetch::SEARCH,
            Self::ConnectorFetch => search_fetch::FETCH,
        }
    }

    /// What the tool needs of a backend.
    fn capability(self) -> Capability {
        match self {
            Self::Search => Capability::Search,
            Self::Extract => Capability::Extract,
            Self::Crawl => Capability::Crawl,
            Self::Map => Capability::Map,
            Self::ConnectorSearch => Capability::Search,
            Self::ConnectorFetch => Capability::Extract,
        }
    }

    /// The tool's definition for `tools/list`.
    fn definition(self, backends: &Backends) -> Tool {
        match self {
            Self::Search => {
                let providers: Vec<&str> = backends
                    .iter()
                    .filter(|b| b.has(Capability::Search))
                    .map(|b| b.name)
                    .collect();
                web_search::definition(&providers)
            }
            Self::Extract => web_extract::definition(),
            Self::Crawl => web_crawl::definition(),
            Self::Map => web_map::definition(),
            Self::ConnectorSearch => search_fetch::search_definition(),
            Self::ConnectorFetch => search_fetch::fetch_definition(),
        }
    }
}

/// The names of every tool searchgate can offer; which are listed depends on the backend's
/// capabilities.
pub const ALL_TOOLS: &[&str] = &{
    let mut names = [""; WebTool::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = WebTool::ALL[i].name();
        i += 1;
    }
    names
};

/// Why a listed tool cannot be offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnservableTool {
    /// No tool has this name.
    #[error("`{0}` is not a tool searchgate has")]
    Unknown(String),
    /// No configured backend can serve the tool.
    #[error("no configured search backend can serve `{0}`")]
    Unsupported(&'static str),
}

/// How long clients may cache `tools/list` (2026-07-28 cache hints): the list only changes on
/// restart.
const TOOLS_TTL: Duration = Duration::from_secs(300);

/// searchgate's MCP handler. Cheap to clone: one clone serves each request.
#[derive(Clone)]
pub struct McpServer {
    service: Arc<SearchService>,
    /// The tools offered, and their definitions in the same order.
    offered: Arc<[WebTool]>,
    tools: Arc<[Tool]>,
    scopes: Option<Arc<ScopePolicy>>,
    /// Set when a missing scope is refused with a tool error carrying this challenge.
    refusal: Option<Arc<Challenge>>,
    /// `serverInfo`.
    info: Arc<rmcp::model::Implementation>,
}

impl McpServer {
    /// A server whose tools use `service`: the web tools its backends support.
    pub fn new(service: Arc<SearchService>) -> Self {
        let offered: Vec<WebTool> = WebTool::DEFAULT
            .into_iter()
            .filter(|tool| service.backends().offer(tool.capability()))
            .collect();
        Self::offering(service, &offered)
    }

    fn offering(service: Arc<SearchService>, offered: &[WebTool]) -> Self {
        let tools = offered
            .iter()
            .map(|tool| tool.definition(service.backends()))
            .collect();
        let mut server = Self {
            service,
            offered: offered.into(),
            tools,
            scopes: None,
            refusal: None,
            info: Arc::new(server_info::implementation(None, None)),
        };
        server.name_security_schemes();
        server
    }

    /// The same server offering exactly the tools `names` lists, in that order (an empty list
    /// keeps the default).
    ///
    /// # Errors
    /// The first name that is not a tool searchgate has, or one no backend can serve.
    pub fn with_tools(self, names: &[String]) -> Result<Self, UnservableTool> {
        if names.is_empty() {
            return Ok(self);
        }
        let mut offered = Vec::with_capacity(names.len());
        for name in names {
            let tool = WebTool::ALL
                .into_iter()
                .find(|tool| tool.name() == name)
                .ok_or_else(|| UnservableTool::Unknown(name.clone()))?;
            if !self.service.backends().offer(tool.capability()) {
                return Err(UnservableTool::Unsupported(tool.name()));
            }
            if !offered.contains(&tool) {
                offered.push(tool);
            }
        }
        let mut server = Self {
            scopes: self.scopes.clone(),
            refusal: self.refusal.clone(),
            info: self.info.clone(),
            ..Self::offering(self.service, &offered)
        };
        server.name_security_schemes();
        Ok(server)
    }

    /// Names the served icon (under `public_url`) and the `website_url` in `serverInfo`.
    pub fn with_identity(mut self, public_url: &url::Url, website_url: Option<&url::Url>) -> Self {
        self.info = Arc::new(server_info::implementation(Some(public_url), website_url));
        self
    }

    /// Checks each tool's scopes again in the handler. The HTTP layer answers a missing scope
    /// with a 403 step-up before dispatch; this second check keeps a tool closed even if a
    /// request ever got past that layer.
    pub fn with_scope_policy(mut self, scopes: Arc<ScopePolicy>) -> Self {
        self.scopes = Some(scopes);
        self.name_security_schemes();
        self
    }

    /// Writes each tool's OAuth requirement into its `_meta.securitySchemes` (the OpenAI Apps
    /// SDK's tool-level auth): `oauth2` with the tool's scopes when tokens are checked, else
    /// `noauth`.
    fn name_security_schemes(&mut self) {
        let tools = self
            .tools
            .iter()
            .map(|tool| {
                let scheme = match &self.scopes {
                    Some(scopes) => serde_json::json!({
                        "type": "oauth2",
                        "scopes": scopes.required_for_tool(&tool.name),
                    }),
                    None => serde_json::json!({ "type": "noauth" }),
                };
                let mut tool = tool.clone();
                let mut meta = tool.meta.take().unwrap_or_default();
                meta.0
                    .insert("securitySchemes".to_owned(), serde_json::json!([scheme]));
                tool.meta = Some(meta);
                tool
            })
            .collect();
        self.tools = tools;
    }

    /// Refuses a call without the tool's scopes with a tool error whose
    /// `_meta["mcp/www_authenticate"]` holds `challenge`'s step-up challenge (the form the
    /// OpenAI Apps SDK reads), rather than leaving it to the HTTP layer's 403.
    pub fn with_refusal_challenge(mut self, challenge: Arc<Challenge>) -> Self {
        self.refusal = Some(challenge);
        self
    }

    /// The names of the tools this server offers.
    pub fn tool_names(&self) -> impl Iterator<Item = &str> {
        self.offered.iter().map(|tool| tool.name())
    }

    /// The scopes calling `tool` needs when `principal` lacks them (`None`: it may call it, or
    /// no scope policy applies).
    fn refused(&self, tool: &str, principal: Option<&Principal>) -> Option<&[String]> {
        let scopes = self.scopes.as_ref()?;
        let required = scopes.required_for_tool(tool);
        let allowed = principal.is_some_and(|p| scopes.satisfies(&p.scopes, required));
        (!allowed).then_some(required)
    }

    /// The offered tool called `name`, without copying its definition.
    fn offered(&self, name: &str) -> Option<WebTool> {
        self.offered
            .iter()
            .copied()
            .find(|tool| tool.name() == name)
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

/// The rate-limit key of a request: its verified principal, or the one anonymous allowance.
fn caller(principal: Option<&Principal>) -> Caller {
    principal.map_or(Caller::Anonymous, |p| Caller::Principal {
        subject: p.subject.clone(),
        client_id: p.client_id.clone(),
    })
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(self.info.as_ref().clone())
            .with_instructions(server_info::INSTRUCTIONS)
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
        // What the handler needs of the principal, read in place: whether its scopes open the
        // tool, and whose allowance the call counts against.
        let (refused, caller) = match &record {
            Some(record) => record.read(|info| {
                let principal = info.principal.as_ref();
                (self.refused(&request.name, principal), caller(principal))
            }),
            None => (self.refused(&request.name, None), Caller::Anonymous),
        };
        if let Some(required) = refused {
            if let Some(record) = &record {
                record.tool_finished(Some("insufficient_scope"));
            }
            let scope = required.join(" ");
            let text = format!("Calling {} needs the scope {scope}.", request.name);
            let Some(challenge) = &self.refusal else {
                tracing::error!(tool = %request.name, "a tools/call without the tool's scopes reached the handler");
                return Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into());
            };
            let header = challenge.www_authenticate(
                Some((
                    "insufficient_scope",
                    &text.trim_end_matches('.').to_lowercase(),
                )),
                &scope,
            );
            let mut meta = rmcp::model::MetaObject::new();
            meta.0.insert(
                "mcp/www_authenticate".to_owned(),
                serde_json::json!([header]),
            );
            meta.0.insert(
                tool::ERROR_META_KEY.to_owned(),
                serde_json::json!({ "code": "insufficient_scope" }),
            );
            let text = format!(
                "Authentication required: {text} Sign in again granting that scope, then retry."
            );
            return Ok(CallToolResult::error(vec![ContentBlock::text(text)])
                .with_meta(Some(meta))
                .into());
        }
        // rmcp runs handlers on their own task, outside the HTTP request's span; this span
        // puts the request id (and the trace id) back on every line the tool logs, and the MCP
        // request's trace span is entered again so the tool's spans are its children.
        let span = tracing::info_span!(
            "tool",
            request_id = record.as_ref().map_or("", CallRecord::request_id),
            tool = %request.name,
            subject = caller.subject().unwrap_or(""),
            trace_id = tracing::field::Empty,
        );
        let trace = record.as_ref().map_or((None, None), |record| {
            record.read(|info| (info.span.clone(), info.trace_id.clone()))
        });
        if let Some(trace_id) = &trace.1 {
            span.record("trace_id", tracing::field::display(trace_id));
        }
        let trace_span = trace.0.unwrap_or_else(tracing::Span::none);
        let Some(tool) = self.offered(&request.name) else {
            // Spec: an unknown tool is a protocol error (-32602), not a tool result.
            return Err(McpError::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        };
        // MCP: progress is reported only when the request's `_meta` carries a token.
        let progress = context
            .meta
            .get_progress_token()
            .map(|token| page_tools::Progress::new(context.peer.clone(), token));
        if let Some(record) = &record {
            let summary = query_summary(request.arguments.as_ref());
            record.update(|info| info.query_summary = summary);
        }
        let service = self.service.as_ref();
        let arguments = request.arguments;
        // Each tool's future on the heap: rmcp moves the handler's future into a task per
        // request, and inline the largest tool (crawl, with progress) would make every call
        // copy its size several times.
        let outcome = async {
            match tool {
                WebTool::Search => Box::pin(web_search::call(service, &caller, arguments)).await,
                WebTool::Extract => Box::pin(web_extract::call(service, &caller, arguments)).await,
                WebTool::Crawl => {
                    Box::pin(web_crawl::call(service, &caller, arguments, progress)).await
                }
                WebTool::Map => {
                    Box::pin(web_map::call(service, &caller, arguments, progress)).await
                }
                WebTool::ConnectorSearch => {
                    Box::pin(search_fetch::search(service, &caller, arguments)).await
                }
                WebTool::ConnectorFetch => {
                    Box::pin(search_fetch::fetch(service, &caller, arguments)).await
                }
            }
        }
        .instrument(span)
        .instrument(trace_span)
        .await;
        if let Some(record) = record {
            record.tool_finished(outcome.error_code);
            if let Some(stats) = outcome.stats {
                record.upstream_used(stats, outcome.upstream_request_id, outcome.cost);
            }
        }
        Ok(outcome.result.into())
    }
}

/// What a tool call asks for, for the audit row: the query, or the URL(s), cut to the audit
/// trail's limit (marked `…` when cut).
fn query_summary(arguments: Option<&serde_json::Map<String, serde_json::Value>>) -> Option<String> {
    let arguments = arguments?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    };
    let summary = ["query", "url", "urls", "id"]
        .iter()
        .find_map(|key| arguments.get(*key).and_then(text))?;
    Some(audit::bound(&summary, audit::SUMMARY_CHARS).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_summaries_take_the_query_or_the_urls_and_are_bounded() {
        let args = |v: serde_json::Value| v.as_object().cloned();
        assert_eq!(
            query_summary(args(serde_json::json!({"query": "rust"})).as_ref()).as_deref(),
            Some("rust")
        );
        assert_eq!(
            query_summary(args(serde_json::json!({"urls": ["https://a", "https://b"]})).as_ref())
                .as_deref(),
            Some("https://a https://b")
        );
        let long = "x".repeat(500);
        let cut = query_summary(args(serde_json::json!({"query": long})).as_ref()).unwrap();
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with('…'), "a cut summary is marked");
        assert_eq!(query_summary(None), None);
    }
    use crate::{
        adapters::search::MockSearchProvider,
        domain::search::{ServicePolicy, WebBackend},
    };

    #[test]
    fn the_handler_refuses_a_tool_the_principal_has_no_scope_for() {
        let service = Arc::new(SearchService::new(
            WebBackend::search_only(Arc::new(MockSearchProvider)),
            ServicePolicy::default(),
        ));
        let open = McpServer::new(service.clone());
        assert_eq!(open.refused("web_search", None), None, "no scope policy");
        let policy = ScopePolicy::new(
            [("web_search".to_owned(), vec!["web-search:read".to_owned()])].into(),
            std::collections::BTreeMap::new(),
            vec!["web-search:read".to_owned()],
        );
        let guarded = McpServer::new(service).with_scope_policy(Arc::new(policy));
        let with = |scopes: &str| Principal {
            scopes: crate::domain::auth::ScopeSet::from_space_separated(scopes),
            ..Principal::default()
        };
        let needed: &[String] = &["web-search:read".to_owned()];
        assert_eq!(
            guarded.refused("web_search", None),
            Some(needed),
            "no principal"
        );
        assert_eq!(
            guarded.refused("web_search", Some(&with("other"))),
            Some(needed)
        );
        assert_eq!(
            guarded.refused("web_search", Some(&with("web-search:read"))),
            None
        );
    }

    #[test]
    fn page_tools_are_listed_only_when_the_backend_supports_them() {
        let full = McpServer::new(Arc::new(SearchService::new(
            WebBackend::full(Arc::new(MockSearchProvider)),
            ServicePolicy::default(),
        )));
        assert_eq!(
            full.tool_names().collect::<Vec<_>>(),
            ["web_search", "web_extract", "web_crawl", "web_map"],
            "the web tools by default"
        );
        let search_only = McpServer::new(Arc::new(SearchService::new(
            WebBackend::search_only(Arc::new(MockSearchProvider)),
            ServicePolicy::default(),
        )));
        assert_eq!(
            search_only.tool_names().collect::<Vec<_>>(),
            ["web_search"],
            "a search-only backend offers web_search alone"
        );
        assert!(
            search_only.get_tool("web_crawl").is_none(),
            "so calling it is an unknown tool"
        );
    }

    #[test]
    fn listed_tools_are_offered_in_order_when_a_backend_serves_them() {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let full = || {
            McpServer::new(Arc::new(SearchService::new(
                WebBackend::full(Arc::new(MockSearchProvider)),
                ServicePolicy::default(),
            )))
        };
        let chatgpt = full()
            .with_tools(&names(&["search", "fetch", "web_search"]))
            .unwrap();
        assert_eq!(
            chatgpt.tool_names().collect::<Vec<_>>(),
            ["search", "fetch", "web_search"]
        );
        assert!(chatgpt.get_tool("web_extract").is_none(), "not listed");
        assert_eq!(
            full().with_tools(&names(&["serch"])).err(),
            Some(UnservableTool::Unknown("serch".into()))
        );
        let search_only = McpServer::new(Arc::new(SearchService::new(
            WebBackend::search_only(Arc::new(MockSearchProvider)),
            ServicePolicy::default(),
        )));
        assert_eq!(
            search_only.with_tools(&names(&["search", "fetch"])).err(),
            Some(UnservableTool::Unsupported("fetch")),
            "fetch needs a backend that reads pages"
        );
    }
}
