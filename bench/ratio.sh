#!/usr/bin/env bash
# The ratio bench of issue 15: searchgate against the limit (bare hyper, fixed bytes) and against
# rmcp-only (rmcp in poem as searchgate mounts it, one fixed tool), run interleaved with oha on the
# same machine, several rounds, medians. Prints one table: req/s, p50, p99, errors, CPU per
# request, idle and peak RSS, and the ratios to the limit and to rmcp-only; then checks that
# searchgate wrote one audit row per request it answered.
#
#   bench/ratio.sh [--rounds 3] [--duration 10s] [--connections 64] [--warmup 2s]
#                  [--max-results 5] [--postgres URL]   (also SEARCHGATE_DATABASE__URL)
#                  [--baseline REV]
#
# The workload: authenticated `tools/call web_search` on the stateless 2026-07-28 wire, mock
# provider, keep-alive connections. searchgate runs its release binary on its embedded defaults
# (embedded authorization server, a real RS256 token verified on every request, SQLite audit
# trail in a throw-away folder), with the per-principal rate limit and the result cache off: one
# token sending one query would otherwise be answered from a shortcut. With --postgres, a second
# searchgate with its audit trail on that database runs beside it, in the same rounds.
# The limit and rmcp-only answer the bytes searchgate answered (captured first), so all send
# the same response body; the sizes are printed. Results (oha's JSON and the table) are kept
# under bench/results/ratio-<time>/.
# With --baseline REV (a commit, tag or branch), the release binary of REV runs beside this one
# in the same rounds, on the same settings: an A/B of two versions of searchgate, with
# `× baseline` in the table. REV is checked out under bench/results/baseline-<commit>/ and built
# there once (kept, with its own target folder, for the next run).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

rounds=3
duration=10s
connections=64
max_results=5
warmup=2s
postgres=${SEARCHGATE_DATABASE__URL:-}
baseline=
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --max-results) max_results=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --postgres) postgres=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# oha from crates.io when missing.
source bench/oha.sh

# rmcp-only must use searchgate's allocator: the one its Cargo.toml names, else glibc's.
allocator=$(grep -oE '^(mimalloc|tikv-jemallocator|jemallocator)\b' Cargo.toml | head -n 1 || true)
server_features=()
case "$allocator" in
  "") allocator="glibc malloc" ;;
  mimalloc) server_features=(--features mimalloc) ;;
  *) echo "warning: searchgate uses $allocator, which bench/servers does not offer: rmcp-only runs on glibc malloc" >&2 ;;
esac
echo "building release binaries (searchgate, bench/servers; allocator: $allocator)…"
cargo build --release --quiet --bin searchgate
cargo build --release --quiet -p bench-servers "${server_features[@]}"
baseline_bin=
if [ -n "$baseline" ]; then
  commit=$(git rev-parse --verify "$baseline^{commit}")
  tree="$root/bench/results/baseline-$commit"
  if [ ! -d "$tree/src" ]; then
    mkdir -p "$root/bench/results"
    git worktree add --detach "$tree/src" "$commit" >/dev/null
  fi
  echo "building the baseline ${commit:0:7} (release)…"
  (cd "$tree/src" && CARGO_TARGET_DIR="$tree/target" cargo build --release --quiet --bin searchgate)
  baseline_bin="$tree/target/release/searchgate"
fi

work=$(mktemp -d)
results="$root/bench/results/ratio-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$results"
declare -A pid port
cleanup() {
  for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }
# utime + stime of every thread of the process, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# start NAME COMMAND…: runs COMMAND in its own folder with a clean environment; its output goes
# to NAME.log there.
start() {
  local name=$1
  shift
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec env -i PATH="$PATH" HOME="$work/$name" "$@" >"$work/$name/server.log" 2>&1) &
  pid[$name]=$!
}

wait_until() {
  local name=$1
  shift
  for _ in $(seq 1 200); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "${pid[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$work/$name/server.log" >&2
  exit 1
}

body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"web_search","arguments":{"query":"rust async runtimes","max_results":'"$max_results"'},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
headers=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
  -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: web_search')
