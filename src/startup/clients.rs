//! Wiring for client registration and the client policy: which registry `/oauth/register`
//! uses, the registered-client cache, the deny lists, and the last-seen tracker.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    adapters::{
        http_client::outbound,
        idp::EmbeddedAuthorizationServer,
        registration::{StaticRegistry, UpstreamRegistry},
    },
    config::{AuthProviderKind, RegistrationMode, Settings, StaticClient},
    domain::{
        auth::AuthorizationServer,
        clients::{
            ClientActivity, ClientPolicy, ClientRegistry, ClientSource, ClientStore, PolicyLists,
            Registrar,
        },
    },
    http::ClientGate,
};

/// How often last-seen times are written.
const ACTIVITY_FLUSH: Duration = Duration::from_secs(10);
/// How often the denied clients are re-read (another replica may have denied one).
const DENIED_RELOAD: Duration = Duration::from_secs(30);

/// The registration mode in effect for `settings`; `custom_auth` is a program's own
/// authorization server, which has no registry searchgate knows of.
pub fn effective_mode(settings: &Settings, custom_auth: bool) -> RegistrationMode {
    match settings.registration.mode {
        RegistrationMode::Auto if custom_auth => RegistrationMode::Off,
        RegistrationMode::Auto => match settings.auth.provider {
            AuthProviderKind::Embedded => RegistrationMode::Embedded,
            AuthProviderKind::Oidc | AuthProviderKind::Scalekit => RegistrationMode::Upstream,
            AuthProviderKind::None => RegistrationMode::Off,
        },
        mode => mode,
    }
}

/// What the HTTP layer gets.
pub struct ClientServices {
    /// Registers clients at `/oauth/register`; `None` when registration is off.
    pub registrar: Option<Arc<Registrar>>,
    /// The client policy and last-seen tracker.
    pub gate: Option<ClientGate>,
    /// The last-seen flusher and the deny-list reload, stopped by the shutdown token.
    pub tasks: Vec<JoinHandle<()>>,
}

/// The client policy of `settings`, with the clients denied so far in `store`. Built before
/// the embedded authorization server, which applies it too.
///
/// # Errors
/// When the denied clients cannot be read.
pub async fn policy(settings: &Settings, store: &dyn ClientStore) -> anyhow::Result<ClientPolicy> {
    let registration = &settings.registration;
    Ok(ClientPolicy::new(
        PolicyLists {
            allow_client_ids: registration.allow_client_ids.clone(),
            deny_client_ids: registration.deny_client_ids.clone(),
            allow_redirect_hosts: registration.allow_redirect_hosts.clone(),
            deny_redirect_hosts: registration.deny_redirect_hosts.clone(),
        },
        store.denied().await?,
    ))
}

/// Builds the registrar and the client gate on `store` with `policy` (from [`policy`];
/// without a store there is neither). `static_client` is the validated
/// `[registration.static]`, there when the mode is static.
pub fn services(
    mode: RegistrationMode,
    static_client: Option<&StaticClient>,
    idp: Option<Arc<dyn AuthorizationServer>>,
    embedded: Option<EmbeddedAuthorizationServer>,
    store: Option<(Arc<dyn ClientStore>, ClientPolicy)>,
    shutdown: &CancellationToken,
) -> ClientServices {
    let Some((store, policy)) = store else {
        return ClientServices {
            registrar: None,
            gate: None,
            tasks: Vec::new(),
        };
    };
    let registry: Option<(Arc<dyn ClientRegistry>, ClientSource)> = match mode {
        RegistrationMode::Off | RegistrationMode::Auto => None,
        RegistrationMode::Embedded => embedded.map(|e| {
            (
                Arc::new(e) as Arc<dyn ClientRegistry>,
                ClientSource::Embedded,
            )
        }),
        RegistrationMode::Upstream => idp.map(|idp| {
            (
                Arc::new(UpstreamRegistry::new(idp, outbound())) as Arc<dyn ClientRegistry>,
                ClientSource::Upstream,
            )
        }),
        RegistrationMode::Static => static_client.map(|client| {
            (
                Arc::new(StaticRegistry::new(
                    client.client_id.clone(),
                    client.redirect_patterns.clone(),
                )) as Arc<dyn ClientRegistry>,
                ClientSource::Static,
            )
        }),
    };
    let registrar = registry.map(|(registry, source)| {
        tracing::info!(
            source = source.as_str(),
            "clients register at /oauth/register"
        );
        Arc::new(Registrar::new(
            registry,
            source,
            store.clone(),
            policy.clone(),
        ))
    });
    let activity = ClientActivity::default();
    let mut tasks = vec![activity.spawn_flusher(store.clone(), ACTIVITY_FLUSH, shutdown.clone())];
    tasks.push(spawn_denied_reload(store, policy.clone(), shutdown.clone()));
    ClientServices {
        registrar,
        gate: Some(ClientGate { policy, activity }),
        tasks,
    }
}

fn spawn_denied_reload(
    store: Arc<dyn ClientStore>,
    policy: ClientPolicy,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DENIED_RELOAD);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            match store.denied().await {
                Ok(denied) => policy.reload_denied(denied),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "cannot re-read the denied clients");
                }
            }
        }
    })
}
