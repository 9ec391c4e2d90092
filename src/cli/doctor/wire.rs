//! How the doctor talks HTTP: one request at a time through the shared outbound client (10 s,
//! no redirects), every body read up to a bound, errors described down to their cause (a TLS
//! failure's reason is deep in the source chain), and JSON-RPC answers read from a JSON or an
//! SSE body.

use reqwest::{
    RequestBuilder, StatusCode,
    header::{ACCEPT, CONTENT_TYPE, HeaderMap},
};
use serde_json::{Value, json};

use super::Doctor;
use crate::adapters::http_client::read_limited;

/// Largest metadata document or error body read.
pub(super) const METADATA_LIMIT: usize = 256 * 1024;
/// Largest JSON-RPC answer read (a tool result with a page of search results).
pub(super) const RPC_LIMIT: usize = 2 * 1024 * 1024;
/// The legacy (initialize) revision clients use most.
pub(super) const LEGACY: &str = "2025-11-25";
/// The current, stateless revision.
pub(super) const MODERN: &str = "2026-07-28";

/// A response, its body read.
pub(super) struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most the limit asked for.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The first value of `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every comma-separated item of every `name` header, lowercased.
    pub fn header_items(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|item| item.trim().to_ascii_lowercase())
            .filter(|item| !item.is_empty())
            .collect()
    }

    /// The JSON-RPC response with `id`: the body itself, or one of its SSE events (MCP servers
    /// may answer a POST with either).
    pub fn rpc(&self, id: &Value) -> Option<Value> {
        let is_sse = self
            .header(CONTENT_TYPE.as_str())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !is_sse {
            return self.json();
        }
        sse_data(&String::from_utf8_lossy(&self.body))
            .into_iter()
            .filter_map(|data| serde_json::from_str::<Value>(&data).ok())
            .find(|message| message.get("id") == Some(id))
    }

    /// `error: error_description` of an OAuth error body, or a short excerpt of the body.
    pub fn oauth_error(&self) -> String {
        match self.json() {
            Some(body) if body.get("error").is_some() => {
                let code = body["error"].as_str().unwrap_or("?");
                match body.get("error_description").and_then(Value::as_str) {
                    Some(description) => format!("{code}: {description}"),
                    None => code.to_owned(),
                }
            }
            _ => excerpt(&String::from_utf8_lossy(&self.body)),
        }
    }
}

/// The first 200 characters of `text` on one line.
pub(super) fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

/// Sends `request` and reads at most `limit` bytes of its body.
///
/// # Errors
/// A one-line description of why there is no answer (connection, TLS, timeout, size).
pub(super) async fn send(
    request: RequestBuilder,
    url: &str,
    limit: usize,
) -> Result<Answer, String> {
    let response = request.send().await.map_err(|e| describe(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_limited(response, url, limit)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The error and its causes, without the URL (the step names it).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer within 10 s".to_owned();
    }
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if causes.last() != Some(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

/// The `data` of each event of an SSE body (WHATWG HTML §9.2.6: lines joined with `\n`).
fn sse_data(body: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    for line in body.lines() {
        if line.is_empty() {
            events.extend(data.take());
        } else if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut data {
                Some(joined) => {
                    joined.push('\n');
                    joined.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    events.extend(data);
    events
}

impl Doctor<'_> {
    /// A POST to the MCP endpoint with the headers every client sends, and
    /// `MCP-Protocol-Version` when the client would send it.
    pub(super) fn mcp_post(&self, version: Option<&str>) -> RequestBuilder {
        let request = self
            .http
            .post(self.url.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        match version {
            Some(version) => request.header("mcp-protocol-version", version),
            None => request,
        }
    }

    /// A GET asking for JSON.
    pub(super) async fn get(&self, url: &str) -> Result<Answer, String> {
        let request = self.http.get(url).header(ACCEPT, "application/json");
        send(request, url, METADATA_LIMIT).await
    }
}

/// A 2025-11-25 `initialize` request, as message 1.
pub(super) fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": { "name": "searchgate-doctor", "version": env!("CARGO_PKG_VERSION") }
        }
    })
}

/// A stateless 2026-07-28 `tools/list` request with the `_meta` that revision requires.
pub(super) fn modern_tools_list() -> Value {
    json!({
        "jsonrpc": "2.0", "id": "doctor-1", "method": "tools/list",
        "params": { "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {
                "name": "searchgate-doctor", "version": env!("CARGO_PKG_VERSION")
            }
        } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_on_blank_lines_and_multi_line_data_is_joined() {
        let body =
            "id: 1\ndata: {\"a\":\ndata: 1}\n\n: keep-alive\n\ndata:{\"b\":2}\r\n\r\ndata: last";
        assert_eq!(
            sse_data(body),
            ["{\"a\":\n1}", "{\"b\":2}", "last"],
            "comments are skipped, CRLF is a line end, a final event without a blank line counts"
        );
    }

    #[test]
    fn excerpts_are_one_line_and_bounded() {
        assert_eq!(excerpt("a\n  b"), "a b");
        assert_eq!(excerpt(&"x".repeat(300)).chars().count(), 201);
    }
}