url() { echo "http://127.0.0.1:${port[$1]}/web-search/mcp"; }
client="bench-ratio-$$"

# searchgate NAME [SETTING=VALUE…]: one instance on its embedded defaults, and a token for it;
# the baseline's binary when NAME is `baseline`.
searchgate() {
  local name=$1
  shift
  local binary="$root/target/release/searchgate"
  [ "$name" = baseline ] && binary=$baseline_bin
  port[$name]=$(free_port)
  local settings=(PORT="${port[$name]}" SEARCHGATE_TELEMETRY__LEVEL=warn
    SEARCHGATE_SEARCH__RATE_LIMIT_PER_MINUTE=0 SEARCHGATE_SEARCH__CACHE_TTL_SECS=0 "$@")
  start "$name" "${settings[@]}" "$binary" serve
  wait_until "$name" curl -fsS "http://127.0.0.1:${port[$name]}/readyz"
  # The embedded authorization server signs it; the instance verifies it on every request.
  (cd "$work/$name" && env -i PATH="$PATH" HOME="$work/$name" "${settings[@]}" \
    "$binary" token --scope web-search:read --ttl 24h --client "$client") \
    >"$work/$name/token"
}

searchgate searchgate
if [ -n "$postgres" ]; then
  searchgate searchgate-pg SEARCHGATE_DATABASE__URL="$postgres"
fi
if [ -n "$baseline" ]; then searchgate baseline; fi
# The interleaving order: the references first, then searchgate.
targets=(limit rmcp-only searchgate)
if [ -n "$postgres" ]; then targets+=(searchgate-pg); fi
if [ -n "$baseline" ]; then targets+=(baseline); fi
sleep 1
declare -A idle_kib
for name in "${targets[@]:2}"; do idle_kib[$name]=$(kib VmRSS "${pid[$name]}"); done

# What searchgate answers is what the other two will answer.
# The token a target is sent: its own, or searchgate's, so every target gets the same request.
token() { cat "$work/$1/token" 2>/dev/null || cat "$work/searchgate/token"; }
call() { # call NAME OUTPUT: one request of the workload; prints the body and header sizes
  local auth=(-H "Authorization: Bearer $(token "$1")")
  curl -fsS "$(url "$1")" "${headers[@]}" "${auth[@]}" -d "$body" -o "$2" -w '%{size_download} %{size_header}'
}
call searchgate "$work/response.json" >/dev/null
grep -q '"structuredContent"' "$work/response.json" \
  || { echo "searchgate did not answer the tools/call:"; cat "$work/response.json" "$work/searchgate/server.log"; exit 1; }

port[limit]=$(free_port)
start limit "$root/target/release/limit" "127.0.0.1:${port[limit]}" "$work/response.json"
port[rmcp-only]=$(free_port)
start rmcp-only "$root/target/release/rmcp-only" "127.0.0.1:${port[rmcp-only]}" "$work/response.json"
for name in limit rmcp-only; do
  wait_until "$name" curl -sS -o /dev/null "$(url "$name")"
  sleep 1
  idle_kib[$name]=$(kib VmRSS "${pid[$name]}")
done

# Every request sent to a searchgate outside oha, for the audit check.
declare -A extra
echo "response bytes (body, headers):"
for name in "${targets[@]}"; do
  sizes=$(call "$name" "$work/$name/response.json")
  extra[$name]=1
  cmp -s "$work/response.json" "$work/$name/response.json" && same="same body as searchgate's" || same="DIFFERENT body from searchgate's"
  printf '  %-13s %s, %s\n' "$name" "${sizes/ /, }" "$same"
done
extra[searchgate]=2

