//! The audit insert path as the writer drives it: `AuditLog::append` with a batch of one (a quiet
//! server) and a full batch (the writer's default `batch_size`, a busy one), into a SQLite
//! file in a temporary directory, and into PostgreSQL when `SEARCHGATE_TEST_POSTGRES_URL` names a
//! server (in a schema of its own, dropped afterwards). This is the figure the store mechanism is
//! judged by (issue 13): a change to how the stores are built must not make it slower.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use searchgate::{
    adapters::store::{Database, PoolSettings},
    domain::{
        audit::{AuditEvent, AuditWriterConfig, BoundedEvent, Outcome},
        time::Timestamp,
    },
};
use sqlx::Connection;

/// The batch sizes the writer sends: one event when idle, `AuditWriterConfig::batch_size` when
/// busy.
fn batches() -> [usize; 2] {
    [1, AuditWriterConfig::default().batch_size]
}

/// An event with every column filled, as a tool call writes it.
fn event(n: usize) -> AuditEvent {
    let mut event = AuditEvent::action(format!("req-{n:08}"), "tools/call", Outcome::Success, 200);
    event.occurred_at = Timestamp::now();
    event.tool = Some("web_search".into());
    event.latency = Duration::from_micros(12_345);
    event.subject = Some("usr_0123456789".into());
    event.client_id = Some("cli_0123456789".into());
    event.issuer = Some("https://idp.example.com".into());
    event.token_hash_prefix = Some("0123456789abcdef".into());
    event.source_addr = Some("192.0.2.10".into());
    event.provider = Some("tavily".into());
    event.cache_hit = Some(false);
    event.upstream_attempts = Some(1);
    event.upstream_request_id = Some("7f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b".into());
    event.query_summary = Some("rust async database drivers benchmark".into());
    event
}

fn bench_database(c: &mut Criterion, runtime: &tokio::runtime::Runtime, name: &str, db: &Database) {
    let mut group = c.benchmark_group(format!("audit append ({name})"));
    for size in batches() {
        let batch: Vec<BoundedEvent> = (0..size).map(|n| event(n).into()).collect();
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("batch of {size}"), |b| {
            b.iter_batched_ref(
                || batch.clone(),
                |events| runtime.block_on(db.audit.append(events)).expect("append"),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn audit_insert(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let pool = PoolSettings::default();

    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = runtime
        .block_on(Database::connect(&url, &pool))
        .expect("the SQLite file opens");
    bench_database(c, &runtime, "sqlite", &sqlite);

    let Some(base) = std::env::var("SEARCHGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        eprintln!("PostgreSQL skipped: SEARCHGATE_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = format!("sgbench_{:016x}", fastrand::u64(..));
    let ddl = |sql: String| {
        runtime.block_on(async {
            let mut connection = sqlx::PgConnection::connect(&base)
                .await
                .expect("PostgreSQL answers");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut connection)
                .await
                .expect("schema DDL");
        })
    };
    ddl(format!("CREATE SCHEMA {schema}"));
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-csearch_path%3D{schema}");
    let postgres = runtime
        .block_on(Database::connect(&url, &pool))
        .expect("the PostgreSQL schema opens");
    bench_database(c, &runtime, "postgres", &postgres);
    drop(postgres);
    ddl(format!("DROP SCHEMA {schema} CASCADE"));
}

criterion_group! {
    name = benches;
    // Enough samples to tell a few per cent apart on a shared machine, in about a minute.
    config = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    targets = audit_insert
}
criterion_main!(benches);
