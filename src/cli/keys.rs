//! `searchgate keys list|rotate|retire`: the embedded development authorization server's
//! signing keys, managed in the database the server uses (a running server picks changes up
//! within 30 s).

use crate::{
    adapters::idp::{ensure_signing_key, rotate_signing_key},
    config::{Settings, load_problem},
    domain::time::Timestamp,
    startup::{self, StartupError},
};

use super::KeysAction;

/// Runs `action`, printing what it did.
///
/// # Errors
/// A config error for another provider or an unknown key id; others when the database fails.
pub(super) async fn run(settings: &Settings, action: KeysAction) -> Result<(), StartupError> {
    match action {
        KeysAction::List => {
            for line in list(settings).await? {
                println!("{line}");
            }
        }
        KeysAction::Rotate => {
            let kid = rotate(settings).await?;
            println!("{kid}");
            eprintln!(
                "searchgate: new signing key {kid}; the previous key stays published until its \
                 tokens expire, and a running server switches within 30 s"
            );
        }
        KeysAction::Retire { kid } => {
            retire(settings, &kid).await?;
            eprintln!(
                "searchgate: retired {kid}; its tokens are refused once a running server reloads \
                 its keys (within 30 s) and its verified-token cache lets go of them"
            );
        }
    }
    Ok(())
}

/// One line per key: its id, when it was made, and its state.
async fn list(settings: &Settings) -> Result<Vec<String>, StartupError> {
    let store = startup::embedded::open_for_commands(settings).await?.store;
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

/// A new signing key; the old one stays published until its tokens expire. Returns its id.
async fn rotate(settings: &Settings) -> Result<String, StartupError> {
    let store = startup::embedded::open_for_commands(settings).await?.store;
    Ok(rotate_signing_key(store.as_ref()).await?)
}

/// Withdraws a key now (its tokens are refused from then on); retiring the signing key makes
/// a new one.
async fn retire(settings: &Settings, kid: &str) -> Result<(), StartupError> {
    let store = startup::embedded::open_for_commands(settings).await?.store;
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
    Timestamp::now().unix_seconds()
}