load_before=$(uptime)
oha_run() { # oha_run NAME DURATION OUTPUT
  local auth=(-H "Authorization: Bearer $(token "$1")")
  oha --no-tui --output-format json --wait-ongoing-requests-after-deadline -z "$2" -c "$connections" \
    -m POST "${headers[@]}" "${auth[@]}" -d "$body" "$(url "$1")" >"$3"
}
echo "warm-up: $warmup each"
for name in "${targets[@]}"; do oha_run "$name" "$warmup" "$results/$name-warmup.json"; done
: >"$results/cpu.tsv"
for round in $(seq 1 "$rounds"); do
  # Each round starts one target later, so none is always measured first.
  order=("${targets[@]:$(((round - 1) % ${#targets[@]}))}" "${targets[@]:0:$(((round - 1) % ${#targets[@]}))}")
  echo "round $round/$rounds: ${order[*]} ($duration each, $connections connections)"
  for name in "${order[@]}"; do
    before=$(cpu_ticks "${pid[$name]}")
    oha_run "$name" "$duration" "$results/$name-$round.json"
    printf '%s\t%s\t%s\n' "$name" "$round" "$(($(cpu_ticks "${pid[$name]}") - before))" >>"$results/cpu.tsv"
  done
done
load_after=$(uptime)

: >"$results/memory.tsv"
for name in "${targets[@]}"; do
  printf '%s\t%s\t%s\n' "$name" "${idle_kib[$name]}" "$(kib VmHWM "${pid[$name]}")" >>"$results/memory.tsv"
done

# Audit rows of this run's client, once the writer has caught up (it batches).
audit_rows() {
  local query="select count(*) from audit_events where client_id = '$client'"
  case "$1" in
    searchgate | baseline) sqlite3 "$work/$1/searchgate.db" "$query" ;;
    searchgate-pg) psql -X -q -At "$postgres" -c "$query" ;;
  esac
}
: >"$results/audit.tsv"
extra[baseline]=1
for name in searchgate searchgate-pg baseline; do
  [ -n "${pid[$name]:-}" ] || continue
  expected=$(python3 - "$results" "$name" "${extra[$name]}" <<'PY'
import glob, json, sys
results, name, extra = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = glob.glob(f"{results}/{name}-warmup.json") + glob.glob(f"{results}/{name}-[0-9]*.json")
print(extra + sum(sum(json.load(open(f)).get("statusCodeDistribution", {}).values()) for f in files))
PY
  )
  rows=0
  for _ in $(seq 1 100); do
    rows=$(audit_rows "$name")
    [ "$rows" -ge "$expected" ] && break
    sleep 0.1
  done
  printf '%s\t%s\t%s\n' "$name" "$rows" "$expected" >>"$results/audit.tsv"
done

python3 - "$results" "$rounds" "$duration" "$connections" "$allocator" "$load_before" "$load_after" "$(getconf CLK_TCK)" "$max_results" "$(wc -c <"$work/response.json")" "$baseline" <<'PY' | tee "$results/table.md"
import json, statistics, sys
from collections import defaultdict

results, rounds, duration, connections, allocator, load_before, load_after, clk_tck, max_results, body_bytes, baseline = sys.argv[1:]
rounds, clk_tck = int(rounds), int(clk_tck)
labels = {
    "limit": "limit (hyper, fixed bytes)",
    "rmcp-only": "rmcp-only (rmcp in poem, fixed result)",
    "searchgate": "**searchgate** (SQLite audit)",
    "searchgate-pg": "**searchgate** (PostgreSQL audit)",
    "baseline": f"searchgate at {baseline} (SQLite audit)",
}
cpu = {(n, int(r)): int(t) for n, r, t in (l.split("\t") for l in open(f"{results}/cpu.tsv").read().splitlines())}
memory = {n: (int(i), int(p)) for n, i, p in (l.split("\t") for l in open(f"{results}/memory.tsv").read().splitlines())}
audit = {n: (int(r), int(e)) for n, r, e in (l.split("\t") for l in open(f"{results}/audit.tsv").read().splitlines())}
names = [n for n in labels if n in memory]

