#!/usr/bin/env bash
# The audit query bench of issue 15: the admin API's filtered audit query (`GET /api/v1/audit`)
# with many rows in `audit_events`, on SQLite and, with --postgres, on PostgreSQL. Prints one
# table per database: each typical query's req/s, p50 and p99 (oha), whether its p99 is under
# 50 ms, and the plan the database chooses for it.
#
#   bench/audit_query.sh [--rows 1000000] [--duration 5s] [--connections 4]
#                        [--postgres URL]   (REPLACES the audit rows of that database)
#
# searchgate's release binary runs on its embedded defaults in a throw-away folder, once to
# migrate its database; the script then fills `audit_events` with N rows directly in SQL
# (30 days of traffic: ~1,000 subjects, 50 client ids, 4 tools and none, mostly successes),
# runs ANALYZE, starts searchgate again on that database with an admin token from
# `searchgate token`, and measures each query with oha for --duration over --connections
# keep-alive connections, each request taking one of several filter values from a list.
# Retention is off (`SEARCHGATE_AUDIT__RETENTION_DAYS=0`) so the rows stay as filled.
# The SQLite file is kept as bench/results/audit_query/sqlite-N.db, and a database already
# holding the N filled rows (SQLite file or PostgreSQL) is reused: only the rows a previous
# run added are deleted. Results (oha's JSON, the plans, the tables) are kept under
# bench/results/audit_query-<time>/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

rows=1000000
duration=5s
connections=4
postgres=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --postgres) postgres=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$rows" =~ ^[1-9][0-9]*$ ]] || { echo "--rows must be a positive number" >&2; exit 2; }

for tool in sqlite3 curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is missing" >&2; exit 1; }
done
if [ -n "$postgres" ] && ! command -v psql >/dev/null 2>&1; then
  echo "psql is missing" >&2
  exit 1
fi

# oha from crates.io when missing.
source bench/oha.sh

