//! The audit trail (`audit_events`): batched inserts, filtered keyset pages, hourly counts and
//! retention.

macro_rules! impl_audit_log {
    ($store:ty, $db:ty) => {
        const _: () = {
            use std::time::SystemTime;

            use async_trait::async_trait;

            use $crate::{
                adapters::store::{
                    rows::{hourly_count, millis, split_page, stored_event},
                    sql,
                },
                domain::audit::{
                    AuditError, AuditEvent, AuditLog, AuditPage, AuditQuery, HourlyCount,
                },
            };

            #[async_trait]
            impl AuditLog for $store {
                #[tracing::instrument(skip_all, fields(events = events.len()))]
                async fn append(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
                    if events.is_empty() {
                        return Ok(());
                    }
                    // Statements have a bound-parameter limit (SQLite 32,766, PostgreSQL 65,535):
                    // a large batch is several inserts in one transaction, still all or nothing.
                    let mut tx = self.begin_write().await.map_err(unavailable)?;
                    for chunk in events.chunks(sql::EVENTS_PER_INSERT) {
                        sql::insert_events::<$db>(chunk)
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(unavailable)?;
                    }
                    tx.commit().await.map_err(unavailable)
                }

                async fn check(&self) -> Result<(), AuditError> {
                    self.check_writable().await.map_err(unavailable)
                }

                async fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError> {
                    let rows = sql::select_events::<$db>(query)
                        .build()
                        .fetch_all(self.pool())
                        .await
                        .map_err(unavailable)?;
                    let mut events = rows
                        .iter()
                        .map(stored_event)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(unavailable)?;
                    let next = split_page(&mut events, query.limit.max(1), |e| e.id);
                    Ok(AuditPage { events, next })
                }

                async fn stats(
                    &self,
                    since: SystemTime,
                    until: SystemTime,
                ) -> Result<Vec<HourlyCount>, AuditError> {
                    let rows = sqlx::query(sql::HOURLY_COUNTS)
                        .bind(millis(since))
                        .bind(millis(until))
                        .fetch_all(self.pool())
                        .await
                        .map_err(unavailable)?;
                    rows.iter()
                        .map(hourly_count)
                        .collect::<Result<_, _>>()
                        .map_err(unavailable)
                }

                async fn prune(&self, before: SystemTime) -> Result<u64, AuditError> {
                    sqlx::query(sql::PRUNE_EVENTS)
                        .bind(millis(before))
                        .execute(self.pool())
                        .await
                        .map(|done| done.rows_affected())
                        .map_err(unavailable)
                }
            }

            fn unavailable(error: sqlx::Error) -> AuditError {
                AuditError::Unavailable(error.to_string())
            }
        };
    };
}
pub(crate) use impl_audit_log;
