//! The audit trail (`audit_events`): batched inserts, filtered keyset pages, hourly counts and
//! retention. Every failure is [`AuditError::Unavailable`] saying what was being done, with the
//! driver's error kept underneath.

use async_trait::async_trait;

use super::{
    SqlStore,
    dialect::{Driver, On},
    rows::{hourly_count, split_page, stored_event},
    sql,
};
use crate::domain::{
    audit::{AuditError, AuditEvent, AuditLog, AuditPage, AuditQuery, HourlyCount, Unavailable},
    time::Timestamp,
};

#[async_trait]
impl<D: Driver> AuditLog for SqlStore<D> {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn append(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let storing = || format!("cannot store {} audit events", events.len());
        let mut tx = self
            .begin_write()
            .await
            .map_err(|e| unavailable(storing(), e))?;
        // Statements have a bound-parameter limit: a large batch is several inserts in one
        // transaction, still all or nothing.
        for chunk in events.chunks(sql::EVENTS_PER_INSERT) {
            D::execute(On::Tx(&mut tx), sql::insert_events(chunk))
                .await
                .map_err(|e| unavailable(storing(), e))?;
        }
        tx.commit().await.map_err(|e| unavailable(storing(), e))
    }

    async fn check(&self) -> Result<(), AuditError> {
        self.check_writable()
            .await
            .map_err(|e| unavailable("cannot write the audit trail", e))
    }

    async fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError> {
        let reading = "cannot read audit events";
        let rows = D::fetch_all(On::Pool(&self.pool), sql::select_events(query))
            .await
            .map_err(|e| unavailable(reading, e))?;
        let mut events = rows
            .iter()
            .map(stored_event::<D>)
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|e| unavailable(reading, e))?;
        let next = split_page(&mut events, query.limit.max(1), |e| e.id);
        Ok(AuditPage { events, next })
    }

    async fn stats(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<HourlyCount>, AuditError> {
        let counting = "cannot count audit events per hour";
        let statement = sql::hourly_counts(since, until);
        let rows = D::fetch_all(On::Pool(&self.pool), statement)
            .await
            .map_err(|e| unavailable(counting, e))?;
        rows.iter()
            .map(hourly_count::<D>)
            .collect::<anyhow::Result<_>>()
            .map_err(|e| unavailable(counting, e))
    }

    async fn prune(&self, before: Timestamp) -> Result<u64, AuditError> {
        D::execute(On::Pool(&self.pool), sql::prune_events(before))
            .await
            .map_err(|e| unavailable("cannot delete old audit events", e))
    }
}

/// The port's contract: any failure of the database is `Unavailable`, a retry may succeed.
fn unavailable(doing: impl Into<String>, error: impl Into<anyhow::Error>) -> AuditError {
    AuditError::Unavailable(Unavailable::new(doing.into(), error))
}