# The fill names every column the server writes; a changed list must be changed here too.
columns="occurred_at_ms, request_id, method, tool, outcome, http_status, error_code, latency_us, \
subject, client_id, issuer, token_hash_prefix, source_addr, provider, cache_hit, \
upstream_attempts, upstream_request_id, query_summary"
server_columns=$(sed -n '/^\(pub \)\{0,1\}const EVENT_COLUMNS/,/;$/p' src/adapters/store/sql.rs \
  | sed 's/^\(pub \)\{0,1\}const EVENT_COLUMNS: &str = //; s/[\\";]//g' | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
if [ "$server_columns" != "$(echo "$columns" | tr -s ' ' ' ')" ]; then
  echo "audit_events' columns changed (src/adapters/store/sql.rs EVENT_COLUMNS):" >&2
  echo "  server: $server_columns" >&2
  echo "  fill:   $columns" >&2
  exit 1
fi

echo "building the release binary…"
cargo build --release --quiet --bin searchgate

work=$(mktemp -d)
results="$root/bench/results/audit_query-$(date -u +%Y%m%dT%H%M%SZ)"
kept="$root/bench/results/audit_query"
mkdir -p "$results" "$kept"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# serve NAME DATABASE_URL: searchgate on its embedded defaults in $work/NAME, until `stop`.
serve() {
  local name=$1
  port=$(free_port)
  settings=(PORT="$port" SEARCHGATE_TELEMETRY__LEVEL=warn SEARCHGATE_DATABASE__URL="$2"
    SEARCHGATE_AUDIT__RETENTION_DAYS=0)
  folder="$work/$name"
  mkdir -p "$folder"
  (cd "$folder" && exec env -i PATH="$PATH" HOME="$folder" "${settings[@]}" \
    "$root/target/release/searchgate" serve >>"$folder/server.log" 2>&1) &
  server=$!
  # Migrations (an index built over millions of rows) run before it answers.
  for _ in $(seq 1 6000); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  echo "searchgate did not start:" >&2
  cat "$folder/server.log" >&2
  exit 1
}
stop() {
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
}

# The rows, in SQL both databases run: 30 days up to the fill's start, in id order. Each
# property is drawn from i by its own multiplier modulo 2^31 - 1 (deterministic, so every
# reference to it agrees, and the same on both databases).
# Uses $hex (HEX(value, digits)), $gen (the FROM clause giving i) and $overriding.
fill_select() {
  local end_ms=$1 span_ms=$((30 * 86400 * 1000))
  cat <<SQL
INSERT INTO audit_events (id, $columns) $overriding
SELECT i,
  at_ms,
  $(hex "at_ms / 65536 % 4294967296" 8) || '-' || $(hex "at_ms % 65536" 4) || '-7'
    || $(hex "e % 4096" 3) || '-' || $(hex "32768 + e / 4096 % 16384" 4) || '-' || $(hex i 12),
  CASE WHEN tk < 85 THEN 'tools/call' WHEN tk < 93 THEN 'tools/list' WHEN tk < 98 THEN 'initialize'
    ELSE 'oauth/register' END,
  tool,
  outcome,
  CASE outcome WHEN 'rejected' THEN 429 WHEN 'unauthenticated' THEN 401 WHEN 'forbidden' THEN 403
    WHEN 'failed' THEN 503 ELSE 200 END,
  CASE outcome WHEN 'tool_error' THEN (CASE WHEN c % 2 = 0 THEN 'upstream_timeout' ELSE 'upstream_error' END)
    WHEN 'rejected' THEN 'rate_limited' WHEN 'unauthenticated' THEN 'invalid_token'
    WHEN 'forbidden' THEN 'insufficient_scope' WHEN 'failed' THEN 'audit_unavailable' END,
  CASE WHEN tool IS NOT NULL AND outcome IN ('success', 'tool_error') THEN 80000 + c % 1900000
    ELSE 150 + c % 4000 END,
  CASE WHEN outcome <> 'unauthenticated' THEN 'usr_' || (100200300 + sk * 7919) END,
  CASE WHEN outcome <> 'unauthenticated' THEN 'skc_' || (48113900000000 + ck * 104729) END,
  CASE WHEN outcome <> 'unauthenticated' THEN 'https://auth.example.com' END,
  CASE WHEN outcome <> 'unauthenticated' THEN $(hex "(sk * 1000 + d % 3) * 2654435761 % 4294967296" 8)
    || $(hex "(sk + 7) * 40503 % 65536" 4) END,
  '10.' || (d % 256) || '.' || (d / 256 % 256) || '.' || (d / 65536 % 256),
  CASE WHEN served THEN 'tavily' END,
  CASE WHEN served THEN (d % 5 = 0) END,
  CASE WHEN served AND d % 5 <> 0 THEN 1 + (CASE WHEN d % 20 = 1 THEN 1 ELSE 0 END) END,
  CASE WHEN served AND d % 5 <> 0 THEN 'req_' || $(hex "e" 8) || $(hex "d" 8) END,
  CASE tool
    WHEN 'web_search' THEN (CASE b / 100 % 8
      WHEN 0 THEN 'rust async runtimes' WHEN 1 THEN 'tokio vs async-std benchmark 2026'
      WHEN 2 THEN 'how to rotate oauth signing keys without downtime'
      WHEN 3 THEN 'postgres keyset pagination composite index'
      WHEN 4 THEN 'best practices for model context protocol servers behind a reverse proxy'
      WHEN 5 THEN 'weather berlin' WHEN 6 THEN 'sqlite wal checkpoint starvation'
      ELSE 'latest news on open source licensing changes in developer tooling companies' END)
      || ' ' || (e % 1000)
    WHEN 'web_map' THEN 'https://docs.example' || (b % 40) || '.com/'
    WHEN 'web_extract' THEN 'https://www.example' || (b % 400) || '.org/articles/'
      || (e % 100000) || '/a-reasonably-long-article-slug-' || (d % 1000)
    WHEN 'web_crawl' THEN 'https://blog.example' || (b % 400) || '.net/' || (e % 1000) || '/'
  END
FROM (
  SELECT i, at_ms, b, c, d, e, sk,
    (sk * 7 + (CASE WHEN d % 10 = 0 THEN 1 ELSE 0 END)) % 50 AS ck,
    tk, tool, outcome,
    (tool IS NOT NULL AND outcome IN ('success', 'tool_error')) AS served
  FROM (
    SELECT i, at_ms, b, c, d, e, sk, tk,
      CASE WHEN tk < 60 THEN 'web_search' WHEN tk < 75 THEN 'web_extract' WHEN tk < 80 THEN 'web_crawl'
        WHEN tk < 85 THEN 'web_map' END AS tool,
      CASE WHEN c % 1000 < 940 THEN 'success'
        WHEN c % 1000 < 970 THEN (CASE WHEN tk < 85 THEN 'tool_error' ELSE 'success' END)
        WHEN c % 1000 < 980 THEN 'rejected' WHEN c % 1000 < 990 THEN 'unauthenticated'
        WHEN c % 1000 < 995 THEN 'forbidden' ELSE 'failed' END AS outcome
    FROM (
      SELECT i,
        $end_ms - $span_ms + (i - 1) * $span_ms / $rows AS at_ms,
        i * 742938285 % 2147483647 % 1000 AS sk,
        i * 950706376 % 2147483647 AS b,
        i * 950706376 % 2147483647 % 100 AS tk,
        i * 1226874159 % 2147483647 AS c,
        i * 1343714438 % 2147483647 AS d,
        i * 630360016 % 2147483647 AS e
      FROM $gen
    ) AS drawn
  ) AS named
) AS decided;
SQL
}

# SQLite: the file kept for N rows, migrated by searchgate, filled unless it already was.
sqlite_db="$kept/sqlite-$rows.db"
sqlite_url="sqlite://$sqlite_db"
sq() { sqlite3 -batch -bail "$sqlite_db" "$@"; }
pg() { psql -X -q -At -v ON_ERROR_STOP=1 "$postgres" "$@"; }

# filled RUN: whether the table holds the N rows of a fill (ids 1..N, the last one ending in N,
# and no fill row after it); RUN runs one query and prints its single value.
filled() {
  local run=$1 last
  last=$($run "SELECT request_id FROM audit_events WHERE id = $rows")
  [ -n "$last" ] && [ "${last##*-}" = "$(printf '%012x' "$rows")" ] || return 1
  [ "$($run "SELECT count(*) FROM audit_events WHERE id <= $rows")" = "$rows" ] || return 1
  [ -z "$($run "SELECT request_id FROM audit_events WHERE id = $((rows + 1)) AND request_id LIKE '%-$(printf '%012x' $((rows + 1)))'")" ]
}

fill_sqlite() {
  local end_ms=$1
  hex() { echo "printf('%0$2x', $1)"; }
  gen="(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows) SELECT i FROM n) AS n"
  overriding=""
  # The indexes go while the rows go in, and come back as the migrations made them.
  local indexes drops
  indexes=$(sq "SELECT sql || ';' FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' AND sql IS NOT NULL")
  drops=$(sq "SELECT 'DROP INDEX ' || name || ';' FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' AND sql IS NOT NULL")
  {
    echo "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;"
    echo "BEGIN; DELETE FROM audit_events; $drops"
    fill_select "$end_ms"
    echo "$indexes"
    echo "COMMIT; PRAGMA journal_mode = WAL;"
  } | sq >/dev/null
}

fill_postgres() {
  local end_ms=$1
  hex() { echo "lpad(to_hex(($1)::bigint), $2, '0')"; }
  gen="generate_series(1, $rows::bigint) AS i"
  overriding="OVERRIDING SYSTEM VALUE"
  local indexes drops
  indexes=$(pg -c "SELECT indexdef || ';' FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'audit_events' AND indexname <> 'audit_events_pkey'")
  drops=$(pg -c "SELECT 'DROP INDEX ' || indexname || ';' FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'audit_events' AND indexname <> 'audit_events_pkey'")
  {
    echo "SET synchronous_commit = off; SET maintenance_work_mem = '512MB';"
    echo "BEGIN; TRUNCATE audit_events; $drops"
    fill_select "$end_ms"
    echo "$indexes"
    echo "SELECT setval(pg_get_serial_sequence('audit_events', 'id'), $rows);"
    echo "COMMIT;"
  } | pg >/dev/null
}

# prepare NAME URL RUN FILL: the database migrated and holding the N rows, analysed.
prepare() {
  local name=$1 url=$2 run=$3 fill=$4 started
  serve "$name-migrate" "$url"
  stop
  if filled "$run"; then
    echo "$name: reusing the $rows rows already filled; deleting the rows a previous run added"
    $run "DELETE FROM audit_events WHERE id > $rows" >/dev/null
  else
    echo "$name: filling $rows rows…"
    started=$(date +%s)
    $fill "$(($(date +%s) * 1000))"
    echo "$name: filled in $(($(date +%s) - started)) s"
  fi
  case "$name" in
    sqlite) sq "ANALYZE" ;;
    postgres) pg -c "VACUUM ANALYZE audit_events" ;;
  esac
}

