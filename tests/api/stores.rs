//! The store contract, run against every database: SQLite always, PostgreSQL when
//! `SEARCHGATE_TEST_POSTGRES_URL` is set (each test in a schema of its own). The same
//! assertions on both is what lets an operator move from one file to several replicas.

use std::{
    collections::HashSet,
    time::{Duration, SystemTime},
};

use searchgate::{
    adapters::store::{Database, OpenError, PoolSettings},
    domain::{
        audit::{AuditEvent, AuditQuery, BoundedEvent, Outcome, UsageGroup},
        clients::{ClientCursor, ClientMetadata, ClientSource, RegisteredClient},
        issuer::{ClientRecord, CodeRecord, KeyRecord, RefreshRecord},
        time::Timestamp,
    },
};
use sqlx::Connection;

/// The PostgreSQL server the tests may use, from `SEARCHGATE_TEST_POSTGRES_URL`.
pub fn postgres_url() -> Option<String> {
    std::env::var("SEARCHGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A fresh, empty schema on the test PostgreSQL server (its name is random), dropped with
/// everything in it when this is dropped.
pub struct PgSchema {
    base: String,
    name: String,
    /// A URL whose connections use only this schema.
    pub url: String,
}

impl PgSchema {
    pub async fn new(base: &str) -> Self {
        let name = format!("sgtest_{:016x}", fastrand::u64(..));
        let mut connection = sqlx::PgConnection::connect(base)
            .await
            .expect("the test PostgreSQL answers");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut connection)
            .await
            .expect("create the test schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        Self {
            url: format!("{base}{separator}options=-csearch_path%3D{name}"),
            base: base.to_owned(),
            name,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside the test's runtime: clean up on a thread with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut connection = sqlx::PgConnection::connect(&base).await.ok()?;
                // Best effort: a connection of the test still in use must not hang the test.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SET lock_timeout = '3s'; DROP SCHEMA {name} CASCADE"
                )))
                .execute(&mut connection)
                .await
                .ok()
            })
        });
        let _ = cleanup.join();
    }
}

/// What holds a test database until the test ends.
#[allow(dead_code)]
enum Keep {
    Dir(tempfile::TempDir),
    Schema(PgSchema),
}

/// One database of each kind this machine offers, each empty, with its name.
async fn databases() -> Vec<(&'static str, Database, Keep)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let pool = PoolSettings::default();
    let mut all = vec![(
        "sqlite",
        Database::connect(&sqlite_url, &pool).await.unwrap(),
        Keep::Dir(dir),
    )];
    match postgres_url() {
        Some(base) => {
            let schema = PgSchema::new(&base).await;
            all.push((
                "postgres",
                Database::connect(&schema.url, &pool).await.unwrap(),
                Keep::Schema(schema),
            ));
        }
        None => eprintln!(
            "PostgreSQL store tests skipped: SEARCHGATE_TEST_POSTGRES_URL is not set \
             (.ci/run sets it when PostgreSQL answers on 127.0.0.1:5432)"
        ),
    }
    all
}

fn event(request_id: &str, age: Duration, tool: &str, subject: &str) -> AuditEvent {
    let mut event = AuditEvent::action(request_id.to_owned(), "tools/call", Outcome::Success, 200);
    event.occurred_at = Timestamp::now().saturating_sub(age);
    event.tool = Some(tool.to_owned());
    event.subject = Some(subject.to_owned());
    event
}

