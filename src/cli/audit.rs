//! `searchgate audit query` and `searchgate audit tail`: the audit trail from the terminal,
//! read from the configured database as NDJSON, in the admin API's event shape
//! ([`AuditEventView`], so both leave out the same empty fields).

use std::{io::Write, time::Duration};

use super::{AuditAction, AuditFilters};
use crate::{
    config::{Settings, load_problem},
    domain::{
        audit::{AuditQuery, StoredEvent, UsageGroup, parse_filter_time},
        time::Timestamp,
    },
    http::AuditEventView,
    startup::{StartupError, open_database},
};

/// Prints the usage table for the window and grouping.
///
/// # Errors
/// A config error for an unreadable time or grouping; others when the database cannot be
/// read.
pub async fn usage(
    settings: &Settings,
    since: Option<&str>,
    until: Option<&str>,
    group_by: &str,
) -> Result<(), StartupError> {
    let time = |name: &str, value: Option<&str>| -> Result<Option<Timestamp>, StartupError> {
        value
            .map(|v| {
                parse_filter_time(v)
                    .ok_or_else(|| load_problem(name, v, "an RFC 3339 time or Unix seconds").into())
            })
            .transpose()
    };
    let until = time("--until", until)?.unwrap_or_else(Timestamp::now);
    let since = time("--since", since)?
        .unwrap_or_else(|| until.saturating_sub(Duration::from_secs(86_400)));
    let group = UsageGroup::from_name(group_by).ok_or_else(|| {
        load_problem(
            "--group-by",
            group_by,
            &format!("one of: {}", UsageGroup::NAMES.join(", ")),
        )
    })?;
    let store = open_database(settings).await?.audit;
    let rows = store
        .usage(since, until, group)
        .await
        .map_err(anyhow::Error::from)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<40} {:>9} {:>9} {:>12} {:>12}",
        group.as_str(),
        "calls",
        "errors",
        "credits",
        "usd"
    );
    for row in rows {
        let name: String = row
            .group
            .as_deref()
            .unwrap_or("-")
            .chars()
            .take(40)
            .collect();
        let _ = writeln!(
            out,
            "{name:<40} {:>9} {:>9} {:>12.2} {:>12.4}",
            row.calls, row.errors, row.credits, row.cost_usd
        );
    }
    Ok(())
}

/// How often `tail --follow` looks for new events.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// Runs an `audit` subcommand.
///
/// # Errors
/// A config error for unreadable filters; others when the database cannot be read.
pub async fn run(settings: &Settings, action: AuditAction) -> Result<(), StartupError> {
    let store = open_database(settings).await?.audit;
    match action {
        AuditAction::Query { filters, limit } => {
            let mut query = to_query(&filters, 1000)?;
            let mut left = limit;
            while left > 0 {
                query.limit = left.min(1000);
                let page = store.query(&query).await.map_err(anyhow::Error::from)?;
                left = left.saturating_sub(u32::try_from(page.events.len()).unwrap_or(u32::MAX));
                if !print_events(&page.events)? {
                    return Ok(());
                }
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
        }
        AuditAction::Tail {
            filters,
            lines,
            follow,
        } => {
            let mut query = to_query(&filters, 1000)?;
            // The last `lines` events: page through, keeping the tail.
            let mut last: Vec<StoredEvent> = Vec::new();
            let mut newest = None;
            loop {
                let page = store.query(&query).await.map_err(anyhow::Error::from)?;
                newest = page.events.last().map(|e| e.id).or(newest);
                last.extend(page.events);
                let keep = last.len().saturating_sub(lines as usize);
                last.drain(..keep);
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            if !print_events(&last)? {
                return Ok(());
            }
            // Follow from the newest event seen, printed or not (`-n 0` prints none).
            query.after = newest.or(query.after);
            if follow {
                loop {
                    tokio::time::sleep(FOLLOW_INTERVAL).await;
                    let page = store.query(&query).await.map_err(anyhow::Error::from)?;
                    if let Some(newest) = page.events.last() {
                        query.after = Some(newest.id);
                    }
                    if !print_events(&page.events)? {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

fn to_query(filters: &AuditFilters, limit: u32) -> Result<AuditQuery, StartupError> {
    Ok(AuditQuery {
        since: time("--since", filters.since.as_deref())?,
        until: time("--until", filters.until.as_deref())?,
        subject: filters.subject.clone(),
        client_id: filters.client_id.clone(),
        tool: filters.tool.clone(),
        outcome: filters
            .outcome
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(anyhow::Error::from)?,
        after: None,
        limit,
    })
}

fn time(flag: &str, value: Option<&str>) -> Result<Option<Timestamp>, StartupError> {
    let Some(value) = value else {
        return Ok(None);
    };
    parse_filter_time(value).map(Some).ok_or(()).map_err(|_| {
        load_problem(
            flag,
            value,
            "an RFC 3339 time such as 2026-11-26T19:00:00Z, or Unix seconds",
        )
        .into()
    })
}

/// Prints events as JSON lines; `false` when the reader has gone (a closed pipe, as after
/// `| head`), which ends the command quietly.
fn print_events(events: &[StoredEvent]) -> Result<bool, StartupError> {
    let mut out = std::io::stdout().lock();
    for stored in events {
        let line = serde_json::to_string(&AuditEventView::from(stored.clone()))
            .map_err(|e| anyhow::anyhow!("cannot write the events: {e}"))?;
        match writeln!(out, "{line}") {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(false),
            Err(e) => return Err(anyhow::anyhow!("cannot write the events: {e}").into()),
        }
    }
    match out.flush() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow::anyhow!("cannot write the events: {e}").into()),
    }
}