# measure NAME URL RUN EXPLAIN: the queries against searchgate on that database.
measure() {
  local name=$1 url=$2 run=$3 explain=$4
  local out="$results/$name"
  mkdir -p "$out"
  local first_ms last_ms
  first_ms=$($run "SELECT occurred_at_ms FROM audit_events WHERE id = 1")
  last_ms=$($run "SELECT occurred_at_ms FROM audit_events WHERE id = $rows")
  serve "$name" "$url"
  local token
  token=$(cd "$folder" && env -i PATH="$PATH" HOME="$folder" "${settings[@]}" \
    "$root/target/release/searchgate" token --scope searchgate:admin --ttl 24h --client bench-audit-query)
  local base="http://127.0.0.1:$port/api/v1/audit"
  local auth=(-H "Authorization: Bearer $token")

  # The queries: one file of URLs each (oha picks among them), and the SQL searchgate runs for
  # the first, for the plan. The deep keyset page takes the cursor the API returns for a
  # client's page halfway through the 30 days.
  python3 - "$out" "$base" "$first_ms" "$last_ms" <<'PY'
import json, sys
out, base, first_ms, last_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
day = 86400
first, last = first_ms // 1000, last_ms // 1000
subject = lambda k: f"usr_{100200300 + k * 7919}"
client = lambda k: f"skc_{48113900000000 + k * 104729}"
queries = {
    "first-page": [{}],
    "newest-hour": [{"since": last - 3600}],
    "last-week": [{"since": last - 7 * day}],
    "subject": [{"subject": subject(k)} for k in range(3, 1000, 50)],
    "client-day": [{"client_id": client(k), "since": first + d * day, "until": first + (d + 1) * day}
                   for k, d in zip(range(1, 50, 5), range(2, 30, 3))],
    "tool-outcome": [{"tool": t, "outcome": o}
                     for t in ("web_search", "web_extract", "web_crawl", "web_map")
                     for o in ("success", "tool_error", "failed")],
    "cursor-source": [{"client_id": client(k), "since": (first + last) // 2, "limit": 1}
                      for k in range(2, 50, 5)],
}
json.dump(queries, open(f"{out}/queries.json", "w"))
PY
  # The deep keyset pages: each client's page after the cursor its halfway page answered.
  python3 -c 'import json,sys,urllib.parse as u
for q in json.load(open(sys.argv[1]))["cursor-source"]: print(u.urlencode(q))' "$out/queries.json" \
    | while read -r query; do
      curl -fsS "${auth[@]}" "$base?$query" \
        | python3 -c 'import json,sys,urllib.parse as u
q = dict(u.parse_qsl(sys.argv[1])); d = json.load(sys.stdin)
print(json.dumps({"client_id": q["client_id"], "cursor": d["next_cursor"]}))' "$query"
    done >"$out/deep.jsonl"
  python3 - "$out" "$base" "$name" <<'PY'
import json, sys, urllib.parse
out, base, name = sys.argv[1], sys.argv[2], sys.argv[3]
hint = "INDEXED BY audit_events_occurred_at" if name == "sqlite" else ""
queries = json.load(open(f"{out}/queries.json"))
del queries["cursor-source"]
queries["deep-cursor"] = [json.loads(l) for l in open(f"{out}/deep.jsonl")]
json.dump(queries, open(f"{out}/queries.json", "w"))
for query, sets in queries.items():
    with open(f"{out}/{query}.urls", "w") as f:
        for params in sets:
            f.write(f"{base}?{urllib.parse.urlencode(params)}\n" if params else f"{base}\n")
    # What sql::select_events builds for the first set (default limit 100, one more asked):
    # with the values inlined, and as a statement prepared with parameters (PostgreSQL plans
    # a prepared statement for its parameters' values at first, and may switch to one plan
    # for any values, the generic plan, after its fifth run on a connection).
    p = sets[0]
    terms = []
    if "cursor" in p: terms.append(("id >", "bigint", int(p["cursor"])))
    if "since" in p: terms.append(("occurred_at_ms >=", "bigint", int(p["since"]) * 1000))
    if "until" in p: terms.append(("occurred_at_ms <", "bigint", int(p["until"]) * 1000))
    # A time window without an indexed filter: the page's ids between the window's first and
    # last (sql::window_ids), each read from the time index.
    if "since" in p and not any(c in p for c in ("subject", "client_id", "tool")):
        window = [("occurred_at_ms >=", "bigint", int(p["since"]) * 1000)]
        if "until" in p: window.append(("occurred_at_ms <", "bigint", int(p["until"]) * 1000))
        for compare, aggregate in [(">=", "MIN"), ("<=", "MAX")][:len(window)]:
            terms.append((f"id {compare} (SELECT {aggregate}(id + 0) FROM audit_events {hint} WHERE", None, None))
            terms.extend(window[:1])
            terms.extend((f"AND {t[0]}", t[1], t[2]) for t in window[1:])
            terms.append((")", None, None))
    for column in ("subject", "client_id", "tool", "outcome"):
        if column in p: terms.append((f"{column} =", "text", f"'{p[column]}'"))
    terms.append(("LIMIT", "bigint", 101))
    # Terms without a type are text only (a subquery's opening and closing); the others bind
    # one value each. A term starting with AND or ")" continues the subquery before it.
    def sql(values):
        text, values = "", iter(values)
        for t in terms[:-1]:
            joiner = " " if t[0].startswith(("AND ", ")")) or text.endswith("WHERE") else " AND "
            text += joiner + t[0] + ("" if t[1] is None else f" {next(values)}")
        return (f"SELECT * FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE 1 = 1{text}"
                f" ORDER BY id LIMIT {next(values)}) ORDER BY id")
    bound = [t for t in terms if t[1] is not None]
    with open(f"{out}/{query}.sql", "w") as f:
        f.write(sql([t[2] for t in bound]))
    with open(f"{out}/{query}.generic.sql", "w") as f:
        f.write("SET plan_cache_mode = force_generic_plan;\n"
                f"PREPARE q({', '.join(t[1] for t in bound)}) AS "
                + sql([f"${i + 1}" for i in range(len(bound))]) + ";\n"
                f"EXPLAIN (COSTS OFF) EXECUTE q({', '.join(str(t[2]) for t in bound)});\n")
PY

  local names=(first-page newest-hour last-week subject client-day tool-outcome deep-cursor)
  : >"$out/summary.tsv"
  for query in "${names[@]}"; do
    # Every URL once: each must answer 200 (and warms the caches); the first page's size.
    local events=""
    while read -r target; do
      body=$(curl -fsS "${auth[@]}" "$target") || { echo "$name $query: $target failed" >&2; exit 1; }
      [ -n "$events" ] || events=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["events"]))' <<<"$body")
    done <"$out/$query.urls"
    $explain "$out/$query" >"$out/$query.plan"
    local count
    count=$($run "SELECT count(*) FROM audit_events")
    oha --no-tui --output-format json --wait-ongoing-requests-after-deadline -z "$duration" \
      -c "$connections" "${auth[@]}" --urls-from-file "$out/$query.urls" >"$out/$query.json"
    printf '%s\t%s\t%s\t%s\n' "$query" "$count" "$events" "$(wc -l <"$out/$query.urls")" >>"$out/summary.tsv"
  done
  stop

  python3 - "$out" "$name" "$duration" "$connections" <<'PY' | tee "$out/table.md"
