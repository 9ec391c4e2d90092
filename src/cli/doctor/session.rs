//! Steps 6 and 7: with `--token`, a legacy session as clients run it (`initialize`,
//! `notifications/initialized`, `tools/list`, `tools/call` of the first search tool); with
//! `--other-audience-token`, that a token for another resource is refused (RFC 8707); with
//! `--register`, a throw-away dynamic client registration (RFC 7591).

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::{
    Doctor, Step,
    challenge::bearer,
    wire::{self, Answer, LEGACY, METADATA_LIMIT, RPC_LIMIT, excerpt},
};

/// The search tools tried, in order.
const SEARCH_TOOLS: [&str; 2] = ["web_search", "search"];

/// A legacy session: the negotiated revision, and the session id when the server issued one.
struct Session {
    version: String,
    id: Option<String>,
}

impl Doctor<'_> {
    /// Step 6: `initialize`, `tools/list` and one search with `--token`.
    pub(super) async fn authenticated(&mut self) {
        let Some(token) = self.options.token.clone() else {
            self.push(Step::skip(
                "authenticated-session",
                "give --token TOKEN to check initialize, tools/list and a search with a token",
            ));
            return;
        };
        let Some(session) = self.initialize(&token).await else {
            self.push(Step::skip("authenticated-tools-list", "initialize failed"));
            self.push(Step::skip("authenticated-tools-call", "initialize failed"));
            return;
        };
        let Some(tools) = self.tools_list(&token, &session).await else {
            self.push(Step::skip("authenticated-tools-call", "tools/list failed"));
            return;
        };
        self.tools_call(&token, &session, &tools).await;
    }

    fn session_post(&self, token: &str, session: &Session) -> RequestBuilder {
        let request = self.mcp_post(Some(&session.version)).bearer_auth(token);
        match &session.id {
            Some(id) => request.header("mcp-session-id", id),
            None => request,
        }
    }

    async fn initialize(&mut self, token: &str) -> Option<Session> {
        let step = "authenticated-initialize";
        let request = self
            .mcp_post(None)
            .bearer_auth(token)
            .json(&wire::initialize());
        let result = self.rpc(step, request, &json!(1)).await?;
        let version = result
            .0
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(LEGACY)
            .to_owned();
        let server = result.0["serverInfo"]["name"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let session = Session {
            version,
            id: result.1.header("mcp-session-id").map(str::to_owned),
        };
        // Clients confirm with this notification before anything else.
        let notified = self
            .session_post(token, &session)
            .json(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        let url = self.url.to_string();
        let note = match wire::send(notified, &url, METADATA_LIMIT).await {
            Ok(answer) if answer.status.is_success() => String::new(),
            Ok(answer) => format!("; notifications/initialized got HTTP {}", answer.status),
            Err(error) => format!("; notifications/initialized: {error}"),
        };
        self.push(Step::pass(
            step,
            format!("server {server:?}, protocol {}{note}", session.version),
        ));
        Some(session)
    }

    async fn tools_list(&mut self, token: &str, session: &Session) -> Option<Vec<String>> {
        let step = "authenticated-tools-list";
        let request = self
            .session_post(token, session)
            .json(&json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }));
        let (result, _) = self.rpc(step, request, &json!(2)).await?;
        let Some(tools) = result.get("tools").and_then(Value::as_array) else {
            self.push(Step::fail(
                step,
                "the result has no tools list",
                "Answer tools/list with {\"tools\": [...]} (MCP tools).",
            ));
            return None;
        };
        let names: Vec<String> = tools
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        self.push(Step::pass(
            step,
            format!("tools offered: {}", names.join(", ")),
        ));
        Some(names)
    }

    async fn tools_call(&mut self, token: &str, session: &Session, tools: &[String]) {
        let step = "authenticated-tools-call";
        let Some(tool) = SEARCH_TOOLS
            .into_iter()
            .find(|t| tools.iter().any(|n| n == t))
        else {
            self.push(Step::skip(step, "neither web_search nor search is offered"));
            return;
        };
        let request = self.session_post(token, session).json(&json!({
            "jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": { "name": tool, "arguments": { "query": "model context protocol" } }
        }));
        let Some((result, _)) = self.rpc(step, request, &json!(3)).await else {
            return;
        };
        let content = result.get("content").and_then(Value::as_array);
        let text: String = content
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        if result.get("isError") == Some(&Value::Bool(true)) {
            self.push(Step::fail(
                step,
                format!("{tool} returned a tool error: {}", excerpt(&text)),
                "Check the search backend (searchgate check-config probes its key) and the server's logs.",
            ));
        } else {
            self.push(Step::pass(
                step,
                format!(
                    "{tool} answered with {} content item(s)",
                    content.map_or(0, Vec::len)
                ),
            ));
        }
    }

    /// Sends a JSON-RPC request; records a failure and returns `None` unless it got a result.
    async fn rpc(
        &mut self,
        step: &str,
        request: RequestBuilder,
        id: &Value,
    ) -> Option<(Value, Answer)> {
        let url = self.url.to_string();
        let answer = match wire::send(request, &url, RPC_LIMIT).await {
            Ok(answer) => answer,
            Err(error) => {
                self.push(Step::fail(
                    step,
                    format!("cannot reach {url}: {error}"),
                    "Make the MCP endpoint reachable.",
                ));
                return None;
            }
        };
        if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
            let why = bearer(&answer)
                .ok()
                .map(|c| {
                    format!(
                        "{} {}",
                        c.param("error").unwrap_or(""),
                        c.param("error_description").unwrap_or("")
                    )
                })
                .unwrap_or_default();
            let fix = if answer.status == StatusCode::UNAUTHORIZED {
                format!(
                    "Use a current token the authorization server issued for this resource (aud {}) with the issuer the metadata names.",
                    self.given
                )
            } else {
                "Get a token with the scopes the challenge names (its scope parameter).".to_owned()
            };
            self.push(Step::fail(
                step,
                format!(
                    "the token was refused: HTTP {}: {}",
                    answer.status,
                    why.trim()
                ),
                fix,
            ));
            return None;
        }
        let message = answer.rpc(id);
        match message {
            Some(message) if answer.status.is_success() && message.get("result").is_some() => {
                Some((message["result"].clone(), answer))
            }
            _ => {
                let error = message
                    .and_then(|m| m.get("error").cloned())
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| excerpt(&String::from_utf8_lossy(&answer.body)));
                self.push(Step::fail(
                    step,
                    format!("HTTP {}: {error}", answer.status),
                    "Check the server's logs: an authenticated MCP request must get a JSON-RPC result.",
                ));
                None
            }
        }
    }

    /// Step 6, second part: a token for another resource gets 401 `invalid_token`.
    pub(super) async fn other_audience(&mut self) {
        let step = "other-audience-refused";
        let Some(token) = self.options.other_audience_token.clone() else {
            self.push(Step::skip(
                step,
                "give --other-audience-token TOKEN (a token issued for another resource) to check it is refused",
            ));
            return;
        };
        let url = self.url.to_string();
        let request = self
            .mcp_post(Some(LEGACY))
            .bearer_auth(token)
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }));
        let answer = match wire::send(request, &url, RPC_LIMIT).await {
            Ok(answer) => answer,
            Err(error) => {
                self.push(Step::fail(
                    step,
                    format!("cannot reach {url}: {error}"),
                    "Make the MCP endpoint reachable.",
                ));
                return;
            }
        };
        let error = bearer(&answer)
            .ok()
            .and_then(|c| c.param("error").map(str::to_owned));
        match (answer.status, error.as_deref()) {
            (StatusCode::UNAUTHORIZED, Some("invalid_token")) => {
                self.push(Step::pass(step, "401, error=\"invalid_token\""));
            }
            (StatusCode::UNAUTHORIZED, _) => self.push(Step::warn(
                step,
                format!("401, but error is {error:?}, not \"invalid_token\""),
                "Answer a token for another audience with error=\"invalid_token\" in the challenge (RFC 6750 §3.1).",
            )),
            (status, _) => self.push(Step::fail(
                step,
                format!("a token for another resource got HTTP {status} (expected 401)"),
                format!(
                    "Accept only tokens whose audience is this resource ({}; searchgate: auth.audiences), or any token for another service works here too (RFC 8707).",
                    self.given
                ),
            )),
        }
    }

    /// Step 7: with `--register`, a throw-away public client registers (201 with a client_id).
    pub(super) async fn registration(&mut self) {
        let step = "registration";
        if !self.options.register {
            self.push(Step::skip(
                step,
                "give --register to try a throw-away dynamic registration",
            ));
            return;
        }
        let Some(url) = self.as_field("registration_endpoint") else {
            let why = if self.as_metadata.is_some() {
                "the authorization server names no registration_endpoint"
            } else {
                "the authorization server's metadata was not found"
            };
            self.push(Step::skip(step, why));
            return;
        };
        let request = self.http.post(&url).json(&json!({
            "client_name": "searchgate doctor (throw-away)",
            "redirect_uris": ["http://127.0.0.1:1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            // 2026-07-28: DCR clients send it; `native` for a loopback redirect.
            "application_type": "native"
        }));
        match wire::send(request, &url, METADATA_LIMIT).await {
            Ok(answer) => {
                let client_id = answer.json().and_then(|b| {
                    b.get("client_id")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
                match (answer.status, client_id) {
                    (StatusCode::CREATED, Some(client_id)) => self.push(Step::pass(
                        step,
                        format!("registered {client_id:?} (\"searchgate doctor (throw-away)\"; remove it at the authorization server if it keeps such clients)"),
                    )),
                    (status, _) => self.push(Step::fail(
                        step,
                        format!("{url} answered HTTP {status}: {}", answer.oauth_error()),
                        "Let public clients register: accept token_endpoint_auth_method none and loopback redirect URIs (RFC 7591, RFC 8252; searchgate: registration.allow_redirect_hosts).",
                    )),
                }
            }
            Err(error) => self.push(Step::fail(
                step,
                format!("cannot reach {url}: {error}"),
                "Make the registration endpoint reachable from where clients run.",
            )),
        }
    }
}
