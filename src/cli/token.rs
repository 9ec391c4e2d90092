//! `searchgate token`: an access token for the local operator from the embedded development
//! authorization server, signed with the key the server uses, for curl and scripts.

use std::time::Duration;

use crate::{
    config::{Settings, load_problem},
    domain::auth::canonical,
    startup::{self, StartupError},
};

/// Prints a token granting `scopes` (every tool's when empty) for `ttl`, naming `client`.
///
/// # Errors
/// A config error for another provider or an unknown scope; others when the database fails.
pub(super) async fn run(
    settings: &Settings,
    scopes: &[String],
    ttl: Duration,
    client: &str,
) -> Result<(), StartupError> {
    let token = mint(settings, scopes, ttl, client).await?;
    println!("{token}");
    Ok(())
}

async fn mint(
    settings: &Settings,
    scopes: &[String],
    ttl: Duration,
    client: &str,
) -> Result<String, StartupError> {
    let embedded = startup::embedded::open_for_commands(settings).await?;
    let asked = scopes.join(" ");
    let scope = embedded
        .idp
        .grantable_scope((!asked.trim().is_empty()).then_some(asked.as_str()))
        .map_err(|reason| load_problem("--scope", &asked, &reason))?;
    let token = embedded
        .idp
        .mint(
            &settings.auth.embedded.subject,
            client,
            &scope,
            &canonical(embedded.resource_url.as_str()),
            ttl,
        )
        .await?;
    Ok(token.token)
}
