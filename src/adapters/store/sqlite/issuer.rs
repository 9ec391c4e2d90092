//! The embedded authorization server's tables (`idp_*`).

use anyhow::Context;
use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::domain::issuer::{
    ClientRecord, CodeRecord, IssuerStore, KeyRecord, RefreshRecord, Stored, UnixTime,
};

/// Spent codes and refresh tokens are kept this long past expiry, so a replay is recognised as
/// one; then they are deleted.
const KEEP_EXPIRED_SECS: i64 = 86_400;

#[async_trait]
impl IssuerStore for SqliteStore {
    async fn keys(&self) -> anyhow::Result<Vec<KeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, private_pem, created_at, rotated_at, tokens_expire_at, retired_at \
             FROM idp_keys ORDER BY created_at, rowid",
        )
        .fetch_all(self.pool())
        .await
        .context("cannot read the signing keys")?;
        Ok(rows
            .iter()
            .map(|row| KeyRecord {
                kid: row.get("kid"),
                private_pem: row.get("private_pem"),
                created_at: row.get("created_at"),
                rotated_at: row.get("rotated_at"),
                tokens_expire_at: row.get("tokens_expire_at"),
                retired_at: row.get("retired_at"),
            })
            .collect())
    }

    async fn add_signing_key(&self, key: &KeyRecord) -> anyhow::Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE idp_keys SET rotated_at = ? WHERE rotated_at IS NULL")
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO idp_keys (kid, private_pem, created_at, rotated_at, tokens_expire_at, \
             retired_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(&key.private_pem)
        .bind(key.created_at)
        .bind(key.rotated_at)
        .bind(key.tokens_expire_at)
        .bind(key.retired_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await.context("cannot store the signing key")
    }

    async fn extend_key(&self, kid: &str, exp: UnixTime) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE idp_keys SET tokens_expire_at = MAX(tokens_expire_at, ?) \
             WHERE kid = ? AND retired_at IS NULL",
        )
        .bind(exp)
        .bind(kid)
        .execute(self.pool())
        .await
        .context("cannot record the key's token lifetime")?;
        Ok(done.rows_affected() == 1)
    }

    async fn retire_key(&self, kid: &str, at: UnixTime) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE idp_keys SET retired_at = ?, rotated_at = COALESCE(rotated_at, ?) \
             WHERE kid = ? AND retired_at IS NULL",
        )
        .bind(at)
        .bind(at)
        .bind(kid)
        .execute(self.pool())
        .await
        .context("cannot retire the key")?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_client(&self, client: &ClientRecord) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO idp_clients (client_id, client_name, redirect_uris, grant_types, \
             token_endpoint_auth_method, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&client.client_id)
        .bind(&client.client_name)
        .bind(serde_json::to_string(&client.redirect_uris)?)
        .bind(serde_json::to_string(&client.grant_types)?)
        .bind(&client.token_endpoint_auth_method)
        .bind(&client.secret_hash)
        .bind(client.created_at)
        .execute(self.pool())
        .await
        .context("cannot store the client")?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> anyhow::Result<Option<ClientRecord>> {
        let row = sqlx::query(
            "SELECT client_id, client_name, redirect_uris, grant_types, \
             token_endpoint_auth_method, secret_hash, created_at FROM idp_clients \
             WHERE client_id = ?",
        )
        .bind(client_id)
        .fetch_optional(self.pool())
        .await
        .context("cannot read the client")?;
        row.map(|row| {
            Ok(ClientRecord {
                client_id: row.get("client_id"),
                client_name: row.get("client_name"),
                redirect_uris: serde_json::from_str(row.get("redirect_uris"))?,
                grant_types: serde_json::from_str(row.get("grant_types"))?,
                token_endpoint_auth_method: row.get("token_endpoint_auth_method"),
                secret_hash: row.get("secret_hash"),
                created_at: row.get("created_at"),
            })
        })
        .transpose()
    }

    async fn add_code(&self, code: &CodeRecord) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM idp_codes WHERE expires_at < ?")
            .bind(code.expires_at - KEEP_EXPIRED_SECS)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO idp_codes (code_hash, client_id, redirect_uri, code_challenge, scope, \
             resource, subject, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&code.code_hash)
        .bind(&code.client_id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(&code.scope)
        .bind(&code.resource)
        .bind(&code.subject)
        .bind(code.expires_at)
        .execute(self.pool())
        .await
        .context("cannot store the authorization code")?;
        Ok(())
    }

    async fn find_code(&self, code_hash: &str) -> anyhow::Result<Option<Stored<CodeRecord>>> {
        let row = sqlx::query(
            "SELECT code_hash, client_id, redirect_uri, code_challenge, scope, resource, \
             subject, expires_at, used_at IS NOT NULL AS spent FROM idp_codes WHERE code_hash = ?",
        )
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await
        .context("cannot read the authorization code")?;
        Ok(row.map(|row| Stored {
            spent: row.get("spent"),
            record: CodeRecord {
                code_hash: row.get("code_hash"),
                client_id: row.get("client_id"),
                redirect_uri: row.get("redirect_uri"),
                code_challenge: row.get("code_challenge"),
                scope: row.get("scope"),
                resource: row.get("resource"),
                subject: row.get("subject"),
                expires_at: row.get("expires_at"),
            },
        }))
    }

    async fn consume_code(
        &self,
        code_hash: &str,
        refresh: Option<&RefreshRecord>,
    ) -> anyhow::Result<bool> {
        // IMMEDIATE takes the write lock first, so concurrent exchanges queue rather than race.
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let spent = sqlx::query(
            "UPDATE idp_codes SET used_at = unixepoch() WHERE code_hash = ? AND used_at IS NULL",
        )
        .bind(code_hash)
        .execute(&mut *tx)
        .await
        .context("cannot spend the authorization code")?;
        if spent.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(refresh) = refresh {
            insert_refresh(&mut tx, refresh).await?;
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
        let row = sqlx::query(
            "SELECT token_hash, family, client_id, subject, scope, resource, expires_at, \
             (used_at IS NOT NULL OR revoked_at IS NOT NULL) AS spent \
             FROM idp_refresh_tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
        .context("cannot read the refresh token")?;
        Ok(row.map(|row| Stored {
            spent: row.get("spent"),
            record: RefreshRecord {
                token_hash: row.get("token_hash"),
                family: row.get("family"),
                client_id: row.get("client_id"),
                subject: row.get("subject"),
                scope: row.get("scope"),
                resource: row.get("resource"),
                expires_at: row.get("expires_at"),
            },
        }))
    }

    async fn rotate_refresh(&self, token_hash: &str, next: &RefreshRecord) -> anyhow::Result<bool> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let spent = sqlx::query(
            "UPDATE idp_refresh_tokens SET used_at = unixepoch() WHERE token_hash = ? \
             AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .execute(&mut *tx)
        .await
        .context("cannot spend the refresh token")?;
        if spent.rows_affected() != 1 {
            return Ok(false);
        }
        insert_refresh(&mut tx, next).await?;
        sqlx::query("DELETE FROM idp_refresh_tokens WHERE expires_at < unixepoch() - ?")
            .bind(KEEP_EXPIRED_SECS)
            .execute(&mut *tx)
            .await?;
        tx.commit()
            .await
            .context("cannot rotate the refresh token")?;
        Ok(true)
    }

    async fn revoke_family(&self, family: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE idp_refresh_tokens SET revoked_at = unixepoch() \
             WHERE family = ? AND revoked_at IS NULL",
        )
        .bind(family)
        .execute(self.pool())
        .await
        .context("cannot revoke the refresh tokens")?;
        Ok(())
    }
}

async fn insert_refresh(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    token: &RefreshRecord,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO idp_refresh_tokens (token_hash, family, client_id, subject, scope, \
         resource, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&token.token_hash)
    .bind(&token.family)
    .bind(&token.client_id)
    .bind(&token.subject)
    .bind(&token.scope)
    .bind(&token.resource)
    .bind(token.expires_at)
    .execute(&mut **tx)
    .await
    .context("cannot store the refresh token")?;
    Ok(())
}
