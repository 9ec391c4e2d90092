//! The embedded authorization server's tables (`idp_*`). Key makers take turns on the
//! dialect's key lock; a credential is spent and its successor stored in one transaction.

use anyhow::Context;
use async_trait::async_trait;

use super::{
    SqlStore,
    dialect::{Driver, On},
    rows::{client_record, code_record, count, key_record, refresh_record},
    sql::{self, KEEP_EXPIRED_SECS},
    statement::Statement,
};
use crate::domain::{
    issuer::{ClientRecord, CodeRecord, IssuerStore, KeyRecord, RefreshRecord, Stored, UnixTime},
    time::Timestamp,
};

impl<D: Driver> SqlStore<D> {
    /// A write transaction holding the key lock: key makers take turns.
    async fn lock_keys(&self) -> anyhow::Result<sqlx::Transaction<'static, D>> {
        let mut tx = self.begin_write().await.context("cannot begin a write")?;
        D::execute(On::Tx(&mut tx), Statement::new(D::LOCK_KEYS, []))
            .await
            .context("cannot lock the signing keys")?;
        Ok(tx)
    }

    /// Spends a single-use credential and stores its successor, in one transaction: `spend`
    /// is a conditional UPDATE, which picks one winner among concurrent callers; `lock`, when
    /// given, is taken first. `false`, with nothing changed, when it was spent already.
    async fn spend_then_insert(
        &self,
        lock: Option<Statement>,
        spend: Statement,
        successor: Option<Statement>,
    ) -> anyhow::Result<bool> {
        let mut tx = self.begin_write().await.context("cannot begin a write")?;
        if let Some(lock) = lock {
            D::execute(On::Tx(&mut tx), lock)
                .await
                .context("cannot lock the refresh-token family")?;
        }
        let spent = D::execute(On::Tx(&mut tx), spend)
            .await
            .context("cannot mark it spent")?;
        if spent != 1 {
            // Ended now, not when the pool next hands the connection out.
            tx.rollback().await.context("cannot end the transaction")?;
            return Ok(false);
        }
        if let Some(successor) = successor {
            D::execute(On::Tx(&mut tx), successor)
                .await
                .context("cannot store the refresh token issued for it")?;
        }
        tx.commit().await.context("cannot commit")?;
        Ok(true)
    }
}

#[async_trait]
impl<D: Driver> IssuerStore for SqlStore<D> {
    async fn keys(&self) -> anyhow::Result<Vec<KeyRecord>> {
        let doing = "cannot read the signing keys";
        let rows = D::fetch_all(On::Pool(&self.pool), sql::select_keys(D::KEY_ORDER))
            .await
            .context(doing)?;
        rows.iter()
            .map(key_record::<D>)
            .collect::<anyhow::Result<_>>()
            .context(doing)
    }

    async fn add_signing_key(&self, key: &KeyRecord) -> anyhow::Result<()> {
        let doing = || format!("cannot store the signing key `{}`", key.kid);
        // Key makers take turns, so only the newest key is left signing.
        let mut tx = self.lock_keys().await.with_context(doing)?;
        D::execute(On::Tx(&mut tx), sql::rotate_out_keys(key.created_at))
            .await
            .with_context(doing)?;
        D::execute(On::Tx(&mut tx), sql::insert_key(key))
            .await
            .with_context(doing)?;
        tx.commit().await.with_context(doing)
    }

    async fn add_first_signing_key(&self, key: &KeyRecord) -> anyhow::Result<bool> {
        let doing = || format!("cannot store the first signing key `{}`", key.kid);
        let mut tx = self.lock_keys().await.with_context(doing)?;
        let signing = D::fetch_optional(On::Tx(&mut tx), sql::count_signing_keys())
            .await
            .with_context(doing)?
            .as_ref()
            .map(count::<D>)
            .transpose()
            .with_context(doing)?
            .unwrap_or(0);
        if signing > 0 {
            tx.rollback().await.with_context(doing)?;
            return Ok(false);
        }
        D::execute(On::Tx(&mut tx), sql::insert_key(key))
            .await
            .with_context(doing)?;
        tx.commit().await.with_context(doing)?;
        Ok(true)
    }

    async fn extend_key(&self, kid: &str, exp: UnixTime) -> anyhow::Result<bool> {
        let changed = D::execute(On::Pool(&self.pool), sql::extend_key(kid, exp))
            .await
            .with_context(|| format!("cannot record the token lifetime of the key `{kid}`"))?;
        Ok(changed == 1)
    }

    async fn retire_key(&self, kid: &str, at: UnixTime) -> anyhow::Result<bool> {
        let changed = D::execute(On::Pool(&self.pool), sql::retire_key(kid, at))
            .await
            .with_context(|| format!("cannot retire the key `{kid}`"))?;
        Ok(changed == 1)
    }

