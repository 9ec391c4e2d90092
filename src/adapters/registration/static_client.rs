//! One client the operator registered at an IdP without dynamic registration (Entra, Google,
//! …): every registration whose redirect URIs fit the configured patterns gets its id.

use async_trait::async_trait;

use crate::domain::{
    clients::{ClientError, ClientMetadata, ClientRegistry, RegisteredClient},
    time::Timestamp,
};

/// Answers every registration with the pre-registered client.
pub struct StaticRegistry {
    client_id: String,
    patterns: Vec<String>,
}

impl StaticRegistry {
    /// The client `client_id`, for redirect URIs matching one of `patterns` (`*` matches any run
    /// of characters other than `/`, `?` and `#`, so `http://127.0.0.1:*/callback` accepts any
    /// port).
    pub fn new(client_id: String, patterns: Vec<String>) -> Self {
        Self {
            client_id,
            patterns,
        }
    }
}

#[async_trait]
impl ClientRegistry for StaticRegistry {
    async fn register(&self, metadata: ClientMetadata) -> Result<RegisteredClient, ClientError> {
        if let Some(uri) = metadata
            .redirect_uris
            .iter()
            .find(|uri| !self.patterns.iter().any(|p| glob(p, uri)))
        {
            return Err(ClientError::Rejected {
                code: "invalid_redirect_uri",
                description: format!(
                    "{} is not a redirect URI of this server's pre-registered client; accepted: {}",
                    uri.chars().take(200).collect::<String>(),
                    self.patterns.join(", ")
                ),
            });
        }
        Ok(RegisteredClient {
            client_id: self.client_id.clone(),
            // The pre-registered client is public whatever was asked (RFC 7591 §3.2.1 lets the
            // server replace values).
            metadata: ClientMetadata {
                token_endpoint_auth_method: "none".to_owned(),
                ..metadata
            },
            client_secret: None,
            created_at: Timestamp::now(),
        })
    }
}

/// Whether `text` matches `pattern`, where `*` stands for a run of letters, digits, `-`, `.`,
/// `_` or `~` (a port, a host label, a path segment): never `@`, `\\`, `%`, `:`, `/` or
/// anything outside ASCII, so a star cannot reach into another host.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            let run_end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
                .unwrap_or(rest.len());
            // Every byte before `run_end` is ASCII, so each split is a character boundary.
            (0..=run_end).any(|n| glob(tail, &rest[n..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_within_one_segment() {
        assert!(glob(
            "http://127.0.0.1:*/callback",
            "http://127.0.0.1:33418/callback"
        ));
        assert!(glob(
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.ai/api/mcp/auth_callback"
        ));
        assert!(!glob(
            "http://127.0.0.1:*/callback",
            "http://127.0.0.1:1/x/callback"
        ));
        assert!(!glob(
            "http://127.0.0.1:*/callback",
            "http://127.0.0.1:1/callback/more"
        ));
        assert!(!glob(
            "https://*.example.com/cb",
            "https://evil.com/.example.com/cb"
        ));
        assert!(glob(
            "https://*.example.com/cb",
            "https://app.example.com/cb"
        ));
        assert!(!glob(
            "https://*.example.com/cb",
            "https://evil.com\\.example.com/cb"
        ));
        assert!(!glob(
            "http://127.0.0.1:*/callback",
            "http://127.0.0.1:1@evil.com/callback"
        ));
        assert!(!glob(
            "https://*.example.com/cb",
            "https://é.example.com/cb"
        ));
        assert!(!glob("https://a.example/*", "https://a.example/..%2fother"));
    }
}