import json, sys
out, name, duration, connections = sys.argv[1:]
labels = {
    "first-page": "first page, no filter",
    "newest-hour": "newest hour (since only)",
    "last-week": "last 7 days (since only)",
    "subject": "by subject",
    "client-day": "by client_id, 1-day window",
    "tool-outcome": "by tool + outcome",
    "deep-cursor": "by client_id, keyset page halfway",
}
print(f"{name}: {duration} per query, {connections} connections, oha on the same machine")
print()
print("| query | rows in table | values | page | req/s | p50 ms | p99 ms | p99 < 50 ms | errors | plan |")
print("|---|---|---|---|---|---|---|---|---|---|")
for line in open(f"{out}/summary.tsv").read().splitlines():
    query, count, events, values = line.split("\t")
    data = json.load(open(f"{out}/{query}.json"))
    codes = {int(c): n for c, n in data.get("statusCodeDistribution", {}).items()}
    ok = sum(n for c, n in codes.items() if 200 <= c < 300)
    errors = sum(n for c, n in codes.items() if not 200 <= c < 300) + sum(data.get("errorDistribution", {}).values())
    pct = data["latencyPercentiles"]
    p50, p99 = (pct.get("p50") or 0) * 1000, (pct.get("p99") or 0) * 1000
    rps = ok / data["summary"]["total"] if data["summary"]["total"] else 0.0
    plan = "; ".join(l.strip() for l in open(f"{out}/{query}.plan").read().splitlines() if l.strip()).replace(":; ", ": ")
    print(f"| {labels[query]} | {int(count):,} | {values} | {events} | {rps:,.0f} | {p50:.2f} | {p99:.2f} "
          f"| {'yes' if p99 < 50 else 'NO'} | {errors} | `{plan}` |")
