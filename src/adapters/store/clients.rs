//! The registered-client cache (`clients`).

use anyhow::Context;
use async_trait::async_trait;

use super::{
    SqlStore,
    dialect::{Driver, On},
    rows::{client_id, client_row, split_page},
    sql,
};
use crate::domain::{
    clients::{ClientCursor, ClientPage, ClientRow, ClientSource, ClientStore, RegisteredClient},
    issuer::UnixTime,
};

#[async_trait]
impl<D: Driver> ClientStore for SqlStore<D> {
    async fn record(&self, client: &RegisteredClient, source: ClientSource) -> anyhow::Result<()> {
        let doing = || {
            format!(
                "cannot remember the registered client `{}`",
                client.client_id
            )
        };
        let statement =
            sql::record_client(client, source, D::CLIENT_CONFLICT).with_context(doing)?;
        D::execute(On::Pool(&self.pool), statement)
            .await
            .with_context(doing)?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> anyhow::Result<Option<ClientRow>> {
        let doing = || format!("cannot read the client `{client_id}`");
        let row = D::fetch_optional(On::Pool(&self.pool), sql::select_client(client_id))
            .await
            .with_context(doing)?;
        row.as_ref()
            .map(client_row::<D>)
            .transpose()
            .with_context(doing)
    }

    async fn list(&self, cursor: Option<&ClientCursor>, limit: u32) -> anyhow::Result<ClientPage> {
        let doing = "cannot list the clients";
        let rows = D::fetch_all(On::Pool(&self.pool), sql::select_clients(cursor, limit))
            .await
            .context(doing)?;
        let mut clients = rows
            .iter()
            .map(client_row::<D>)
            .collect::<anyhow::Result<Vec<_>>>()
            .context(doing)?;
        let next_cursor = split_page(&mut clients, limit, |c| ClientCursor::after(c).to_string());
        Ok(ClientPage {
            clients,
            next_cursor,
        })
    }

    async fn deny(&self, client_id: &str, at: UnixTime) -> anyhow::Result<bool> {
        let changed = D::execute(On::Pool(&self.pool), sql::deny_client(client_id, at))
            .await
            .with_context(|| format!("cannot deny the client `{client_id}`"))?;
        Ok(changed == 1)
    }

    async fn denied(&self) -> anyhow::Result<Vec<String>> {
        let doing = "cannot read the denied clients";
        let rows = D::fetch_all(On::Pool(&self.pool), sql::denied_clients())
            .await
            .context(doing)?;
        rows.iter()
            .map(client_id::<D>)
            .collect::<anyhow::Result<_>>()
            .context(doing)
    }

    async fn touch(&self, client_ids: &[String], at: UnixTime) -> anyhow::Result<()> {
        if client_ids.is_empty() {
            return Ok(());
        }
        D::execute(On::Pool(&self.pool), sql::touch_clients(client_ids, at))
            .await
            .with_context(|| {
                format!(
                    "cannot record when {} clients were last seen",
                    client_ids.len()
                )
            })?;
        Ok(())
    }
}
