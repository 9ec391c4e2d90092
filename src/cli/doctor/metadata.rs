//! Steps 2 and 3: the protected-resource metadata (RFC 9728) where clients look for it, then the
//! authorization server's metadata in the order clients probe (MCP authorization-server
//! discovery: RFC 8414 path insertion, then OpenID discovery) and what it must contain; the
//! endpoints it names are probed in `endpoints.rs`.

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::{Doctor, Step};

/// RFC 9728 §3's well-known prefix.
const PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";

impl Doctor<'_> {
    /// Step 2: the metadata at the challenge's URL and at the path-suffixed well-known URL.
    pub(super) async fn resource_metadata(&mut self) {
        let mut servers = None;
        match self.resource_metadata_url.clone() {
            Some(url) => {
                servers = self
                    .check_resource_metadata("resource-metadata", &url)
                    .await
            }
            None => self.push(Step::skip(
                "resource-metadata",
                "no resource_metadata URL came with a 401 (see challenge-legacy)",
            )),
        }
        let well_known = self.well_known_url();
        let found = self
            .check_resource_metadata("resource-metadata-well-known", &well_known)
            .await;
        servers = servers.or(found);
        self.authorization_server = servers.and_then(|s| s.into_iter().next());
    }

    /// `https://host/.well-known/oauth-protected-resource/<path>` (RFC 9728 §3.1).
    fn well_known_url(&self) -> String {
        let path = self.url.path().trim_end_matches('/');
        format!(
            "{}{PROTECTED_RESOURCE}{path}",
            self.url.origin().ascii_serialization()
        )
    }

    /// Records the step; returns `authorization_servers` when the document is usable.
    async fn check_resource_metadata(&mut self, step: &str, url: &str) -> Option<Vec<String>> {
        let answer = match self.get(url).await {
            Ok(answer) => answer,
            Err(error) => {
                self.push(Step::fail(
                    step,
                    format!("cannot reach {url}: {error}"),
                    "Make the metadata URL reachable from where clients run (DNS, proxy, firewall).",
                ));
                return None;
            }
        };
        if answer.status != StatusCode::OK {
            let fix = if step == "resource-metadata" {
                "Serve the protected-resource metadata at the URL the challenge's resource_metadata names (RFC 9728 §5.1)."
            } else {
                "Serve the protected-resource metadata at the path-suffixed well-known URL too: clients that get no challenge look there (RFC 9728 §3.1)."
            };
            self.push(Step::fail(
                step,
                format!("{url} answered HTTP {}", answer.status),
                fix,
            ));
            return None;
        }
        let Some(document) = answer.json().filter(Value::is_object) else {
            self.push(Step::fail(
                step,
                format!("{url} did not answer a JSON object"),
                "Serve the protected-resource metadata as a JSON object (application/json).",
            ));
            return None;
        };
        let resource = document.get("resource").and_then(Value::as_str);
        if resource != Some(self.given.as_str()) {
            let found = resource.map_or("no resource".to_owned(), |r| format!("resource {r:?}"));
            self.push(Step::fail(
                step,
                format!("{url} names {found}, but clients use {:?}", self.given),
                format!(
                    "Set server.public_url (SEARCHGATE_SERVER__PUBLIC_URL) and server.mcp_path so that together they are exactly {}: clients refuse a resource that differs by one character (RFC 9728 §3.3).",
                    self.given
                ),
            ));
            return None;
        }
        let servers: Vec<String> = document
            .get("authorization_servers")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if servers.is_empty() {
            self.push(Step::fail(
                step,
                format!("{url} lists no authorization_servers"),
                "Name the authorization server's issuer in authorization_servers (searchgate: set auth.provider and its issuer).",
            ));
            return None;
        }
        self.push(Step::pass(
            step,
            format!(
                "{url}: resource {:?}, authorization_servers {servers:?}",
                self.given
            ),
        ));
        Some(servers)
    }

    /// Step 3: the authorization server's metadata, its contents, and its endpoints.
    pub(super) async fn authorization_server(&mut self) {
        let Some(issuer) = self.authorization_server.clone() else {
            self.push(Step::skip(
                "as-metadata",
                "no authorization server is known (see resource-metadata)",
            ));
            return;
        };
        if !self.find_as_metadata(&issuer).await {
            return;
        }
        self.check_as_contents(&issuer);
        self.check_authorization_endpoint().await;
        self.check_token_endpoint().await;
        self.check_registration_endpoint().await;
        self.check_jwks().await;
    }

    /// Tries the discovery URLs in the order clients do; keeps the first JSON document found.
    async fn find_as_metadata(&mut self, issuer: &str) -> bool {
        let candidates = match discovery_urls(issuer) {
            Ok(candidates) => candidates,
            Err(problem) => {
                self.push(Step::fail(
                    "as-metadata",
                    format!("authorization server {issuer:?}: {problem}"),
                    "List the authorization server's issuer identifier (an https URL without query or fragment) in authorization_servers.",
                ));
                return false;
            }
        };
        let mut tried = Vec::new();
        for url in &candidates {
            match self.get(url).await {
                Ok(answer) if answer.status == StatusCode::OK => {
                    if let Some(document) = answer.json().filter(Value::is_object) {
                        let before = if tried.is_empty() {
                            String::new()
                        } else {
                            format!(" (after {})", tried.join("; "))
                        };
                        self.push(Step::pass("as-metadata", format!("found at {url}{before}")));
                        self.as_metadata = Some(document);
                        return true;
                    }
                    tried.push(format!("{url}: not a JSON object"));
                }
                Ok(answer) => tried.push(format!("{url}: HTTP {}", answer.status)),
                Err(error) => tried.push(format!("{url}: {error}")),
            }
        }
        self.push(Step::fail(
            "as-metadata",
            format!("no metadata for {issuer}: {}", tried.join("; ")),
            format!(
                "Serve the authorization server's metadata at {} (RFC 8414) or at an OpenID discovery URL clients try; clients look nowhere else.",
                candidates[0]
            ),
        ));
        false
    }

    /// `issuer`, PKCE S256, and a way for clients to get a client id.
    fn check_as_contents(&mut self, issuer: &str) {
        match self.as_field("issuer") {
            Some(found) if found == issuer => {
                self.push(Step::pass("as-issuer", format!("issuer {found:?}")));
            }
            found => {
                let found = found.map_or("no issuer".to_owned(), |f| format!("issuer {f:?}"));
                self.push(Step::fail(
                    "as-issuer",
                    format!("the metadata names {found}, but the resource metadata names {issuer:?}"),
                    "Name the authorization server in authorization_servers exactly as its metadata's issuer (searchgate: auth.oidc.issuer, character for character), since clients refuse metadata whose issuer differs (RFC 8414 §3.3).",
                ));
            }
        }
        let methods = self.as_list("code_challenge_methods_supported");
        if methods.iter().any(|m| m == "S256") {
            self.push(Step::pass(
                "as-pkce",
                format!("code_challenge_methods_supported {methods:?}"),
            ));
        } else {
            self.push(Step::fail(
                "as-pkce",
                format!("code_challenge_methods_supported is {methods:?}, without S256"),
                "Turn on PKCE with S256 at the authorization server and publish code_challenge_methods_supported: MCP clients refuse to sign in without it.",
            ));
        }
        let registration = self.as_field("registration_endpoint");
        let cimd = self
            .as_metadata
            .as_ref()
            .and_then(|m| m.get("client_id_metadata_document_supported"))
            .and_then(Value::as_bool)
            == Some(true);
        let mut ways = Vec::new();
        if let Some(endpoint) = &registration {
            ways.push(format!("registration_endpoint {endpoint}"));
        }
        if cimd {
            ways.push("client_id_metadata_document_supported".to_owned());
        }
        if ways.is_empty() {
            self.push(Step::fail(
                "as-registration",
                "neither registration_endpoint nor client_id_metadata_document_supported: true",
                "Turn on dynamic client registration (RFC 7591; searchgate's embedded server: SEARCHGATE_REGISTRATION__MODE=embedded) or Client ID Metadata Documents at the authorization server, or clients such as Claude and VS Code cannot get a client id.",
            ));
        } else {
            self.push(Step::pass("as-registration", ways.join(" and ")));
        }
    }

    fn as_list(&self, name: &str) -> Vec<String> {
        self.as_metadata
            .as_ref()
            .and_then(|m| m.get(name))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Where clients look for an issuer's metadata, in order (MCP authorization-server discovery,
/// 2025-11-25 and 2026-07-28): RFC 8414 path insertion, then OpenID discovery with path
/// insertion and path appending; an issuer without a path has the first two only.
///
/// # Errors
/// When the issuer is not an http(s) URL without query and fragment.
fn discovery_urls(issuer: &str) -> Result<Vec<String>, String> {
    let url = Url::parse(issuer).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err("an issuer is an http(s) URL without query or fragment".to_owned());
    }
    let origin = url.origin().ascii_serialization();
    // RFC 8414 §3.1: the issuer's terminating "/" is removed before inserting.
    let path = url.path().trim_end_matches('/');
    Ok(if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_follow_the_order_mcp_clients_probe() {
        assert_eq!(
            discovery_urls("https://auth.example.com/tenant1").unwrap(),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ],
            "an issuer with a path: insertion, OIDC insertion, OIDC appending"
        );
        assert_eq!(
            discovery_urls("https://auth.example.com/").unwrap(),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ],
            "an issuer without a path: two places"
        );
        assert_eq!(
            discovery_urls("http://127.0.0.1:8080/idp/").unwrap()[0],
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server/idp",
            "a trailing slash is dropped before insertion (RFC 8414 §3.1)"
        );
        assert!(
            discovery_urls("https://auth.example.com/?tenant=1").is_err(),
            "an issuer has no query"
        );
    }
}
