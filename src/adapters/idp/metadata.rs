//! An authorization server's metadata document (RFC 8414 / OpenID Connect Discovery), fetched
//! and kept for a while, for MCP 2025-03-26 clients that look for it on searchgate's origin.
//! The document is forwarded as published; its `issuer` must be the one expected (MCP
//! 2026-07-28: clients MUST NOT use metadata whose issuer differs).

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use reqwest::Client;

use crate::{
    adapters::http_client::get_json,
    domain::auth::{AuthError, ServerMetadata},
};

const MAX_METADATA_BYTES: usize = 256 * 1024;
/// After a failed fetch, the next one waits this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// A cached metadata document.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    url: String,
    issuer: String,
    http: Client,
    ttl: Duration,
    current: Arc<RwLock<Option<(ServerMetadata, Instant)>>>,
    refresh: Arc<tokio::sync::Mutex<()>>,
    last_failure: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl MetadataCache {
    /// The document at `url`, whose `issuer` must be `issuer`, kept for `ttl`.
    pub fn new(url: &str, issuer: &str, http: Client, ttl: Duration) -> Self {
        Self {
            url: url.to_owned(),
            issuer: issuer.to_owned(),
            http,
            ttl,
            current: Arc::default(),
            refresh: Arc::default(),
            last_failure: Arc::default(),
        }
    }

    /// Where the document lives.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The document: fresh from cache, refetched when stale, stale when the refetch fails.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when it cannot be fetched and none is cached;
    /// [`AuthError::Unexpected`] when it names another issuer.
    pub async fn get(&self) -> Result<ServerMetadata, AuthError> {
        if let Some((document, at)) = self.cached()
            && at.elapsed() < self.ttl
        {
            return Ok(document);
        }
        let _turn = self.refresh.lock().await;
        if let Some((document, at)) = self.cached()
            && at.elapsed() < self.ttl
        {
            return Ok(document);
        }
        // After a failure, wait before asking again: stale copy if any, else 503.
        let failed_at = *self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = failed_at
            && at.elapsed() < RETRY_AFTER_FAILURE
        {
            return match self.cached() {
                Some((document, _)) => Ok(document),
                None => Err(AuthError::Unavailable {
                    detail: "the authorization server metadata could not be fetched moments ago"
                        .into(),
                    retry_after: Some(RETRY_AFTER_FAILURE.saturating_sub(at.elapsed())),
                }),
            };
        }
        let fetched = self.fetch().await;
        *self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            fetched.is_err().then(Instant::now);
        match fetched {
            Ok(document) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((document.clone(), Instant::now()));
                Ok(document)
            }
            Err(error) => match self.cached() {
                Some((document, _)) => {
                    tracing::warn!(error = %error, "serving stale authorization server metadata");
                    Ok(document)
                }
                None => Err(error),
            },
        }
    }

    fn cached(&self) -> Option<(ServerMetadata, Instant)> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn fetch(&self) -> Result<ServerMetadata, AuthError> {
        let (document, _) =
            get_json::<serde_json::Value>(&self.http, &self.url, MAX_METADATA_BYTES)
                .await
                .map_err(|e| AuthError::unavailable(e.to_string()))?;
        let issuer = document
            .get("issuer")
            .and_then(|i| i.as_str())
            .unwrap_or_default();
        // MCP 2026-07-28: the issuer must be identical to the one the document was looked up for.
        if issuer != self.issuer {
            return Err(AuthError::Unexpected(anyhow::anyhow!(
                "the metadata at {} names issuer `{issuer}`, not `{}`",
                self.url,
                self.issuer
            )));
        }
        Ok(ServerMetadata(Arc::new(document)))
    }
}