PY
}

# The plans of the query in FILE.sql, compact: SQLite's EXPLAIN QUERY PLAN lines (the sqlite3
# command's SQLite, which may be older than the one in searchgate); PostgreSQL's plan nodes,
# for the values and generic (FILE.generic.sql).
explain_sqlite() { sq "EXPLAIN QUERY PLAN $(cat "$1.sql")" | sed 's/^[|` -]*//; /^QUERY PLAN$/d'; }
explain_postgres() {
  local nodes='/^\s*[A-Z][A-Za-z ]+:/d; s/^[ ->]*//; s/ on audit_events( audit_events_1)?$//'
  echo "for the values:"
  pg -c "EXPLAIN (COSTS OFF) $(cat "$1.sql")" | sed -E "$nodes"
  echo "generic:"
  pg -f "$1.generic.sql" | sed -E "$nodes"
}
run_sqlite() { sq "$1"; }
run_postgres() { pg -c "$1"; }

echo "load before: $(uptime)"
prepare sqlite "$sqlite_url" run_sqlite fill_sqlite
measure sqlite "$sqlite_url" run_sqlite explain_sqlite
if [ -n "$postgres" ]; then
  prepare postgres "$postgres" run_postgres fill_postgres
  measure postgres "$postgres" run_postgres explain_postgres
fi
echo "load after: $(uptime)"
echo "results: ${results#"$root"/}"