run = {}  # (name, round) -> figures
for name in names:
    for r in range(1, rounds + 1):
        data = json.load(open(f"{results}/{name}-{r}.json"))
        codes = {int(c): n for c, n in data.get("statusCodeDistribution", {}).items()}
        ok = sum(n for c, n in codes.items() if 200 <= c < 300)
        errors = sum(n for c, n in codes.items() if not 200 <= c < 300) + sum(data.get("errorDistribution", {}).values())
        pct = data["latencyPercentiles"]
        run[name, r] = {
            "rps": ok / data["summary"]["total"] if data["summary"]["total"] else 0.0,
            "p50": (pct.get("p50") or 0) * 1000,
            "p99": (pct.get("p99") or 0) * 1000,
            "errors": errors,
            "cpu_us": cpu[name, r] / clk_tck * 1e6 / ok if ok else float("nan"),
        }

def median(name, key):
    return statistics.median(run[name, r][key] for r in range(1, rounds + 1))

def ratio(name, base, key):
    """The median over rounds of name's figure over base's in the same round."""
    return statistics.median(run[name, r][key] / run[base, r][key] for r in range(1, rounds + 1))

mib = lambda kib: f"{kib / 1024:.0f} MiB"
print(f"{rounds} rounds × {duration}, {connections} connections, max_results {max_results} "
      f"({int(body_bytes):,}-byte answers), interleaved; medians over rounds; "
      f"oha on the same machine; allocator {allocator}")
print(f"load before: {load_before.strip()}")
print(f"load after:  {load_after.strip()}")
print()
print("| target | req/s | × limit | × rmcp-only | p50 ms | p99 ms | p99 × rmcp-only | errors | CPU µs/req | idle RSS | peak RSS |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for name in names:
    idle, peak = memory[name]
    print(f"| {labels[name]} | {median(name, 'rps'):,.0f} | {ratio(name, 'limit', 'rps'):.2f}× "
          f"| {ratio(name, 'rmcp-only', 'rps'):.2f}× | {median(name, 'p50'):.2f} | {median(name, 'p99'):.2f} "
          f"| {ratio(name, 'rmcp-only', 'p99'):.2f}× | {sum(run[name, r]['errors'] for r in range(1, rounds + 1))} "
          f"| {median(name, 'cpu_us'):.1f} | {mib(idle)} | {mib(peak)} |")
print()
for name, (rows, expected) in audit.items():
    verdict = "ok" if rows == expected else "MISMATCH"
    print(f"audit, {labels[name].replace('*', '')}: {rows} rows for {expected} requests answered: {verdict}")
if "baseline" in names:
    print(f"this version / {baseline}: {ratio('searchgate', 'baseline', 'rps'):.2f}× req/s, "
          f"{ratio('searchgate', 'baseline', 'p99'):.2f}× p99, "
          f"{ratio('searchgate', 'baseline', 'cpu_us'):.2f}× CPU per request")
if "searchgate-pg" in names:
    print(f"PostgreSQL audit / SQLite audit: {ratio('searchgate-pg', 'searchgate', 'rps'):.2f}× req/s (goal ≥ 0.80×)")
idle, peak = memory["searchgate"]
rows, expected = audit["searchgate"]
mark = lambda ok: "yes" if ok else "no"
print()
print("issue 15 goals (searchgate, SQLite audit):")
print(f"  ≥ 0.80× rmcp-only req/s:     {ratio('searchgate', 'rmcp-only', 'rps'):.2f}×  {mark(ratio('searchgate', 'rmcp-only', 'rps') >= 0.8)}")
print(f"  p99 ≤ 1.25× rmcp-only's:     {ratio('searchgate', 'rmcp-only', 'p99'):.2f}×  {mark(ratio('searchgate', 'rmcp-only', 'p99') <= 1.25)}")
print(f"  peak RSS ≤ 50 MiB:           {mib(peak)}  {mark(peak <= 50 * 1024)}")
print(f"  idle RSS ≤ 20 MiB:           {mib(idle)}  {mark(idle <= 20 * 1024)}")
print(f"  audit rows = requests:       {rows} = {expected}  {mark(rows == expected)}")
print(f"  stretch, ≥ 0.45× the limit:  {ratio('searchgate', 'limit', 'rps'):.2f}×  {mark(ratio('searchgate', 'limit', 'rps') >= 0.45)}")
PY
echo "results: ${results#"$root"/}"