#[tokio::test]
async fn audit_rows_keep_every_field_and_page_exactly_once() {
    for (name, db, _dir) in databases().await {
        let mut full = event("full", Duration::from_secs(60), "web_search", "alice");
        full.outcome = Outcome::ToolError;
        full.http_status = 200;
        full.error_code = Some("upstream_unavailable".into());
        full.latency = Duration::from_micros(12_345);
        full.client_id = Some("client-1".into());
        full.issuer = Some("https://idp.example".into());
        full.token_hash_prefix = Some("abcdef012345".into());
        full.source_addr = Some("127.0.0.1".into());
        full.provider = Some("tavily".into());
        full.cache_hit = Some(false);
        full.upstream_attempts = Some(2);
        full.upstream_request_id = Some("req-42".into());
        full.fallback_from = Some("brave:upstream_unavailable".into());
        full.credits = Some(2.0);
        full.cost_usd = Some(0.005);
        full.query_summary = Some("rust sqlx – ünïcode".into());
        db.audit
            .append(&[BoundedEvent::from(full.clone())])
            .await
            .unwrap();
        let page = db
            .audit
            .query(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.events.len(), 1, "{name}");
        let stored = &page.events[0].event;
        // Times are kept to the millisecond.
        let ms = |t: Timestamp| t.unix_millis();
        assert_eq!(ms(stored.occurred_at), ms(full.occurred_at), "{name}");
        let mut expected = full.clone();
        expected.occurred_at = stored.occurred_at;
        assert_eq!(stored, &expected, "{name}");

        // 30 more rows from two subjects and two tools; pages of 7 with a filter.
        let batch: Vec<BoundedEvent> = (0..30)
            .map(|i| {
                event(
                    &format!("r{i}"),
                    Duration::from_secs(30 - i),
                    if i % 3 == 0 {
                        "web_extract"
                    } else {
                        "web_search"
                    },
                    if i % 2 == 0 { "alice" } else { "bob" },
                )
                .into()
            })
            .collect();
        db.audit.append(&batch).await.unwrap();
        let mut seen = Vec::new();
        let mut query = AuditQuery {
            subject: Some("alice".into()),
            tool: Some("web_search".into()),
            limit: 7,
            ..AuditQuery::default()
        };
        loop {
            let page = db.audit.query(&query).await.unwrap();
            seen.extend(page.events.iter().map(|e| e.event.request_id.clone()));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = std::iter::once("full".to_owned())
            .chain(
                (0..30)
                    .filter(|i| i % 2 == 0 && i % 3 != 0)
                    .map(|i| format!("r{i}")),
            )
            .collect();
        assert_eq!(
            seen, expected,
            "{name}: filtered pages, oldest first, once each"
        );

        let hour = Duration::from_secs(3600);
        let counts = db
            .audit
            .stats(
                Timestamp::now().saturating_sub(hour * 2),
                Timestamp::from(SystemTime::now() + hour),
            )
            .await
            .unwrap();
        assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), 31, "{name}");
        assert!(
            counts
                .iter()
                .any(|c| c.tool.as_deref() == Some("web_extract") && c.outcome == "success"),
            "{name}: {counts:?}"
        );
    }
}

/// Every page of `query` in turn, `limit` at a time: the request ids, in the order paged.
async fn page_through(db: &Database, mut query: AuditQuery) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let page = db.audit.query(&query).await.unwrap();
        seen.extend(page.events.iter().map(|e| e.event.request_id.clone()));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn time_windows_page_every_row_written_out_of_time_order_once() {
    for (name, db, _keep) in databases().await {
        let base = Timestamp::now().unix_millis() - 3_600_000;
        let at = |secs: i64| Timestamp::from_unix_millis(base + secs * 1000);
        // Written one by one in this order (so in id order), at these seconds after `base`:
        // the window [10, 50) has its earliest time on "d" but its smallest id on "c", and its
        // latest time on "f" but rows with larger ids after it ("h", "j").
        let rows = [
            ("a", 5, Outcome::Success),
            ("b", 50, Outcome::Success),
            ("c", 20, Outcome::Failed),
            ("d", 10, Outcome::Success),
            ("e", 90, Outcome::Success),
            ("f", 45, Outcome::Failed),
            ("g", 2, Outcome::Success),
            ("h", 30, Outcome::Success),
            ("i", 60, Outcome::Failed),
            ("j", 15, Outcome::Failed),
        ];
        for (request_id, secs, outcome) in rows {
            let mut event = AuditEvent::action(request_id.into(), "tools/list", outcome, 200);
            event.occurred_at = at(secs);
            db.audit.append(&[event.into()]).await.unwrap();
        }
        for (since, until, outcome) in [
            (10, None, None),
            (10, Some(50), None),
            (10, None, Some(Outcome::Failed)),
            (10, Some(50), Some(Outcome::Failed)),
            (0, Some(10), None),
            (46, Some(50), None),
            (91, None, None),
        ] {
            let expected: Vec<String> = rows
                .iter()
                .filter(|(_, secs, o)| {
                    *secs >= since
                        && until.is_none_or(|until| *secs < until)
                        && outcome.is_none_or(|outcome| *o == outcome)
                })
                .map(|(id, ..)| id.to_string())
                .collect();
            let seen = page_through(
                &db,
                AuditQuery {
                    since: Some(at(since)),
                    until: until.map(at),
                    outcome,
                    limit: 2,
                    ..AuditQuery::default()
                },
            )
            .await;
            assert_eq!(
                seen, expected,
                "{name}: [{since}, {until:?}) {outcome:?}: the window's rows, in id order, once"
            );
        }
    }
}

