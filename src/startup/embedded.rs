//! Wiring for the embedded development authorization server: its configuration from settings,
//! its routes, and opening it for the `searchgate token` and `searchgate keys` commands
//! (whose bodies live in `cli/`).

use std::{sync::Arc, time::Duration};

use url::Url;

use super::StartupError;
use crate::{
    adapters::idp::{EmbeddedAuthorizationServer, EmbeddedConfig},
    config::{AuthProviderKind, Settings, load_problem},
    domain::{auth::canonical, issuer::IssuerStore},
    http::Mount,
};

/// Where the embedded authorization server lives on searchgate's origin.
pub const IDP_PATH: &str = "/idp";

/// The embedded server's configuration for resolved `settings` serving `resource_url`.
pub fn config(settings: &Settings, resource_url: &Url) -> EmbeddedConfig {
    let auth = &settings.auth;
    let public_url = settings.server.public_url_or(settings.server.bind);
    let resource = canonical(resource_url.as_str());
    // Its tokens always name the resource, so the resource is always accepted.
    let mut audiences = vec![resource.clone()];
    audiences.extend(
        auth.audiences
            .iter()
            .map(|a| canonical(a))
            .filter(|a| *a != resource),
    );
    EmbeddedConfig {
        issuer: format!("{}{IDP_PATH}", public_url.as_str().trim_end_matches('/')),
        resource,
        audiences,
        scopes: auth.effective_scopes_supported(),
        operator_scopes: vec![auth.admin_scope.clone()],
        leeway: Duration::from_secs(auth.leeway_secs),
        access_ttl: Duration::from_secs(auth.embedded.access_token_ttl_secs),
        refresh_ttl: Duration::from_secs(auth.embedded.refresh_token_ttl_secs),
        code_ttl: Duration::from_secs(auth.embedded.code_ttl_secs),
        subject: auth.embedded.subject.clone(),
        registration_endpoint: None,
    }
}

/// The routes it serves: everything under `/idp`, and its metadata at the RFC 8414 and OpenID
/// path-suffixed well-known URLs on the root, which MCP clients probe (checklist §2.5).
pub fn mounts(idp: &EmbeddedAuthorizationServer) -> Vec<Mount> {
    let issuer_path = Url::parse(idp.issuer())
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_else(|_| IDP_PATH.to_owned());
    let mut suffixes = vec![IDP_PATH.to_owned()];
    if issuer_path != IDP_PATH {
        suffixes.push(issuer_path);
    }
    let mut mounts = vec![
        Mount {
            path: format!("{IDP_PATH}/authorize"),
            nested: false,
            cors: false,
            endpoint: idp.authorize_endpoint(),
        },
        Mount {
            path: IDP_PATH.to_owned(),
            nested: true,
            cors: true,
            endpoint: idp.endpoint(),
        },
    ];
    for suffix in suffixes {
        for well_known in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ] {
            mounts.push(Mount {
                path: format!("{well_known}{suffix}"),
                nested: false,
                cors: true,
                endpoint: idp.metadata_endpoint(),
            });
        }
    }
    mounts
}

/// The embedded server opened on the database a running server uses, for the `token` and
/// `keys` commands.
pub struct ForCommands {
    /// Its keys and clients.
    pub store: Arc<dyn IssuerStore>,
    /// The server itself.
    pub idp: EmbeddedAuthorizationServer,
    /// The resource its tokens name.
    pub resource_url: Url,
}

/// Opens the embedded server for the `token` and `keys` commands, which work on the database
/// the server uses (the running server picks changes up within 30 s).
///
/// # Errors
/// A config error when another provider is configured; others when the database fails.
pub async fn open_for_commands(settings: &Settings) -> Result<ForCommands, StartupError> {
    if settings.auth.provider != AuthProviderKind::Embedded {
        return Err(load_problem(
            "auth.provider",
            settings.auth.provider.as_str(),
            "embedded: these commands manage the embedded development authorization server; \
             with another provider, get tokens and keys from your identity provider",
        )
        .into());
    }
    let settings = settings.resolved(settings.server.bind);
    let resource_url = super::resource_url(&settings)?;
    let store = super::open_database(&settings).await?.issuer;
    let idp =
        EmbeddedAuthorizationServer::open(config(&settings, &resource_url), store.clone()).await?;
    Ok(ForCommands {
        store,
        idp,
        resource_url,
    })
}
