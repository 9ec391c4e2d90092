//! Registration, once for every registry: the RFC 7591 metadata rules, the client policy's
//! redirect hosts, the registry itself, and the registered-client cache.

use std::sync::Arc;

use super::{
    ClientError, ClientMetadata, ClientPolicy, ClientRegistry, ClientSource, ClientStore,
    RegisteredClient, RegistrationRequest,
};

/// Registers clients through the configured registry.
pub struct Registrar {
    registry: Arc<dyn ClientRegistry>,
    source: ClientSource,
    store: Arc<dyn ClientStore>,
    policy: ClientPolicy,
}

impl Registrar {
    /// Registers with `registry` (of kind `source`), remembers clients in `store`, and applies
    /// `policy`.
    pub fn new(
        registry: Arc<dyn ClientRegistry>,
        source: ClientSource,
        store: Arc<dyn ClientStore>,
        policy: ClientPolicy,
    ) -> Self {
        Self {
            registry,
            source,
            store,
            policy,
        }
    }

    /// Validates and registers a client, and remembers it.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] for metadata the rules, the policy or the registry refuse;
    /// [`ClientError::Unavailable`] when the registry cannot be reached.
    pub async fn register(
        &self,
        request: RegistrationRequest,
    ) -> Result<RegisteredClient, ClientError> {
        let metadata = ClientMetadata::from_request(request)?;
        self.policy.check_redirects(&metadata.redirect_uris)?;
        let client = self.registry.register(metadata).await?;
        // The client exists at the registry now; losing the cache row only hides it from the
        // admin API, so the client still gets its answer.
        if let Err(error) = self.store.record(&client, self.source).await {
            tracing::error!(error = %format!("{error:#}"), client_id = %client.client_id, "cannot remember a registered client");
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        clients::{ClientCursor, ClientPage, ClientRow, MockClientRegistry, PolicyLists},
        time::Timestamp,
    };

    struct NoStore;

    #[async_trait::async_trait]
    impl ClientStore for NoStore {
        async fn record(&self, _: &RegisteredClient, _: ClientSource) -> anyhow::Result<()> {
            Ok(())
        }
        async fn client(&self, _: &str) -> anyhow::Result<Option<ClientRow>> {
            Ok(None)
        }
        async fn list(&self, _: Option<&ClientCursor>, _: u32) -> anyhow::Result<ClientPage> {
            Ok(ClientPage {
                clients: vec![],
                next_cursor: None,
            })
        }
        async fn deny(&self, _: &str, _: i64) -> anyhow::Result<bool> {
            Ok(false)
        }
        async fn denied(&self) -> anyhow::Result<Vec<String>> {
            Ok(vec![])
        }
        async fn touch(&self, _: &[String], _: i64) -> anyhow::Result<()> {
            Ok(())
        }
    }

    fn request(uri: &str) -> RegistrationRequest {
        RegistrationRequest {
            redirect_uris: Some(vec![uri.to_owned()]),
            token_endpoint_auth_method: Some("none".into()),
            ..RegistrationRequest::default()
        }
    }

    #[tokio::test]
    async fn the_registry_only_sees_metadata_the_rules_and_policy_accept() {
        let mut registry = MockClientRegistry::new();
        registry.expect_register().times(1).returning(|metadata| {
            Ok(RegisteredClient {
                client_id: "c1".into(),
                metadata,
                client_secret: None,
                created_at: Timestamp::now(),
            })
        });
        let policy = ClientPolicy::new(
            PolicyLists {
                deny_redirect_hosts: vec!["evil.example".into()],
                ..PolicyLists::default()
            },
            [],
        );
        let registrar = Registrar::new(
            Arc::new(registry),
            ClientSource::Upstream,
            Arc::new(NoStore),
            policy,
        );
        let refused = registrar.register(request("https://evil.example/cb")).await;
        assert!(matches!(
            refused,
            Err(ClientError::Rejected {
                code: "invalid_redirect_uri",
                ..
            })
        ));
        let invalid = registrar.register(request("http://evil.example/cb")).await;
        assert!(invalid.is_err());
        let ok = registrar
            .register(request("http://127.0.0.1:3000/cb"))
            .await
            .unwrap();
        assert_eq!(ok.client_id, "c1");
    }
}
