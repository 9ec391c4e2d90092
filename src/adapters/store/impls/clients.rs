//! The registered-client cache (`clients`).

macro_rules! impl_client_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use anyhow::Context;
            use async_trait::async_trait;

            use $crate::{
                adapters::store::{
                    rows::{client_row, split_page},
                    sql,
                },
                domain::clients::{
                    ClientCursor, ClientPage, ClientRow, ClientSource, ClientStore,
                    RegisteredClient,
                },
            };

            #[async_trait]
            impl ClientStore for $store {
                async fn record(
                    &self,
                    client: &RegisteredClient,
                    source: ClientSource,
                ) -> anyhow::Result<()> {
                    sql::record_client::<$db>(client, source)?
                        .build()
                        .execute(self.pool())
                        .await
                        .context("cannot remember the registered client")?;
                    Ok(())
                }

                async fn client(&self, client_id: &str) -> anyhow::Result<Option<ClientRow>> {
                    let row = sql::select_client::<$db>(client_id)
                        .build()
                        .fetch_optional(self.pool())
                        .await
                        .context("cannot read the client")?;
                    row.as_ref().map(client_row).transpose()
                }

                async fn list(
                    &self,
                    cursor: Option<&ClientCursor>,
                    limit: u32,
                ) -> anyhow::Result<ClientPage> {
                    let rows = sql::select_clients::<$db>(cursor, limit)
                        .build()
                        .fetch_all(self.pool())
                        .await
                        .context("cannot list the clients")?;
                    let mut clients = rows
                        .iter()
                        .map(client_row)
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    let next_cursor =
                        split_page(&mut clients, limit, |c| ClientCursor::after(c).to_string());
                    Ok(ClientPage {
                        clients,
                        next_cursor,
                    })
                }

                async fn deny(&self, client_id: &str, at: i64) -> anyhow::Result<bool> {
                    let done = sqlx::query(sql::DENY_CLIENT)
                        .bind(at)
                        .bind(sql::text(client_id))
                        .execute(self.pool())
                        .await
                        .context("cannot deny the client")?;
                    Ok(done.rows_affected() == 1)
                }

                async fn denied(&self) -> anyhow::Result<Vec<String>> {
                    sqlx::query_scalar(sql::DENIED_CLIENTS)
                        .fetch_all(self.pool())
                        .await
                        .context("cannot read the denied clients")
                }

                async fn touch(&self, client_ids: &[String], at: i64) -> anyhow::Result<()> {
                    if client_ids.is_empty() {
                        return Ok(());
                    }
                    sql::touch_clients::<$db>(client_ids, at)
                        .build()
                        .execute(self.pool())
                        .await
                        .context("cannot record when clients were last seen")?;
                    Ok(())
                }
            }
        };
    };
}
pub(crate) use impl_client_store;
