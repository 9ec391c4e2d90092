//! The registered-client cache (`clients`).

use anyhow::Context;
use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite, sqlite::SqliteRow};

use super::SqliteStore;
use crate::domain::clients::{ClientPage, ClientRow, ClientSource, ClientStore, RegisteredClient};

#[async_trait]
impl ClientStore for SqliteStore {
    async fn record(&self, client: &RegisteredClient, source: ClientSource) -> anyhow::Result<()> {
        let created_at = client
            .created_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let metadata = &client.metadata;
        // A static client is registered again by every user: keep the first row's times.
        sqlx::query(
            "INSERT INTO clients (client_id, client_name, redirect_uris, grant_types, \
             token_endpoint_auth_method, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name, \
             redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, \
             token_endpoint_auth_method = excluded.token_endpoint_auth_method",
        )
        .bind(&client.client_id)
        .bind(&metadata.client_name)
        .bind(serde_json::to_string(&metadata.redirect_uris)?)
        .bind(serde_json::to_string(&metadata.grant_types)?)
        .bind(&metadata.token_endpoint_auth_method)
        .bind(source.as_str())
        .bind(created_at)
        .execute(self.pool())
        .await
        .context("cannot remember the registered client")?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> anyhow::Result<Option<ClientRow>> {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(SELECT);
        query.push(" WHERE client_id = ").push_bind(client_id);
        let row = query
            .build()
            .fetch_optional(self.pool())
            .await
            .context("cannot read the client")?;
        row.as_ref().map(client_row).transpose()
    }

    async fn list(&self, cursor: Option<&str>, limit: u32) -> anyhow::Result<ClientPage> {
        // Keyset pagination on (created_at, client_id): stable while rows are added.
        let after = cursor.and_then(parse_cursor);
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(SELECT);
        if let Some((created_at, client_id)) = &after {
            query
                .push(" WHERE (created_at, client_id) > (")
                .push_bind(*created_at)
                .push(", ")
                .push_bind(client_id.clone())
                .push(")");
        }
        query
            .push(" ORDER BY created_at, client_id LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = query
            .build()
            .fetch_all(self.pool())
            .await
            .context("cannot list the clients")?;
        let mut clients = rows
            .iter()
            .map(client_row)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let more = clients.len() > limit as usize;
        clients.truncate(limit as usize);
        let next_cursor = more
            .then(|| {
                clients
                    .last()
                    .map(|c| format!("{}.{}", c.created_at, c.client_id))
            })
            .flatten();
        Ok(ClientPage {
            clients,
            next_cursor,
        })
    }

    async fn deny(&self, client_id: &str, at: i64) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE clients SET denied_at = COALESCE(denied_at, ?) WHERE client_id = ?",
        )
        .bind(at)
        .bind(client_id)
        .execute(self.pool())
        .await
        .context("cannot deny the client")?;
        Ok(done.rows_affected() == 1)
    }

    async fn denied(&self) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar("SELECT client_id FROM clients WHERE denied_at IS NOT NULL")
            .fetch_all(self.pool())
            .await
            .context("cannot read the denied clients")
    }

    async fn touch(&self, client_ids: &[String], at: i64) -> anyhow::Result<()> {
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("UPDATE clients SET last_seen_at = ");
        query.push_bind(at).push(" WHERE client_id IN (");
        let mut ids = query.separated(", ");
        for id in client_ids {
            ids.push_bind(id);
        }
        ids.push_unseparated(")");
        query
            .build()
            .execute(self.pool())
            .await
            .context("cannot record when clients were last seen")?;
        Ok(())
    }
}

const SELECT: &str = "SELECT client_id, client_name, redirect_uris, grant_types, \
    token_endpoint_auth_method, source, created_at, last_seen_at, denied_at FROM clients";

fn client_row(row: &SqliteRow) -> anyhow::Result<ClientRow> {
    Ok(ClientRow {
        client_id: row.get("client_id"),
        client_name: row.get("client_name"),
        redirect_uris: serde_json::from_str(row.get("redirect_uris"))?,
        grant_types: serde_json::from_str(row.get("grant_types"))?,
        token_endpoint_auth_method: row.get("token_endpoint_auth_method"),
        source: row.get("source"),
        created_at: row.get("created_at"),
        last_seen_at: row.get("last_seen_at"),
        denied_at: row.get("denied_at"),
    })
}

/// `<created_at>.<client_id>`; anything else starts from the beginning.
fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (created_at, client_id) = cursor.split_once('.')?;
    Some((created_at.parse().ok()?, client_id.to_owned()))
}
