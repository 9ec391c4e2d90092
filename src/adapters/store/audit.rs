//! The audit trail (`audit_events`): batched inserts, filtered keyset pages, hourly counts and
//! retention. A failure says what was being done, with the driver's error kept underneath: an
//! insert the database refuses for its rows (a constraint, a value it cannot hold) is
//! [`AuditError::Refused`], every other failure [`AuditError::Unavailable`].

use async_trait::async_trait;

use super::{
    SqlStore,
    dialect::{Driver, On},
    rows::{hourly_count, split_page, stored_event, usage_row},
    sql,
};
use crate::domain::{
    audit::{
        AuditError, AuditLog, AuditPage, AuditQuery, BoundedEvent, HourlyCount, Unavailable,
        UsageGroup, UsageRow,
    },
    time::Timestamp,
};

#[async_trait]
impl<D: Driver> AuditLog for SqlStore<D> {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn append(&self, events: &[BoundedEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        // One statement holds the whole batch, so it is all or nothing without a transaction
        // around it: one round trip to the database instead of three (each of which waits
        // for the writer's turn on a busy runtime).
        D::execute(On::Pool(&self.pool), sql::insert_events::<D>(events))
            .await
            .map(drop)
            .map_err(|e| {
                write_failure::<D>(format!("cannot store {} audit events", events.len()), e)
            })
    }

    async fn check(&self) -> Result<(), AuditError> {
        self.check_writable()
            .await
            .map_err(|e| unavailable("cannot write the audit trail", e))
    }

    async fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError> {
        let reading = "cannot read audit events";
        let rows = D::fetch_all(On::Pool(&self.pool), sql::select_events::<D>(query))
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

    async fn usage(
        &self,
        since: Timestamp,
        until: Timestamp,
        group: UsageGroup,
    ) -> Result<Vec<UsageRow>, AuditError> {
        let summing = "cannot sum up usage from the audit trail";
        let rows = D::fetch_all(On::Pool(&self.pool), sql::usage(since, until, group))
            .await
            .map_err(|e| unavailable(summing, e))?;
        rows.iter()
            .map(usage_row::<D>)
            .collect::<anyhow::Result<_>>()
            .map_err(|e| unavailable(summing, e))
    }

    async fn prune(&self, before: Timestamp) -> Result<u64, AuditError> {
        D::execute(On::Pool(&self.pool), sql::prune_events(before))
            .await
            .map_err(|e| unavailable("cannot delete old audit events", e))
    }
}

/// A failed insert: `Refused` when the database refused the rows themselves (the same rows
/// would fail again), else `Unavailable` (a retry may succeed).
fn write_failure<D: Driver>(doing: String, error: sqlx::Error) -> AuditError {
    let refused = match &error {
        sqlx::Error::Database(database) => D::refuses_rows(database.as_ref()),
        sqlx::Error::Encode(_) => true,
        _ => false,
    };
    if refused {
        AuditError::Refused(anyhow::Error::new(error).context(doing))
    } else {
        unavailable(doing, error)
    }
}

/// Any other failure of the database is `Unavailable`: a retry may succeed.
fn unavailable(doing: impl Into<String>, error: impl Into<anyhow::Error>) -> AuditError {
    AuditError::Unavailable(Unavailable::new(doing.into(), error))
}
