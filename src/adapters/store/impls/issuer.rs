//! The embedded authorization server's tables (`idp_*`), for any store with `pool()`,
//! `begin_write()`, `SELECT_KEYS`, `LOCK_KEYS` and `LOCK_FAMILY` (see `store/impls.rs`).

macro_rules! impl_issuer_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use anyhow::Context;
            use async_trait::async_trait;

            use $crate::{
                adapters::store::{
                    rows::{client_record, code_record, key_record, refresh_record, unix_now},
                    sql::{self, KEEP_EXPIRED_SECS},
                },
                domain::issuer::{
                    ClientRecord, CodeRecord, IssuerStore, KeyRecord, RefreshRecord, Stored,
                    UnixTime,
                },
            };

            #[async_trait]
            impl IssuerStore for $store {
                async fn keys(&self) -> anyhow::Result<Vec<KeyRecord>> {
                    let rows = sqlx::query(<$store>::SELECT_KEYS)
                        .fetch_all(self.pool())
                        .await
                        .context("cannot read the signing keys")?;
                    Ok(rows.iter().map(key_record).collect::<Result<_, _>>()?)
                }

                async fn add_signing_key(&self, key: &KeyRecord) -> anyhow::Result<()> {
                    // Key makers take turns, so only the newest key is left signing.
                    let mut tx = self.begin_write().await?;
                    sqlx::query(<$store>::LOCK_KEYS).execute(&mut *tx).await?;
                    sqlx::query(sql::ROTATE_OUT_KEYS)
                        .bind(key.created_at)
                        .execute(&mut *tx)
                        .await?;
                    sql::insert_key::<$db>(key)
                        .build()
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await.context("cannot store the signing key")
                }

                async fn add_first_signing_key(&self, key: &KeyRecord) -> anyhow::Result<bool> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(<$store>::LOCK_KEYS).execute(&mut *tx).await?;
                    let signing: i64 = sqlx::query_scalar(sql::COUNT_SIGNING_KEYS)
                        .fetch_one(&mut *tx)
                        .await?;
                    if signing > 0 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    sql::insert_key::<$db>(key)
                        .build()
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await.context("cannot store the signing key")?;
                    Ok(true)
                }

                async fn extend_key(&self, kid: &str, exp: UnixTime) -> anyhow::Result<bool> {
                    let done = sqlx::query(sql::EXTEND_KEY)
                        .bind(exp)
                        .bind(kid)
                        .execute(self.pool())
                        .await
                        .context("cannot record the key's token lifetime")?;
                    Ok(done.rows_affected() == 1)
                }

                async fn retire_key(&self, kid: &str, at: UnixTime) -> anyhow::Result<bool> {
                    let done = sqlx::query(sql::RETIRE_KEY)
                        .bind(at)
                        .bind(kid)
                        .execute(self.pool())
                        .await
                        .context("cannot retire the key")?;
                    Ok(done.rows_affected() == 1)
                }

                async fn add_client(&self, client: &ClientRecord) -> anyhow::Result<()> {
                    sql::insert_idp_client::<$db>(client)?
                        .build()
                        .execute(self.pool())
                        .await
                        .context("cannot store the client")?;
                    Ok(())
                }

                async fn client(&self, client_id: &str) -> anyhow::Result<Option<ClientRecord>> {
                    let row = sqlx::query(sql::SELECT_IDP_CLIENT)
                        .bind(sql::text(client_id))
                        .fetch_optional(self.pool())
                        .await
                        .context("cannot read the client")?;
                    row.as_ref().map(client_record).transpose()
                }

                async fn add_code(&self, code: &CodeRecord) -> anyhow::Result<()> {
                    sqlx::query(sql::PRUNE_CODES)
                        .bind(code.expires_at - KEEP_EXPIRED_SECS)
                        .execute(self.pool())
                        .await?;
                    sql::insert_code::<$db>(code)
                        .build()
                        .execute(self.pool())
                        .await
                        .context("cannot store the authorization code")?;
                    Ok(())
                }

                async fn find_code(
                    &self,
                    code_hash: &str,
                ) -> anyhow::Result<Option<Stored<CodeRecord>>> {
                    let row = sqlx::query(sql::SELECT_CODE)
                        .bind(code_hash)
                        .fetch_optional(self.pool())
                        .await
                        .context("cannot read the authorization code")?;
                    Ok(row.as_ref().map(code_record).transpose()?)
                }

                async fn consume_code(
                    &self,
                    code_hash: &str,
                    refresh: Option<&RefreshRecord>,
                ) -> anyhow::Result<bool> {
                    // The conditional UPDATE picks one winner among concurrent exchanges; the
                    // successor refresh token commits with it or not at all.
                    let mut tx = self.begin_write().await?;
                    let spent = sqlx::query(sql::SPEND_CODE)
                        .bind(unix_now())
                        .bind(code_hash)
                        .execute(&mut *tx)
                        .await
                        .context("cannot spend the authorization code")?;
                    if spent.rows_affected() != 1 {
                        // Ended now, not when the pool next hands the connection out.
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    if let Some(refresh) = refresh {
                        sql::insert_refresh::<$db>(refresh)
                            .build()
                            .execute(&mut *tx)
                            .await
                            .context("cannot store the refresh token")?;
                    }
                    tx.commit()
                        .await
                        .context("cannot spend the authorization code")?;
                    Ok(true)
                }

                async fn find_refresh(
                    &self,
                    token_hash: &str,
                ) -> anyhow::Result<Option<Stored<RefreshRecord>>> {
                    let row = sqlx::query(sql::SELECT_REFRESH)
                        .bind(token_hash)
                        .fetch_optional(self.pool())
                        .await
                        .context("cannot read the refresh token")?;
                    Ok(row.as_ref().map(refresh_record).transpose()?)
                }

                async fn rotate_refresh(
                    &self,
                    token_hash: &str,
                    next: &RefreshRecord,
                ) -> anyhow::Result<bool> {
                    let now = unix_now();
                    let mut tx = self.begin_write().await?;
                    // Rotations and revocations of one family take turns, so a revocation
                    // always sees the successor a concurrent rotation stores.
                    sqlx::query(<$store>::LOCK_FAMILY)
                        .bind(&next.family)
                        .execute(&mut *tx)
                        .await?;
                    let spent = sqlx::query(sql::SPEND_REFRESH)
                        .bind(now)
                        .bind(token_hash)
                        .execute(&mut *tx)
                        .await
                        .context("cannot spend the refresh token")?;
                    if spent.rows_affected() != 1 {
                        // Ended now, not when the pool next hands the connection out.
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    sql::insert_refresh::<$db>(next)
                        .build()
                        .execute(&mut *tx)
                        .await
                        .context("cannot store the refresh token")?;
                    tx.commit()
                        .await
                        .context("cannot rotate the refresh token")?;
                    // Outside the rotation, so it never holds other families' rows with it.
                    if let Err(error) = sqlx::query(sql::PRUNE_REFRESH)
                        .bind(now - KEEP_EXPIRED_SECS)
                        .execute(self.pool())
                        .await
                    {
                        tracing::warn!(error = %error, "cannot prune expired refresh tokens");
                    }
                    Ok(true)
                }

                async fn revoke_family(&self, family: &str) -> anyhow::Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(<$store>::LOCK_FAMILY)
                        .bind(family)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(sql::REVOKE_FAMILY)
                        .bind(unix_now())
                        .bind(family)
                        .execute(&mut *tx)
                        .await
                        .context("cannot revoke the refresh tokens")?;
                    tx.commit()
                        .await
                        .context("cannot revoke the refresh tokens")?;
                    Ok(())
                }
            }
        };
    };
}
pub(crate) use impl_issuer_store;