#[tokio::test]
async fn usage_adds_up_tool_calls_errors_and_cost_per_group_in_the_window() {
    let hour = Duration::from_secs(3600);
    for (name, db, _dir) in databases().await {
        let call = |id: &str, age: Duration, tool: &str, subject: &str, credits: Option<f64>| {
            let mut e = event(id, age, tool, subject);
            e.provider = Some("tavily".into());
            e.credits = credits;
            e.cost_usd = credits.map(|c| c / 100.0);
            e
        };
        let mut failed = call("f", hour, "web_search", "alice", None);
        failed.outcome = Outcome::ToolError;
        let mut not_a_tool = AuditEvent::action("x".into(), "initialize", Outcome::Success, 200);
        not_a_tool.occurred_at = Timestamp::now().saturating_sub(hour);
        db.audit
            .append(&[
                call("a1", hour, "web_search", "alice", Some(2.0)).into(),
                call("a2", hour, "web_extract", "alice", Some(1.0)).into(),
                failed.into(),
                call("b1", hour, "web_search", "bob", Some(1.0)).into(),
                call("old", hour * 48, "web_search", "bob", Some(9.0)).into(),
                not_a_tool.into(),
            ])
            .await
            .unwrap();
        let since = Timestamp::now().saturating_sub(hour * 24);
        let rows = db
            .audit
            .usage(since, Timestamp::now(), UsageGroup::Subject)
            .await
            .unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.group.as_deref(), r.calls, r.errors, r.credits))
            .collect();
        assert_eq!(
            got,
            [(Some("alice"), 3, 1, 3.0), (Some("bob"), 1, 0, 1.0)],
            "{name}: the window, tool calls only, most calls first"
        );
        assert!((rows[0].cost_usd - 0.03).abs() < 1e-9, "{name}");
        let tools = db
            .audit
            .usage(since, Timestamp::now(), UsageGroup::Tool)
            .await
            .unwrap();
        assert_eq!(tools[0].group.as_deref(), Some("web_search"), "{name}");
        assert_eq!(tools[0].calls, 3, "{name}");
    }
}

#[tokio::test]
async fn budget_counters_grant_exactly_the_limit_to_racing_replicas() {
    use searchgate::domain::budget::BudgetKey;
    for (name, db, _dir) in databases().await {
        let key = BudgetKey {
            scope: "calls:racer|app".into(),
            day: 20_000,
        };
        // 40 takes of 3 at once from a limit of 100: exactly 100 granted, never more.
        let takes =
            futures::future::join_all((0..40).map(|_| db.budgets.take(&key, 3.0, 100.0))).await;
        let granted: f64 = takes.into_iter().map(|t| t.unwrap().granted).sum();
        assert_eq!(granted, 100.0, "{name}");
        assert_eq!(
            db.budgets.take(&key, 3.0, 100.0).await.unwrap().granted,
            0.0,
            "{name}"
        );
        let next_day = BudgetKey {
            day: 20_001,
            ..key.clone()
        };
        assert_eq!(
            db.budgets
                .take(&next_day, 3.0, 100.0)
                .await
                .unwrap()
                .granted,
            3.0,
            "{name}"
        );
        db.budgets.add(&next_day, 96.0).await.unwrap();
        assert_eq!(
            db.budgets
                .take(&next_day, 3.0, 100.0)
                .await
                .unwrap()
                .granted,
            1.0,
            "{name}: what was added counts"
        );
        db.budgets.prune(20_001).await.unwrap();
        assert_eq!(
            db.budgets.take(&key, 3.0, 100.0).await.unwrap().granted,
            3.0,
            "{name}: the older day's counter is gone"
        );
        assert_eq!(
            db.budgets
                .take(&next_day, 3.0, 100.0)
                .await
                .unwrap()
                .granted,
            0.0,
            "{name}: the kept day's counter is not"
        );
    }
}

