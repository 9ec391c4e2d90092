//! Wiring for the embedded development authorization server: its configuration from settings,
//! its routes, and the `searchgate token` and `searchgate keys` commands.

use std::{sync::Arc, time::Duration};

use url::Url;

use super::StartupError;
use crate::{
    adapters::idp::{
        EmbeddedAuthorizationServer, EmbeddedConfig, ensure_signing_key, rotate_signing_key,
    },
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

/// The store and server for the `token` and `keys` commands, which work on the database the
/// server uses (the running server picks changes up within 30 s).
async fn open_for_cli(
    settings: &Settings,
) -> Result<(Arc<dyn IssuerStore>, EmbeddedAuthorizationServer), StartupError> {
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
    Ok((store, idp))
}

/// `searchgate token`: an access token for the local operator, signed with the server's key.
///
/// # Errors
/// A config error for another provider or an unknown scope; others when the database fails.
pub async fn mint_token(
    settings: &Settings,
    scopes: &[String],
    ttl: Duration,
    client: &str,
) -> Result<String, StartupError> {
    let (_, idp) = open_for_cli(settings).await?;
    let asked = scopes.join(" ");
    let scope = idp
        .grantable_scope((!asked.trim().is_empty()).then_some(asked.as_str()))
        .map_err(|reason| load_problem("--scope", &asked, &reason))?;
    let resource =
        canonical(super::resource_url(&settings.resolved(settings.server.bind))?.as_str());
    let token = idp
        .mint(
            &settings.auth.embedded.subject,
            client,
            &scope,
            &resource,
            ttl,
        )
        .await?;
    Ok(token.token)
}

/// `searchgate keys list`: one line per key.
///
/// # Errors
/// As [`mint_token`].
pub async fn list_keys(settings: &Settings) -> Result<Vec<String>, StartupError> {
    let (store, _) = open_for_cli(settings).await?;
    let now = unix_now();
    let leeway = i64::try_from(settings.auth.leeway_secs).unwrap_or(0);
    Ok(store
        .keys()
        .await?
        .iter()
        .map(|k| {
            let state = if k.retired_at.is_some() {
                "retired".to_owned()
            } else if k.is_signing() {
                "signing".to_owned()
            } else if k.is_published(now, leeway) {
                format!(
                    "published until its tokens expire (unix {})",
                    k.tokens_expire_at
                )
            } else {
                "expired".to_owned()
            };
            format!("{}\tcreated {}\t{state}", k.kid, k.created_at)
        })
        .collect())
}

/// `searchgate keys rotate`: a new signing key; the old one stays published until its tokens
/// expire. Returns the new key id.
///
/// # Errors
/// As [`mint_token`].
pub async fn rotate_key(settings: &Settings) -> Result<String, StartupError> {
    let (store, _) = open_for_cli(settings).await?;
    Ok(rotate_signing_key(store.as_ref()).await?)
}

/// `searchgate keys retire KID`: withdraws a key now (its tokens are refused from then on);
/// retiring the signing key makes a new one.
///
/// # Errors
/// A config error for an unknown key id; as [`mint_token`] otherwise.
pub async fn retire_key(settings: &Settings, kid: &str) -> Result<(), StartupError> {
    let (store, _) = open_for_cli(settings).await?;
    if !store.retire_key(kid, unix_now()).await? {
        return Err(load_problem(
            "KID",
            kid,
            "the id of a key that is not retired yet (see `searchgate keys list`)",
        )
        .into());
    }
    ensure_signing_key(store.as_ref()).await?;
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
