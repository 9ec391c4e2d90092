//! The audit trail (`audit_events`): batched inserts, filtered keyset pages, hourly counts and
//! retention.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite, sqlite::SqliteRow};

use super::SqliteStore;
use crate::domain::audit::{
    AuditError, AuditEvent, AuditLog, AuditPage, AuditQuery, HourlyCount, Outcome, StoredEvent,
};

const COLUMNS: &str = "id, occurred_at_ms, request_id, method, tool, outcome, http_status, \
    error_code, latency_us, subject, client_id, issuer, token_hash_prefix, source_addr, provider, \
    cache_hit, upstream_attempts, upstream_request_id, query_summary";

#[async_trait]
impl AuditLog for SqliteStore {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn append(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut builder: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO audit_events (occurred_at_ms, request_id, method, tool, outcome, \
             http_status, error_code, latency_us, subject, client_id, issuer, token_hash_prefix, \
             source_addr, provider, cache_hit, upstream_attempts, upstream_request_id, \
             query_summary) ",
        );
        builder.push_values(events, |mut row, e| {
            row.push_bind(millis(e.occurred_at))
                .push_bind(&e.request_id)
                .push_bind(&e.method)
                .push_bind(&e.tool)
                .push_bind(e.outcome.as_str())
                .push_bind(i64::from(e.http_status))
                .push_bind(&e.error_code)
                .push_bind(i64::try_from(e.latency.as_micros()).unwrap_or(i64::MAX))
                .push_bind(&e.subject)
                .push_bind(&e.client_id)
                .push_bind(&e.issuer)
                .push_bind(&e.token_hash_prefix)
                .push_bind(&e.source_addr)
                .push_bind(&e.provider)
                .push_bind(e.cache_hit)
                .push_bind(e.upstream_attempts.map(i64::from))
                .push_bind(&e.upstream_request_id)
                .push_bind(&e.query_summary);
        });
        // One statement is one implicit transaction: all rows or none.
        builder
            .build()
            .execute(self.pool())
            .await
            .map(|_| ())
            .map_err(|e| AuditError::Unavailable(e.to_string()))
    }

    async fn check(&self) -> Result<(), AuditError> {
        // BEGIN IMMEDIATE takes the write lock, so it fails on a read-only or locked-out file;
        // dropping the transaction rolls it back.
        let transaction = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| AuditError::Unavailable(e.to_string()))?;
        drop(transaction);
        Ok(())
    }

    async fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError> {
        let mut builder: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_events WHERE 1 = 1"));
        if let Some(after) = query.after {
            builder.push(" AND id > ").push_bind(after);
        }
        if let Some(since) = query.since {
            builder
                .push(" AND occurred_at_ms >= ")
                .push_bind(millis(since));
        }
        if let Some(until) = query.until {
            builder
                .push(" AND occurred_at_ms < ")
                .push_bind(millis(until));
        }
        for (column, value) in [
            ("subject", &query.subject),
            ("client_id", &query.client_id),
            ("tool", &query.tool),
            ("outcome", &query.outcome),
        ] {
            if let Some(value) = value {
                builder
                    .push(format!(" AND {column} = "))
                    .push_bind(value.clone());
            }
        }
        let limit = query.limit.max(1);
        builder
            .push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = builder
            .build()
            .fetch_all(self.pool())
            .await
            .map_err(|e| AuditError::Unavailable(e.to_string()))?;
        let mut events: Vec<StoredEvent> = rows.iter().map(stored_event).collect();
        let more = events.len() > limit as usize;
        events.truncate(limit as usize);
        let next = more.then(|| events.last().map(|e| e.id)).flatten();
        Ok(AuditPage { events, next })
    }

    async fn stats(
        &self,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<HourlyCount>, AuditError> {
        let rows = sqlx::query(
            "SELECT (occurred_at_ms / 3600000) * 3600 AS hour, tool, outcome, COUNT(*) AS n \
             FROM audit_events WHERE occurred_at_ms >= ? AND occurred_at_ms < ? \
             GROUP BY hour, tool, outcome ORDER BY hour, tool, outcome",
        )
        .bind(millis(since))
        .bind(millis(until))
        .fetch_all(self.pool())
        .await
        .map_err(|e| AuditError::Unavailable(e.to_string()))?;
        Ok(rows
            .iter()
            .map(|row| HourlyCount {
                hour: UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(row.get::<i64, _>("hour")).unwrap_or(0)),
                tool: row.get("tool"),
                outcome: row.get("outcome"),
                count: u64::try_from(row.get::<i64, _>("n")).unwrap_or(0),
            })
            .collect())
    }

    async fn prune(&self, before: SystemTime) -> Result<u64, AuditError> {
        sqlx::query("DELETE FROM audit_events WHERE occurred_at_ms < ?")
            .bind(millis(before))
            .execute(self.pool())
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| AuditError::Unavailable(e.to_string()))
    }
}

fn stored_event(row: &SqliteRow) -> StoredEvent {
    let ms = u64::try_from(row.get::<i64, _>("occurred_at_ms")).unwrap_or(0);
    let latency = u64::try_from(row.get::<i64, _>("latency_us")).unwrap_or(0);
    StoredEvent {
        id: row.get("id"),
        event: AuditEvent {
            occurred_at: UNIX_EPOCH + Duration::from_millis(ms),
            request_id: row.get("request_id"),
            method: row.get("method"),
            tool: row.get("tool"),
            outcome: Outcome::parse(row.get("outcome")).unwrap_or(Outcome::Failed),
            http_status: u16::try_from(row.get::<i64, _>("http_status")).unwrap_or(0),
            error_code: row.get("error_code"),
            latency: Duration::from_micros(latency),
            subject: row.get("subject"),
            client_id: row.get("client_id"),
            issuer: row.get("issuer"),
            token_hash_prefix: row.get("token_hash_prefix"),
            source_addr: row.get("source_addr"),
            provider: row.get("provider"),
            cache_hit: row.get("cache_hit"),
            upstream_attempts: row
                .get::<Option<i64>, _>("upstream_attempts")
                .and_then(|a| u32::try_from(a).ok()),
            upstream_request_id: row.get("upstream_request_id"),
            query_summary: row.get("query_summary"),
        },
    }
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
