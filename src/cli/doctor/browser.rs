//! Steps 4 and 5: what a browser client needs (a CORS preflight answered for its origin, the
//! challenge readable cross-origin), and what hosted clients need of a public URL (https on
//! port 443, a certificate that verifies).

use reqwest::{Method, header::ORIGIN};

use super::{
    Doctor, INSPECTOR_ORIGIN, Status, Step,
    wire::{self, METADATA_LIMIT, RPC_LIMIT},
};

/// The request headers an MCP browser client sends cross-origin.
const REQUEST_HEADERS: [&str; 3] = ["authorization", "content-type", "mcp-protocol-version"];

impl Doctor<'_> {
    /// Step 4: the preflight for `--origin` (the MCP Inspector's by default), then whether the
    /// 401 it leads to lets the browser read `WWW-Authenticate`.
    pub(super) async fn cors(&mut self) {
        let origin = self
            .options
            .origin
            .clone()
            .unwrap_or_else(|| INSPECTOR_ORIGIN.to_owned());
        let url = self.url.to_string();
        let request = self
            .http
            .request(Method::OPTIONS, &url)
            .header(ORIGIN, &origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", REQUEST_HEADERS.join(", "));
        let answer = match wire::send(request, &url, METADATA_LIMIT).await {
            Ok(answer) => answer,
            Err(error) => {
                self.push(Step::fail(
                    "cors-preflight",
                    format!("OPTIONS {url}: {error}"),
                    "Make the MCP endpoint reachable; browsers send a preflight before every cross-origin POST.",
                ));
                self.push(Step::skip("cors-expose", "the preflight got no answer"));
                return;
            }
        };
        let allowed_origin = answer.header("access-control-allow-origin");
        let allowed =
            answer.status.is_success() && allowed_origin.is_some_and(|o| o == origin || o == "*");
        if !allowed {
            // A refused default origin may be what the operator wants; a refused --origin is not.
            let status = if self.options.origin.is_some() {
                Status::Fail
            } else {
                Status::Warn
            };
            self.steps.push(Step {
                step: "cors-preflight".to_owned(),
                status,
                detail: format!(
                    "origin {origin} is refused: HTTP {}, Access-Control-Allow-Origin {}",
                    answer.status,
                    allowed_origin.unwrap_or("absent")
                ),
                fix: Some(format!(
                    "If browser clients on {origin} should connect, add it to SEARCHGATE_SERVER__ALLOWED_ORIGINS (server.allowed_origins)."
                )),
            });
            self.push(Step::skip("cors-expose", "the origin is refused"));
            return;
        }
        let allowed_headers = answer.header_items("access-control-allow-headers");
        // Fetch: `*` does not cover Authorization, which must be listed by name.
        let wildcard = allowed_headers.iter().any(|a| a == "*");
        let missing: Vec<&str> = REQUEST_HEADERS
            .into_iter()
            .filter(|h| {
                let covered =
                    allowed_headers.iter().any(|a| a == h) || (wildcard && *h != "authorization");
                !covered
            })
            .collect();
        let methods = answer
            .header("access-control-allow-methods")
            .unwrap_or("(none listed)");
        if missing.is_empty() {
            self.push(Step::pass(
                "cors-preflight",
                format!(
                    "origin {origin} allowed; methods {methods}; headers {}",
                    allowed_headers.join(", ")
                ),
            ));
        } else {
            self.push(Step::fail(
                "cors-preflight",
                format!("origin {origin} allowed, but not the request headers {missing:?}"),
                "Allow the Authorization, Content-Type and MCP-Protocol-Version request headers (Access-Control-Allow-Headers) on the MCP endpoint.",
            ));
        }
        self.check_exposed(&origin).await;
    }

    /// The actual cross-origin POST: its 401 must expose `WWW-Authenticate`.
    async fn check_exposed(&mut self, origin: &str) {
        let url = self.url.to_string();
        let request = self
            .mcp_post(None)
            .header(ORIGIN, origin)
            .json(&wire::initialize());
        let answer = match wire::send(request, &url, RPC_LIMIT).await {
            Ok(answer) => answer,
            Err(error) => {
                self.push(Step::fail(
                    "cors-expose",
                    format!("POST {url} from {origin}: {error}"),
                    "Make the MCP endpoint reachable.",
                ));
                return;
            }
        };
        let exposed = answer.header_items("access-control-expose-headers");
        let exposes = |name: &str| exposed.iter().any(|e| e == name || e == "*");
        let readable = answer
            .header("access-control-allow-origin")
            .is_some_and(|o| o == origin || o == "*");
        let session = if exposes("mcp-session-id") {
            "Mcp-Session-Id exposed"
        } else {
            "Mcp-Session-Id not exposed (needed only by servers with sessions)"
        };
        if readable && exposes("www-authenticate") {
            self.push(Step::pass(
                "cors-expose",
                format!("HTTP {} exposes WWW-Authenticate; {session}", answer.status),
            ));
        } else {
            self.push(Step::warn(
                "cors-expose",
                format!(
                    "HTTP {} to {origin}: Access-Control-Allow-Origin {}, Access-Control-Expose-Headers {:?}",
                    answer.status,
                    answer.header("access-control-allow-origin").unwrap_or("absent"),
                    exposed
                ),
                "Send Access-Control-Allow-Origin and expose WWW-Authenticate on the MCP endpoint's answers, so browser clients can read the 401 challenge.",
            ));
        }
    }

    /// Step 5: https, port 443, a certificate that verifies; loopback http is fine.
    pub(super) async fn transport_security(&mut self) {
        let https = self.url.scheme() == "https";
        if !https && self.is_loopback() {
            for step in ["https", "https-port", "tls-certificate"] {
                self.push(Step::skip(
                    step,
                    "a loopback http URL: only local clients reach it",
                ));
            }
            return;
        }
        if !https {
            self.push(Step::fail(
                "https",
                format!("{} is plain http on a public host", self.url),
                "Serve searchgate behind https (a TLS-terminating proxy with a certificate) and set server.public_url to the https URL; hosted clients refuse plain http and tokens would travel in clear.",
            ));
            self.push(Step::skip("https-port", "not https"));
            self.push(Step::skip("tls-certificate", "not https"));
            return;
        }
        self.push(Step::pass("https", "https"));
        match self.url.port() {
            None => self.push(Step::pass("https-port", "443")),
            Some(port) => self.push(Step::warn(
                "https-port",
                format!("port {port}"),
                "Use port 443 unless you have a reason: some hosted clients and corporate networks reach only the standard port.",
            )),
        }
        // The shared client verifies certificates against the system's roots; any HTTP answer
        // means the handshake succeeded.
        let url = self.url.to_string();
        match wire::send(self.http.get(&url), &url, METADATA_LIMIT).await {
            Ok(_) => self.push(Step::pass(
                "tls-certificate",
                format!("the certificate of {} verifies", self.url.host_str().unwrap_or("?")),
            )),
            Err(error) => self.push(Step::fail(
                "tls-certificate",
                format!("{url}: {error}"),
                format!(
                    "Serve a certificate from a public CA that names {} with its whole chain (clients verify it as this check does).",
                    self.url.host_str().unwrap_or("the host")
                ),
            )),
        }
    }
}