#[tokio::test]
async fn retention_removes_only_rows_older_than_the_period() {
    let day = Duration::from_secs(86_400);
    for (name, db, _dir) in databases().await {
        db.audit
            .append(&[
                event("old-1", day * 45, "web_search", "a").into(),
                event("old-2", day * 31, "web_search", "a").into(),
                event("recent-1", day * 29, "web_search", "a").into(),
                event("recent-2", Duration::from_secs(5), "web_search", "a").into(),
            ])
            .await
            .unwrap();
        let removed = db
            .audit
            .prune(Timestamp::now().saturating_sub(day * 30))
            .await
            .unwrap();
        assert_eq!(removed, 2, "{name}");
        let left = db
            .audit
            .query(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = left
            .events
            .iter()
            .map(|e| e.event.request_id.as_str())
            .collect();
        assert_eq!(ids, ["recent-1", "recent-2"], "{name}");
        db.audit.check().await.unwrap();
    }
}

fn registered(client_id: &str, created_secs: i64) -> RegisteredClient {
    RegisteredClient {
        client_id: client_id.to_owned(),
        metadata: ClientMetadata {
            client_name: Some(format!("Client {client_id}")),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            token_endpoint_auth_method: "none".into(),
        },
        client_secret: Some("never stored".into()),
        created_at: Timestamp::from_unix_seconds(created_secs),
    }
}

#[tokio::test]
async fn clients_are_recorded_once_listed_once_denied_and_touched() {
    for (name, db, _dir) in databases().await {
        let clients = &db.clients;
        for i in 0..11 {
            clients
                .record(
                    // Three per second of creation: pages must break ties on the client id.
                    &registered(&format!("c{i:02}"), 1_000 + i / 3),
                    ClientSource::Upstream,
                )
                .await
                .unwrap();
        }
        // Registered again later (a static client): one row, the first time kept.
        let mut again = registered("c03", 9_999);
        again.metadata.client_name = Some("Renamed".into());
        clients.record(&again, ClientSource::Static).await.unwrap();
        let row = clients.client("c03").await.unwrap().unwrap();
        assert_eq!(row.created_at, 1_001, "{name}");
        assert_eq!(row.client_name.as_deref(), Some("Renamed"), "{name}");
        assert_eq!(
            row.grant_types,
            ["authorization_code", "refresh_token"],
            "{name}"
        );
        assert!(clients.client("nobody").await.unwrap().is_none(), "{name}");

        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = clients.list(cursor.as_ref(), 4).await.unwrap();
            seen.extend(page.clients.iter().map(|c| c.client_id.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(ClientCursor::parse(&next).expect("a cursor")),
                None => break,
            }
        }
        let expected: Vec<String> = (0..11).map(|i| format!("c{i:02}")).collect();
        assert_eq!(seen, expected, "{name}: every client on exactly one page");

        assert!(clients.deny("c05", 5_000).await.unwrap(), "{name}");
        assert!(
            clients.deny("c05", 6_000).await.unwrap(),
            "{name}: idempotent"
        );
        assert!(!clients.deny("nobody", 5_000).await.unwrap(), "{name}");
        assert_eq!(clients.denied().await.unwrap(), ["c05"], "{name}");
        assert_eq!(
            clients.client("c05").await.unwrap().unwrap().denied_at,
            Some(5_000),
            "{name}: the first denial's time is kept"
        );

        clients
            .touch(&["c01".into(), "c02".into(), "nobody".into()], 7_000)
            .await
            .unwrap();
        clients.touch(&[], 8_000).await.unwrap();
        assert_eq!(
            clients.client("c02").await.unwrap().unwrap().last_seen_at,
            Some(7_000),
            "{name}"
        );
        assert_eq!(
            clients.client("c04").await.unwrap().unwrap().last_seen_at,
            None,
            "{name}"
        );
    }
}

#[tokio::test]
async fn client_ids_longer_than_an_index_row_are_recorded_found_denied_and_listed() {
    for (name, db, _dir) in databases().await {
        let clients = &db.clients;
        // A CIMD client's id is a URL its author chooses; random characters, so PostgreSQL
        // cannot compress it under its b-tree limit (about 2,700 bytes).
        let tail: String = (0..4_000).map(|_| fastrand::alphanumeric()).collect();
        let long = format!("https://client.example/{tail}");
        let twin = format!("{long}-twin");
        for id in [&long, &twin] {
            clients
                .record(&registered(id, 1_000), ClientSource::Upstream)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        let mut again = registered(&long, 2_000);
        again.metadata.client_name = Some("Renamed".into());
        clients
            .record(&again, ClientSource::Upstream)
            .await
            .unwrap();
        let row = clients.client(&long).await.unwrap().expect("found");
        assert_eq!(row.client_id, long, "{name}: kept whole");
        assert_eq!(
            row.client_name.as_deref(),
            Some("Renamed"),
            "{name}: one row"
        );
        assert!(clients.deny(&long, 5_000).await.unwrap(), "{name}");
        assert_eq!(clients.denied().await.unwrap(), [long.as_str()], "{name}");
        clients
            .touch(std::slice::from_ref(&twin), 6_000)
            .await
            .unwrap();
        let page = clients.list(None, 10).await.unwrap();
        let listed: Vec<_> = page.clients.iter().map(|c| c.client_id.clone()).collect();
        assert_eq!(listed, [long.clone(), twin.clone()], "{name}");
        assert_eq!(page.clients[1].last_seen_at, Some(6_000), "{name}");
    }
}

fn key(kid: &str, created_at: i64) -> KeyRecord {
    KeyRecord {
        kid: kid.to_owned(),
        private_pem: format!("-----BEGIN PRIVATE KEY-----\n{kid}\n-----END PRIVATE KEY-----"),
        created_at,
        rotated_at: None,
        tokens_expire_at: created_at,
        retired_at: None,
    }
}

#[tokio::test]
async fn signing_keys_rotate_extend_and_retire() {
    for (name, db, _dir) in databases().await {
        let issuer = &db.issuer;
        issuer.add_signing_key(&key("k1", 100)).await.unwrap();
        issuer.add_signing_key(&key("k2", 200)).await.unwrap();
        let keys = issuer.keys().await.unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["k1", "k2"], "{name}: oldest first");
        assert_eq!(
            keys[0].rotated_at,
            Some(200),
            "{name}: the older key is rotated out"
        );
        assert!(keys[1].is_signing(), "{name}");
        assert!(keys[0].private_pem.contains("k1"), "{name}");

        assert!(issuer.extend_key("k2", 5_000).await.unwrap(), "{name}");
        assert!(issuer.extend_key("k2", 4_000).await.unwrap(), "{name}");
        let k2 = issuer.keys().await.unwrap().pop().unwrap();
        assert_eq!(k2.tokens_expire_at, 5_000, "{name}: only ever extended");

        assert!(issuer.retire_key("k1", 300).await.unwrap(), "{name}");
        assert!(
            !issuer.retire_key("k1", 400).await.unwrap(),
            "{name}: retired once"
        );
        assert!(
            !issuer.extend_key("k1", 9_000).await.unwrap(),
            "{name}: retired keys sign nothing"
        );
        assert!(!issuer.retire_key("nope", 300).await.unwrap(), "{name}");
        let k1 = issuer.keys().await.unwrap().remove(0);
        assert_eq!(
            (k1.retired_at, k1.rotated_at),
            (Some(300), Some(200)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn key_makers_racing_leave_one_signing_key() {
    for (name, db, _dir) in databases().await {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let issuer = db.issuer.clone();
                tokio::spawn(
                    async move { issuer.add_signing_key(&key(&format!("k{i}"), 100)).await },
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let keys = db.issuer.keys().await.unwrap();
        assert_eq!(keys.len(), 8, "{name}");
        assert_eq!(
            keys.iter().filter(|k| k.is_signing()).count(),
            1,
            "{name}: {keys:?}"
        );
    }
}

#[tokio::test]
async fn servers_starting_together_on_an_empty_store_make_one_first_key() {
    for (name, db, _dir) in databases().await {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let issuer = db.issuer.clone();
                tokio::spawn(async move {
                    issuer
                        .add_first_signing_key(&key(&format!("k{i}"), 100))
                        .await
                })
            })
            .collect();
        let mut added = 0;
        for task in tasks {
            added += usize::from(task.await.unwrap().unwrap());
        }
        assert_eq!(added, 1, "{name}");
        assert_eq!(
            db.issuer.keys().await.unwrap().len(),
            1,
            "{name}: one key in all"
        );
    }
}

#[tokio::test]
async fn text_with_nul_characters_is_stored_not_refused() {
    for (name, db, _dir) in databases().await {
        // Request bodies reach audit rows; PostgreSQL refuses NUL in text, SQLite keeps it.
        let mut nul = event(
            "nul\0id",
            Duration::from_secs(1),
            "web\0search",
            "sub\0ject",
        );
        nul.query_summary = Some("a\0b".into());
        db.audit
            .append(&[nul.into()])
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let page = db
            .audit
            .query(&AuditQuery {
                limit: 5,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let stored = &page.events[0].event;
        assert_eq!(
            stored.query_summary.as_deref(),
            Some("a\u{FFFD}b"),
            "{name}"
        );
        assert_eq!(stored.tool.as_deref(), Some("web\u{FFFD}search"), "{name}");
        let mut client = registered("odd\0client", 1);
        client.metadata.client_name = Some("nul\0name".into());
        db.clients
            .record(&client, ClientSource::Upstream)
            .await
            .unwrap();
        let row = db
            .clients
            .client("odd\0client")
            .await
            .unwrap()
            .expect("found");
        assert_eq!(
            row.client_name.as_deref(),
            Some("nul\u{FFFD}name"),
            "{name}"
        );
        assert_eq!(db.issuer.client("x\0y").await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn a_batch_larger_than_one_statement_lands_whole() {
    for (name, db, _dir) in databases().await {
        // 4,000 events: once more than either database binds in one statement (18 values
        // each); now they travel as one JSON value, in one statement of fixed text.
        let batch: Vec<BoundedEvent> = (0..4_000)
            .map(|i| event(&format!("b{i}"), Duration::from_secs(1), "web_search", "s").into())
            .collect();
        db.audit
            .append(&batch)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut count = 0;
        let mut query = AuditQuery {
            limit: 1_000,
            ..AuditQuery::default()
        };
        loop {
            let page = db.audit.query(&query).await.unwrap();
            count += page.events.len();
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        assert_eq!(count, 4_000, "{name}");
    }
}

fn code(hash: &str, expires_at: i64) -> CodeRecord {
    CodeRecord {
        code_hash: hash.to_owned(),
        client_id: "client".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        code_challenge: "challenge".into(),
        scope: "web-search:read".into(),
        resource: "http://127.0.0.1/web-search/mcp".into(),
        subject: "dev-user".into(),
        expires_at,
    }
}

fn refresh(hash: &str, family: &str) -> RefreshRecord {
    RefreshRecord {
        token_hash: hash.to_owned(),
        family: family.to_owned(),
        client_id: "client".into(),
        subject: "dev-user".into(),
        scope: "web-search:read".into(),
        resource: "http://127.0.0.1/web-search/mcp".into(),
        expires_at: i64::MAX / 2,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn issuer_clients_and_codes_are_single_use_even_when_raced() {
    for (name, db, _dir) in databases().await {
        let issuer = &db.issuer;
        let client = ClientRecord {
            client_id: "client".into(),
            client_name: Some("Test".into()),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into()],
            token_endpoint_auth_method: "client_secret_basic".into(),
            secret_hash: Some("ab".repeat(32)),
            created_at: 42,
        };
        issuer.add_client(&client).await.unwrap();
        assert_eq!(
            issuer.client("client").await.unwrap(),
            Some(client.clone()),
            "{name}"
        );
        assert!(
            issuer.add_client(&client).await.is_err(),
            "{name}: ids are unique"
        );
        assert_eq!(issuer.client("other").await.unwrap(), None, "{name}");

        issuer.add_code(&code("code-1", now() + 60)).await.unwrap();
        let found = issuer.find_code("code-1").await.unwrap().unwrap();
        assert_eq!(
            (found.record.clone(), found.spent),
            (code("code-1", found.record.expires_at), false),
            "{name}"
        );
        assert!(
            issuer.find_code("code-2").await.unwrap().is_none(),
            "{name}"
        );

        // Ten exchanges of one code at once: one wins, and only its refresh token is stored.
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let issuer = issuer.clone();
                tokio::spawn(async move {
                    let token = refresh(&format!("rt-{i}"), "family-1");
                    issuer
                        .consume_code("code-1", Some(&token))
                        .await
                        .map(|won| (i, won))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (i, won) = task.await.unwrap().unwrap();
            if won {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "{name}: exactly one exchange wins");
        assert!(
            issuer.find_code("code-1").await.unwrap().unwrap().spent,
            "{name}"
        );
        let stored: HashSet<bool> = refresh_tokens_present(issuer.as_ref(), 10).await;
        assert_eq!(stored, HashSet::from([true, false]), "{name}");
        let winner = format!("rt-{}", winners[0]);
        assert!(
            issuer.find_refresh(&winner).await.unwrap().is_some(),
            "{name}"
        );

        // Expired codes are pruned a day after expiry, when the next code is stored.
        issuer
            .add_code(&code("stale", now() - 2 * 86_400))
            .await
            .unwrap();
        issuer.add_code(&code("code-3", now() + 60)).await.unwrap();
        assert!(issuer.find_code("stale").await.unwrap().is_none(), "{name}");
    }
}

#[tokio::test]
async fn consent_tickets_are_spent_once_even_when_raced_and_pruned_after_expiry() {
    for (name, db, _keep) in databases().await {
        let issuer = &db.issuer;
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let issuer = issuer.clone();
                tokio::spawn(async move { issuer.spend_ticket("ticket-1", now() + 600).await })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "{name}: one decision per ticket");
        assert!(
            issuer.spend_ticket("ticket-2", now() + 600).await.unwrap(),
            "{name}: another ticket is not affected"
        );
        // A ticket long expired is pruned when the next one is spent; its id may come round
        // again without being refused (it could no longer be verified anyway).
        assert!(issuer.spend_ticket("stale", now() - 3_600).await.unwrap());
        assert!(issuer.spend_ticket("ticket-3", now() + 600).await.unwrap());
        assert!(
            issuer.spend_ticket("stale", now() - 3_600).await.unwrap(),
            "{name}: expired ids are pruned"
        );
        assert!(
            !issuer.spend_ticket("ticket-1", now() + 600).await.unwrap(),
            "{name}: live ids are kept"
        );
    }
}

/// Which of `rt-0` … `rt-{n-1}` exist (true) or not (false).
async fn refresh_tokens_present(
    issuer: &dyn searchgate::domain::issuer::IssuerStore,
    n: usize,
) -> HashSet<bool> {
    let mut found = HashSet::new();
    for i in 0..n {
        found.insert(
            issuer
                .find_refresh(&format!("rt-{i}"))
                .await
                .unwrap()
                .is_some(),
        );
    }
    found
}

#[tokio::test]
async fn refresh_tokens_rotate_once_and_families_revoke() {
    for (name, db, _dir) in databases().await {
        let issuer = db.issuer.clone();
        issuer.add_code(&code("c", now() + 60)).await.unwrap();
        assert!(
            issuer
                .consume_code("c", Some(&refresh("r0", "f")))
                .await
                .unwrap()
        );
        assert!(
            !issuer.consume_code("c", None).await.unwrap(),
            "{name}: a code is spent once"
        );

        let tasks: Vec<_> = (1..=6)
            .map(|i| {
                let issuer = issuer.clone();
                tokio::spawn(async move {
                    issuer
                        .rotate_refresh("r0", &refresh(&format!("r{i}"), "f"))
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await.unwrap().unwrap());
        }
        assert_eq!(wins, 1, "{name}: one rotation wins");
        let r0 = issuer.find_refresh("r0").await.unwrap().unwrap();
        assert!(r0.spent, "{name}");
        assert_eq!(r0.record, refresh("r0", "f"), "{name}");

        let live: Vec<String> = {
            let mut live = Vec::new();
            for i in 1..=6 {
                if let Some(found) = issuer.find_refresh(&format!("r{i}")).await.unwrap() {
                    assert!(!found.spent, "{name}");
                    live.push(found.record.token_hash);
                }
            }
            live
        };
        assert_eq!(live.len(), 1, "{name}");
        issuer.revoke_family("f").await.unwrap();
        assert!(
            issuer.find_refresh(&live[0]).await.unwrap().unwrap().spent,
            "{name}"
        );
        assert!(
            !issuer
                .rotate_refresh(&live[0], &refresh("r9", "f"))
                .await
                .unwrap(),
            "{name}: a revoked token does not rotate"
        );
    }
}

#[tokio::test]
async fn a_revocation_racing_a_rotation_leaves_no_live_token() {
    for (name, db, _dir) in databases().await {
        let issuer = db.issuer.clone();
        for round in 0..25 {
            let family = format!("fam-{round}");
            let code_hash = format!("code-{round}");
            issuer
                .add_code(&code(&code_hash, now() + 60))
                .await
                .unwrap();
            let first = refresh(&format!("{family}-0"), &family);
            assert!(issuer.consume_code(&code_hash, Some(&first)).await.unwrap());
            let rotation = {
                let issuer = issuer.clone();
                let next = refresh(&format!("{family}-1"), &family);
                let old = first.token_hash.clone();
                tokio::spawn(async move { issuer.rotate_refresh(&old, &next).await })
            };
            let revocation = {
                let issuer = issuer.clone();
                let family = family.clone();
                tokio::spawn(async move { issuer.revoke_family(&family).await })
            };
            rotation.await.unwrap().unwrap();
            revocation.await.unwrap().unwrap();
            for token in [format!("{family}-0"), format!("{family}-1")] {
                if let Some(found) = issuer.find_refresh(&token).await.unwrap() {
                    assert!(
                        found.spent,
                        "{name}: {token} outlived its family's revocation"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}", dir.path().join("new.db").display())];
    let schema = match postgres_url() {
        Some(base) => Some(PgSchema::new(&base).await),
        None => None,
    };
    urls.extend(schema.iter().map(|s| s.url.clone()));
    for url in urls {
        let pool = PoolSettings::default();
        let db = Database::connect(&url, &pool).await.unwrap();
        drop(db);
        // What a later searchgate would leave behind: a migration this binary never heard of.
        let insert = "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                      execution_time) VALUES (29991231000001, 'from the future', TRUE, \
                      X'00', 1)";
        if url.starts_with("sqlite") {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(insert).execute(&mut conn).await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(
                insert.replace("X'00'", "'\\x00'::bytea"),
            ))
            .execute(&mut conn)
            .await
            .unwrap();
        }
        let error = Database::connect(&url, &pool).await.unwrap_err();
        assert!(
            matches!(
                error,
                OpenError::SchemaTooNew {
                    version: 29991231000001,
                    ..
                }
            ),
            "{url}: {error}"
        );
        let message = error.to_string();
        assert!(message.contains("newer searchgate"), "{message}");
    }
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    // Nothing listens on port 1; the pool gives up after the acquire timeout.
    let pool = PoolSettings {
        acquire_timeout: Duration::from_secs(2),
        ..PoolSettings::default()
    };
    let error = Database::connect(
        "postgres://searchgate:hunter2@127.0.0.1:1/searchgate",
        &pool,
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, OpenError::Unreachable { .. }), "{message}");
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    let error = Database::connect("mysql://root:hunter2@localhost/db", &pool)
        .await
        .unwrap_err();
    assert!(matches!(error, OpenError::UnsupportedScheme(_)), "{error}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[tokio::test]
async fn the_database_reports_itself_writable() {
    for (name, db, _dir) in databases().await {
        db.audit
            .check()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