    async fn add_client(&self, client: &ClientRecord) -> anyhow::Result<()> {
        let doing = || format!("cannot store the client `{}`", client.client_id);
        let statement = sql::insert_idp_client(client).with_context(doing)?;
        D::execute(On::Pool(&self.pool), statement)
            .await
            .with_context(doing)?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> anyhow::Result<Option<ClientRecord>> {
        let doing = || format!("cannot read the client `{client_id}`");
        let row = D::fetch_optional(On::Pool(&self.pool), sql::select_idp_client(client_id))
            .await
            .with_context(doing)?;
        row.as_ref()
            .map(client_record::<D>)
            .transpose()
            .with_context(doing)
    }

    async fn add_code(&self, code: &CodeRecord) -> anyhow::Result<()> {
        D::execute(
            On::Pool(&self.pool),
            sql::prune_codes(code.expires_at - KEEP_EXPIRED_SECS),
        )
        .await
        .context("cannot delete expired authorization codes")?;
        D::execute(On::Pool(&self.pool), sql::insert_code(code))
            .await
            .context("cannot store the authorization code")?;
        Ok(())
    }

    async fn find_code(&self, code_hash: &str) -> anyhow::Result<Option<Stored<CodeRecord>>> {
        let doing = "cannot read the authorization code";
        let row = D::fetch_optional(On::Pool(&self.pool), sql::select_code(code_hash))
            .await
            .context(doing)?;
        row.as_ref()
            .map(code_record::<D>)
            .transpose()
            .context(doing)
    }

    async fn consume_code(
        &self,
        code_hash: &str,
        refresh: Option<&RefreshRecord>,
    ) -> anyhow::Result<bool> {
        let now = Timestamp::now().unix_seconds();
        self.spend_then_insert(
            None,
            sql::spend_code(code_hash, now),
            refresh.map(sql::insert_refresh),
        )
        .await
        .context("cannot spend the authorization code")
    }

    async fn find_refresh(
        &self,
        token_hash: &str,
    ) -> anyhow::Result<Option<Stored<RefreshRecord>>> {
        let doing = "cannot read the refresh token";
        let row = D::fetch_optional(On::Pool(&self.pool), sql::select_refresh(token_hash))
            .await
            .context(doing)?;
        row.as_ref()
            .map(refresh_record::<D>)
            .transpose()
            .context(doing)
    }

    async fn rotate_refresh(&self, token_hash: &str, next: &RefreshRecord) -> anyhow::Result<bool> {
        let now = Timestamp::now().unix_seconds();
        // Rotations and revocations of one family take turns, so a revocation always sees
        // the successor a concurrent rotation stores.
        let rotated = self
            .spend_then_insert(
                Some(sql::lock_family(D::LOCK_FAMILY, &next.family)),
                sql::spend_refresh(token_hash, now),
                Some(sql::insert_refresh(next)),
            )
            .await
            .context("cannot rotate the refresh token")?;
        if rotated {
            // Outside the rotation, so it never holds other families' rows with it.
            let prune = sql::prune_refresh(now - KEEP_EXPIRED_SECS);
            if let Err(error) = D::execute(On::Pool(&self.pool), prune).await {
                tracing::warn!(error = %error, "cannot prune expired refresh tokens");
            }
        }
        Ok(rotated)
    }

    async fn revoke_family(&self, family: &str) -> anyhow::Result<()> {
        let doing = "cannot revoke the refresh tokens";
        let mut tx = self.begin_write().await.context(doing)?;
        D::execute(On::Tx(&mut tx), sql::lock_family(D::LOCK_FAMILY, family))
            .await
            .context(doing)?;
        let now = Timestamp::now().unix_seconds();
        D::execute(On::Tx(&mut tx), sql::revoke_family(family, now))
            .await
            .context(doing)?;
        tx.commit().await.context(doing)
    }

    async fn spend_ticket(&self, ticket_id: &str, expires_at: UnixTime) -> anyhow::Result<bool> {
        let now = Timestamp::now().unix_seconds();
        let prune = sql::prune_tickets(now - TICKET_CLOCK_SKEW_SECS);
        if let Err(error) = D::execute(On::Pool(&self.pool), prune).await {
            tracing::warn!(error = %error, "cannot prune expired consent tickets");
        }
        // The primary key picks the one winner among concurrent uses.
        let recorded = D::execute(
            On::Pool(&self.pool),
            sql::spend_ticket(ticket_id, expires_at),
        )
        .await
        .context("cannot record the use of a consent ticket")?;
        Ok(recorded == 1)
    }
}

/// Used consent tickets are kept this long past their expiry, so a replica whose clock is
/// behind still finds them while it would take the ticket as valid.
const TICKET_CLOCK_SKEW_SECS: i64 = 300;
